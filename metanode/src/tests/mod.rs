//! Tests of every operation against real partitions (Raft + RocksDB, in process), see [`kit`].

mod kit;

mod attrs;
mod crash;
mod cross;
mod data;
mod namespace;
mod rename;
mod retry;
mod split;
mod xattr;
