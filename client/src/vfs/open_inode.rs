//! What this client keeps about a file while it has it open: the write-back buffer, the extent map,
//! the read-ahead cache, and the size and mtime as this client's writes have made them.
//!
//! Shared by every handle on the inode, so two descriptors of one file see each other's writes, and a
//! flush through one makes the other's bytes durable too (as on a local filesystem).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use ferrum_proto::msg::attr::{InodeAttr, Time};
use ferrum_proto::InodeId;
use tokio::sync::OnceCell;

use super::dirty::{self, Dirty};
use super::extent_map::ExtentMap;
use crate::backend::ExtentAddr;
use crate::error::{FsError, Result};

/// Where the next appended bytes of this file go.
#[derive(Clone, Copy, Debug)]
pub struct AppendCursor {
    pub at: ExtentAddr,
    pub next: u64,
}

/// A read-ahead block: filled once by whichever task gets there first.
pub type Block = Arc<OnceCell<Result<Bytes>>>;

#[derive(Default)]
pub struct InodeData {
    /// Writes not yet handed to a flush.
    pub dirty: Dirty,
    /// Writes a flush is sending right now; reads still see them.
    pub inflight: Option<Arc<Vec<(u64, Bytes)>>>,
    /// The end of the furthest write not yet on the metanode: the file is at least this long. Reset by
    /// truncates (which reach the metanode at once) and by flushes.
    pub written_end: Option<u64>,
    /// Likewise the modification time of the last buffered write.
    pub mtime: Option<Time>,
    /// The extent map and the metanode's size with it; `None` until first needed (or after an open
    /// that wants the other clients' latest).
    pub extents: Option<(ExtentMap, u64)>,
    /// The file's inline bytes (from offset 0) as the metanode holds them, loaded with `extents` (whose
    /// map is then empty). A small file lives there instead of in extents.
    pub inline: Option<Bytes>,
    pub append: Option<AppendCursor>,
    /// Whose writes the buffer holds (the last writer's): extent keys are recorded in their name.
    pub writer: ferrum_proto::msg::meta::Cred,
    /// A failed background flush, reported by the next write, flush or fsync (as the kernel reports a
    /// failed writeback).
    pub error: Option<FsError>,
    /// Unlinked (link count 0) while open: evicted when the last handle is released.
    pub orphan: bool,
    /// Bumped whenever the stored data changes, so read-ahead blocks fetched before are not used.
    pub data_gen: u64,
    /// Read-ahead blocks by start offset, with the `data_gen` they were fetched at.
    pub blocks: BTreeMap<u64, (u64, Block)>,
}

impl InodeData {
    /// Size including buffered writes, once the extent map is loaded.
    pub fn size(&self) -> Option<u64> {
        let stored = self.extents.as_ref().map(|(_, s)| *s)?;
        Some(stored.max(self.written_end.unwrap_or(0)))
    }

    pub fn has_unflushed(&self) -> bool {
        !self.dirty.is_empty() || self.inflight.is_some()
    }

    /// Puts buffered bytes (in flight first, then newer) over `out`, the file's bytes from `offset`.
    pub fn overlay(&self, offset: u64, out: &mut [u8]) {
        if let Some(inflight) = &self.inflight {
            dirty::overlay(inflight.iter().map(|(s, b)| (*s, b.as_ref())), offset, out);
        }
        self.dirty.overlay(offset, out);
    }

    /// Forgets the data map (and inline bytes): the next read or flush loads them again.
    pub fn forget_extents(&mut self) {
        self.extents = None;
        self.inline = None;
    }

    /// The data changed: forget read-ahead.
    pub fn data_changed(&mut self) {
        self.data_gen += 1;
        self.blocks.clear();
    }

    pub fn take_error(&mut self) -> Result<()> {
        self.error.take().map_or(Ok(()), Err)
    }
}

pub struct OpenInode {
    pub ino: InodeId,
    /// Open handles; changed only under the VFS's table lock, so "last release" is unambiguous.
    pub opens: AtomicU32,
    data: Mutex<InodeData>,
    /// Serialises flushes (and extent-map loads) of this inode: extent keys must reach the metanode in
    /// the order their bytes were written, or an older key could win over a newer one.
    pub flush_lock: Arc<tokio::sync::Mutex<()>>,
}

impl OpenInode {
    pub fn new(ino: InodeId) -> OpenInode {
        OpenInode {
            ino,
            opens: AtomicU32::new(0),
            data: Mutex::new(InodeData::default()),
            flush_lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, InodeData> {
        self.data.lock().expect("open inode lock")
    }

    pub fn opens(&self) -> u32 {
        self.opens.load(Ordering::SeqCst)
    }

    /// `attr` as this client sees it: buffered writes may have grown the file and moved its mtime.
    pub fn overlay_attr(&self, attr: &mut InodeAttr) {
        let d = self.lock();
        if let Some(end) = d.written_end {
            attr.size = attr.size.max(end);
        }
        if let Some(mtime) = d.mtime {
            attr.mtime = attr.mtime.max(mtime);
            attr.ctime = attr.ctime.max(mtime);
        }
    }
}
