//! The client library: POSIX file operations over a [`MetaBackend`] and a [`DataBackend`], with the
//! client-side machinery that makes them fast — per-file write-back buffering into large extents,
//! read-ahead, an attribute cache — and the bookkeeping FUSE needs (file and directory handles,
//! unlinked-but-open files). The FUSE adapter is a thin layer over this; tests call it directly.
//!
//! Durability contract: `flush` (every `close`), `fsync` and `release` return only after the file's
//! buffered bytes are on the datanodes and its extent keys and size on the metanode.

mod attr_cache;
mod config;
mod dir;
mod dirty;
mod extent_map;
mod file;
mod flush;
mod handles;
mod namespace;
mod open_inode;
mod read;
mod space;
mod statahead;
mod xattr;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use ferrum_proto::InodeId;

pub use config::{VfsConfig, DEFAULT_INLINE_MAX};
pub use dir::DirEntryOut;
pub use extent_map::{ExtentMap, Segment};
/// Who performs an operation (from the FUSE request): checked by the metanode, owner of what it creates.
pub use ferrum_proto::msg::meta::Cred;
pub use namespace::SetAttr;
pub use space::{FallocateMode, StatFs, Whence};

use crate::backend::{DataBackend, MetaBackend};
use attr_cache::AttrCache;
use handles::{DirHandle, FileHandle};
use open_inode::OpenInode;

/// A file handle number handed out by `open`/`create`/`opendir`.
pub type Fh = u64;

/// Cheap to clone; clones share everything.
pub struct Vfs<M, D> {
    inner: Arc<Inner<M, D>>,
}

impl<M, D> Clone for Vfs<M, D> {
    fn clone(&self) -> Self {
        Vfs { inner: self.inner.clone() }
    }
}

struct Inner<M, D> {
    meta: M,
    data: D,
    cfg: VfsConfig,
    attrs: AttrCache,
    xattrs: xattr::XattrCache,
    statahead: statahead::Statahead,
    /// Inodes with at least one open handle.
    open: Mutex<HashMap<InodeId, Arc<OpenInode>>>,
    files: Mutex<HashMap<Fh, Arc<FileHandle>>>,
    dirs: Mutex<HashMap<Fh, Arc<DirHandle>>>,
    next_fh: AtomicU64,
}

impl<M: MetaBackend, D: DataBackend> Vfs<M, D> {
    pub fn new(meta: M, data: D, cfg: VfsConfig) -> Vfs<M, D> {
        let attrs = AttrCache::new(cfg.attr_ttl, cfg.attr_cache_capacity);
        let xattrs = xattr::XattrCache::new(cfg.attr_ttl);
        // Answers come from the listing and the attribute cache: trusted as long as both are.
        let statahead = statahead::Statahead::new(cfg.entry_ttl.min(cfg.attr_ttl));
        Vfs {
            inner: Arc::new(Inner {
                meta,
                data,
                cfg,
                attrs,
                xattrs,
                statahead,
                open: Mutex::new(HashMap::new()),
                files: Mutex::new(HashMap::new()),
                dirs: Mutex::new(HashMap::new()),
                next_fh: AtomicU64::new(1),
            }),
        }
    }

    pub fn config(&self) -> &VfsConfig {
        &self.inner.cfg
    }

    pub fn meta(&self) -> &M {
        &self.inner.meta
    }

    pub fn data(&self) -> &D {
        &self.inner.data
    }
}
