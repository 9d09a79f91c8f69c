//! Ferrum's metanode: meta partitions — an inode range of one volume each, with its inodes, directory
//! entries, extent maps and xattrs — replicated as Raft groups on RocksDB.
//!
//! State, in each partition's keyspace:
//! - [`keys`]: the key layout and format version; [`records`]: the persisted records.
//! - [`txn`]: read-your-writes over the keyspace during one command; [`state`]: typed tables;
//!   [`extents`]: file data maps; [`freed`]: data to release on datanodes; [`dedup`]: applied ops.
//!
//! Applying commands:
//! - [`cmd`]: the Raft commands; [`app`]: the `App` a meta group runs; [`batch`]: group commit of
//!   concurrent commands; [`ops`]: one file per operation;
//!   [`perm`]: permission rules; [`steps`]: step numbers of multi-partition operations.
//!
//! Serving:
//! - [`service`]: the RPC handler (`META_*`); [`read`]: linearizable reads on the leader;
//!   [`wire`]: messages between metanodes; [`peers`]: calling other partitions; [`cluster`]: what
//!   recovery and fsck need of the partitions, here or remote.
//! - [`coord`]: operations that span partitions, and their crash-safe protocol;
//!   [`sweeper`]: finishes what crashed coordinators left; [`fsck`]: consistency check and repair.

pub mod app;
pub mod batch;
pub mod cluster;
pub mod cmd;
pub mod coord;
pub mod dedup;
pub mod extents;
pub mod failpoint;
pub mod freed;
pub mod fsck;
pub mod inline;
pub mod keys;
pub mod ops;
pub mod peers;
pub mod perm;
pub mod read;
pub mod records;
pub mod service;
pub mod state;
pub mod steps;
pub mod sweeper;
pub mod txn;
pub mod wire;

#[cfg(test)]
mod tests;

pub use app::{meta_app_factory, MetaApp, KIND};
pub use service::{MetaConfig, MetaService};
