//! The FUSE side: a thin [`fuser::Filesystem`] adapter over [`crate::vfs::Vfs`], and mounting.
//!
//! Every kernel request is handled the same way: copy the arguments out of fuser's buffer, run the
//! operation on the FUSE thread until it has to wait (answers from the client's caches finish there),
//! then on the tokio runtime, and reply from wherever it finishes. The FUSE threads never wait for the
//! network, so one slow request (a dead datanode's timeout) never blocks the others.

mod adapter;
mod attr;
mod cred;
mod mount;
mod ops_dir;
mod ops_entry;
mod ops_file;
mod ops_misc;

pub use adapter::FuseFs;
pub use mount::{is_fuse_mount, mount, preflight, unmount, MountConfig, Mounted, PreflightError};
