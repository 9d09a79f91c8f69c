//! The records a meta partition persists (postcard-encoded values of the tables in [`crate::keys`]).
//! Their encoding is part of [`crate::keys::FORMAT_VERSION`]: a field is never removed or reordered
//! without bumping it.

use bytes::Bytes;
use ferrum_proto::msg::attr::{FileKind, InodeAttr, Time};
use ferrum_proto::msg::extent::ExtentKey;
use ferrum_proto::msg::meta::MetaRoute;
use ferrum_proto::msg::name::Name;
use ferrum_proto::{ErrorCode, ExtentId, InodeId, OpId, PartitionId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Mode bits beyond the permission bits.
pub const S_ISUID: u32 = 0o4000;
pub const S_ISGID: u32 = 0o2000;
pub const S_ISVTX: u32 = 0o1000;
pub const S_IXGRP: u32 = 0o010;
pub const MODE_MASK: u32 = 0o7777;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InodeRec {
    pub kind: FileKind,
    /// Permission bits with setuid/setgid/sticky (`0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub rdev: u32,
    /// Files: names linking to it. Directories: 2 + subdirectories.
    pub nlink: u32,
    pub atime: Time,
    pub mtime: Time,
    pub ctime: Time,
    /// Directories: the directory holding their entry (the root: itself), for `..` and for the
    /// rename loop check. Others: unused (0), a file may have many parents.
    pub parent: InodeId,
    /// Symlinks: the target.
    pub target: Option<Bytes>,
    /// Directories being removed by a cross-partition `rmdir` or rename-over: no entry may be added.
    pub dying: Option<OpId>,
}

impl InodeRec {
    pub fn attr(&self, inode: InodeId) -> InodeAttr {
        InodeAttr {
            inode,
            kind: self.kind,
            mode: self.mode,
            nlink: self.nlink,
            uid: self.uid,
            gid: self.gid,
            size: self.size,
            rdev: self.rdev,
            atime: self.atime,
            mtime: self.mtime,
            ctime: self.ctime,
        }
    }

    pub fn is_dir(&self) -> bool {
        self.kind == FileKind::Dir
    }

    /// Sets mtime and ctime (a change of the content: entries of a directory, data of a file).
    pub fn touch_content(&mut self, now: Time) {
        self.mtime = now;
        self.ctime = now;
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DentryRec {
    pub ino: InodeId,
    pub kind: FileKind,
    /// A cross-partition rename has taken this entry as its source: it may not be removed or renamed
    /// by anyone else until that rename is decided.
    pub locked_by: Option<OpId>,
}

/// Totals for `StatFs` and heartbeat reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRec {
    pub inodes: u64,
    pub bytes: u64,
}

/// An inode whose link count reached 0: it lives on until the client evicts it (no open handle left).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphanRec {
    pub since: Time,
}

/// One piece of a file's data map; the key holds the inode and the piece's end offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PieceRec {
    pub start: u64,
    pub partition: PartitionId,
    pub extent: ExtentId,
    pub extent_offset: u64,
}

impl PieceRec {
    pub fn key(&self, end: u64) -> ExtentKey {
        ExtentKey {
            file_offset: self.start,
            partition: self.partition,
            extent: self.extent,
            extent_offset: self.extent_offset,
            len: end - self.start,
        }
    }
}

/// File data no longer referenced, to be released on its datanode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreedRec {
    pub extent: ExtentKey,
    pub inode_evicted: bool,
}

/// A change made ahead of a decision taken in another partition (the *decider*), see [`crate::coord`].
/// Until it is finished, it can be committed or undone; if its coordinator vanishes, the sweeper asks
/// the decider for the outcome (fencing the decision if it was never taken) and finishes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedRec {
    pub created: Time,
    pub decider: PartitionId,
    /// The `(op, step)` under which the decider records its decision.
    pub decide_step: u32,
    /// How to reach the decider.
    pub route: Option<MetaRoute>,
    pub action: PreparedAction,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PreparedAction {
    /// A new inode (create, mkdir, symlink) whose entry the decider adds. Undo: delete it.
    NewInode { ino: InodeId },
    /// A link count raised for a new hard link the decider adds. Undo: lower it again.
    LinkInc { ino: InodeId },
    /// An empty directory marked dying, about to lose its entry. Commit: delete it. Undo: unmark.
    DirDying { ino: InodeId },
    /// The locked source entry of a rename whose target is in the decider. Commit: remove the entry
    /// (or point it at `exchange` for `RENAME_EXCHANGE`) and update its directory. Undo: unlock.
    SrcEntry { parent: InodeId, name: Name, ino: InodeId, kind: FileKind, exchange: Option<(InodeId, FileKind)> },
}

/// Effects of a decision that must still be applied in other partitions; applying each is idempotent
/// (recorded under its own step there), and the record is deleted once all are applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRec {
    pub created: Time,
    pub items: Vec<OutboxItem>,
    pub routes: Vec<MetaRoute>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    pub partition: PartitionId,
    pub step: u32,
    pub effect: Effect,
}

/// What a decision asks of an inode in another partition, after the fact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// One name of this file was removed: lower its link count (at 0 it becomes an orphan).
    DecLink { ino: InodeId },
    /// The inode was renamed: set its ctime, and for a directory its parent.
    Relink { ino: InodeId, parent: Option<InodeId> },
}

pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_stdvec(v).expect("postcard encodes the metanode's records")
}

pub fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, ErrorCode> {
    postcard::from_bytes(bytes).map_err(|e| ErrorCode::Internal(format!("corrupt {what} record: {e}")))
}
