//! File and directory handles: what `open`/`opendir` hand to the kernel as `fh`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use ferrum_proto::msg::meta::DirEntry;
use ferrum_proto::msg::name::Name;
use ferrum_proto::InodeId;

use super::open_inode::OpenInode;
use super::{Fh, Vfs};
use crate::backend::{DataBackend, MetaBackend};
use crate::error::{FsError, Result};

/// Where a handle's reader is, to tell sequential from random reads.
#[derive(Debug, Default)]
pub struct ReadPattern {
    /// The offset a sequential reader asks for next.
    pub next: u64,
    /// Sequential reads in a row.
    pub streak: u32,
}

pub struct FileHandle {
    pub node: Arc<OpenInode>,
    /// `open(2)` flags.
    pub flags: i32,
    /// Who opened it: the metanode sees writes through this handle as theirs.
    pub cred: super::Cred,
    pub pattern: Mutex<ReadPattern>,
}

impl FileHandle {
    /// `O_SYNC`/`O_DSYNC`: every write is durable before it returns.
    pub fn sync_writes(&self) -> bool {
        self.flags & libc::O_DSYNC != 0
    }
}

/// A directory listing in progress. Offsets the kernel sees are positions in `entries` (after `.` and
/// `..`), stable for the life of the handle even if the directory changes meanwhile; pages are fetched
/// by name cursor as the reader advances.
pub struct DirHandle {
    pub ino: InodeId,
    pub listing: tokio::sync::Mutex<Listing>,
}

#[derive(Default)]
pub struct Listing {
    pub entries: Vec<DirEntry>,
    /// Cursor for the next page; `None` with `done` at the end.
    pub cursor: Option<Name>,
    pub done: bool,
}

impl<M: MetaBackend, D: DataBackend> Vfs<M, D> {
    pub(super) fn next_fh(&self) -> Fh {
        self.inner.next_fh.fetch_add(1, Ordering::Relaxed)
    }

    pub(super) fn file(&self, fh: Fh) -> Result<Arc<FileHandle>> {
        self.inner.files.lock().expect("files lock").get(&fh).cloned().ok_or(FsError::BadHandle)
    }

    pub(super) fn dir(&self, fh: Fh) -> Result<Arc<DirHandle>> {
        self.inner.dirs.lock().expect("dirs lock").get(&fh).cloned().ok_or(FsError::BadHandle)
    }

    /// The open state of `ino`, if any handle has it open.
    pub(super) fn open_node(&self, ino: InodeId) -> Option<Arc<OpenInode>> {
        self.inner.open.lock().expect("open lock").get(&ino).cloned()
    }

    /// Registers one more open handle on `ino`.
    pub(super) fn acquire_node(&self, ino: InodeId) -> Arc<OpenInode> {
        let mut open = self.inner.open.lock().expect("open lock");
        let node = open.entry(ino).or_insert_with(|| Arc::new(OpenInode::new(ino))).clone();
        node.opens.fetch_add(1, Ordering::SeqCst);
        node
    }

    /// Drops one open handle; true when it was the last one of an unlinked inode, which the caller
    /// then evicts. Decided under the table lock, like [`Vfs::mark_orphan`], so exactly one of the two
    /// evicts.
    pub(super) fn release_node(&self, node: &Arc<OpenInode>) -> bool {
        let mut open = self.inner.open.lock().expect("open lock");
        if node.opens.fetch_sub(1, Ordering::SeqCst) == 1 {
            open.remove(&node.ino);
            node.lock().orphan
        } else {
            false
        }
    }

    /// `ino` lost its last link: true if it is open here (the last release evicts it), false if the
    /// caller should evict it now.
    pub(super) fn mark_orphan(&self, ino: InodeId) -> bool {
        let open = self.inner.open.lock().expect("open lock");
        match open.get(&ino) {
            Some(node) => {
                node.lock().orphan = true;
                true
            }
            None => false,
        }
    }

    /// The inodes open here, for an unlink to list (`None` when there are too many to send).
    pub(super) fn open_inodes(&self) -> Option<Vec<InodeId>> {
        let open = self.inner.open.lock().expect("open lock");
        (open.len() <= ferrum_proto::msg::meta::MAX_OPEN_HERE).then(|| open.keys().copied().collect())
    }

    /// Number of files open through this client (for tests and shutdown).
    pub fn open_files(&self) -> usize {
        self.inner.files.lock().expect("files lock").len()
    }
}
