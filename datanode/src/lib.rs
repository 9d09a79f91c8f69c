//! Ferrum datanode: hosts data partitions, each a Raft group whose state is a set of extents (sparse
//! files with a CRC32 per 4 KiB block) in the partition's directory.
//!
//! On disk and in memory:
//! - [`block`]: CRC blocks and their records; [`extent`]: one extent's data and CRC files;
//! - [`layout`]: a partition's directory; [`partition`]: its extents and what is fsynced when;
//! - [`snapshot`]: extents in Raft snapshots (dump, crash-safe restore); [`replay`]: re-applying log
//!   entries whose effect a power loss may have taken.
//!
//! Replication: [`cmd`] (the replicated commands), [`dedupe`] (exactly-once mutations), [`app`] (the
//! raftstore `App`), [`context`] (what partitions share, the `AppFactory`).
//!
//! Serving: [`service`] (the request handler), [`batcher`] (group commit of writes), [`gate`] (shared
//! read barriers), [`repair`] (fetching good blocks from peers), [`background`] (periodic sync,
//! scrubber), [`space`] (disk full), [`metrics`], [`config`], [`admin`] (hosting partitions without
//! the node agent), and [`client`], a small leader-following client for tests, tools and
//! benchmarks.

pub mod admin;
pub mod app;
pub mod background;
pub mod batcher;
pub mod block;
pub mod client;
pub mod cmd;
pub mod config;
pub mod context;
pub mod dedupe;
pub mod extent;
pub mod gate;
pub mod layout;
pub mod metrics;
pub mod partition;
pub mod repair;
pub mod replay;
pub mod service;
pub mod snapshot;
pub mod space;

pub use app::{DataApp, PartitionUsage};
pub use config::DataConfig;
pub use context::{data_app_factory, DataContext, KIND};
pub use metrics::DataMetrics;
pub use service::DataService;
