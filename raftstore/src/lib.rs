//! Multi-Raft on RocksDB: many openraft groups inside one instance, one RocksDB, one port.
//!
//! - [`store`]: the instance's RocksDB and its key layout (column families, key prefixes).
//! - [`durability`]: when log entries are fsynced, and recovery after a power loss.
//! - [`log_store`], [`state_machine`]: openraft's storage traits over that RocksDB, per group;
//!   [`snapshot_policy`]: when a group snapshots (less often the larger it is).
//! - [`app`]: the trait a service implements to give a group its meaning (master, meta, data).
//! - [`lease`]: read leases (linearizable leader reads without a quorum round each).
//! - [`handover`]: handing a group's leadership to another replica (spreading leaders).
//! - [`network`]: openraft's network over Ferrum's RPC transport (with [`commit_hint`]: no message
//!   round of its own for each new commit index); [`router`]: group id -> Raft;
//!   [`throttle`]: the byte rate of snapshot streams (replica rebuilds).
//!   [`routes`]: peers' current addresses.
//! - [`instance`]: plumbing every service binary shares (config, data-dir lock, ports, metrics).
//! - [`server`]: the runtime a service instance starts with; [`metrics`]: Raft series for /metrics.
//! - [`node`]: what metanodes and datanodes share (node id, heartbeats, hosting partitions).
//! - [`kv`]: a small replicated key-value app, used by tests and as the simplest example of [`app::App`].

pub mod app;
pub mod blocking;
pub mod commit_hint;
pub mod durability;
pub mod error;
pub mod handover;
pub mod instance;
pub mod kv;
pub mod lease;
pub mod log_store;
pub mod membership;
pub mod metrics;
pub mod network;
pub mod node;
pub mod payload_log;
pub mod receiving;
pub mod recovery;
pub mod router;
pub mod routes;
pub mod server;
pub mod snapshot;
pub mod snapshot_policy;
pub mod snapshot_send;
pub mod state_machine;
pub mod store;
pub mod throttle;
pub mod types;

pub use app::{App, AppFactory, GroupBatch, GroupView, Usage};
pub use error::RaftStoreError;
pub use router::{GroupDesc, GroupStatus, MultiRaft, MultiRaftConfig};
pub use server::Instance;
pub use store::Store;
pub use types::{Cmd, Reply, TypeConfig};
