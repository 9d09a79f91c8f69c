//! Ferrum's client: the `ferrum` CLI and the FUSE mount.
//!
//! Layers, bottom up:
//! - [`backend`]: the two traits where the client meets the services ([`MetaBackend`], [`DataBackend`]),
//!   with an in-memory implementation and one over RPC to the cluster;
//! - [`vfs`]: the client library — POSIX operations, write-back buffering, read-ahead, caches, handles;
//! - [`fuse`]: a thin `fuser::Filesystem` adapter over [`vfs::Vfs`], and mounting;
//! - [`cli`]: `ferrum mount` / `ferrum umount`; [`dev`]: `ferrum dev`, a local cluster on one host.
//!
//! Errors: [`FsError`] everywhere, turned into an errno in exactly one place, [`errno`].

pub mod backend;
pub mod cli;
pub mod dev;
pub mod errno;
pub mod error;
pub mod fuse;
pub mod vfs;

pub use backend::{DataBackend, MetaBackend};
pub use error::FsError;
pub use vfs::{Vfs, VfsConfig};
