//! In-memory backends: a whole volume in one process, no persistence. Used by the fast tests (every VFS
//! behaviour without a cluster) and by `ferrum mount --memory`, which puts the FUSE layer through the
//! kernel before the services exist. They follow the same rules a metanode and a datanode must follow
//! (POSIX namespace semantics, `ErrorCode`s), so what passes here is what the cluster has to provide.

mod data;
mod meta;
mod tree;

pub use data::{DataStats, MemData};
pub use meta::MemMeta;
