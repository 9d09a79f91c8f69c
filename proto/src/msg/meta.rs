//! Metanode protocol (opcodes `META_*`): namespace, attributes, extended attributes and extent maps.
//!
//! First cut: the metanode issue may extend these messages (append fields only); the opcodes are
//! stable. Every request names the meta partition that serves it; every mutation carries an [`OpId`] so
//! a retry after a timeout or leader change is applied once.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ids::{InodeId, OpId, PartitionId};
use crate::msg::attr::{FileKind, InodeAttr, SetAttrFields};
use crate::msg::extent::ExtentKey;
use crate::msg::name::Name;

/// The reply of every call that yields an inode's attributes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttrResp {
    pub attr: InodeAttr,
}

/// The name `name` in directory `parent`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lookup {
    pub partition: PartitionId,
    pub parent: InodeId,
    pub name: Name,
}
rpc!(Lookup => AttrResp, META_LOOKUP);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetAttr {
    pub partition: PartitionId,
    pub inode: InodeId,
}
rpc!(GetAttr => AttrResp, META_GET_ATTR);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAttr {
    pub partition: PartitionId,
    pub op: OpId,
    pub inode: InodeId,
    pub set: SetAttrFields,
}
rpc!(SetAttr => AttrResp, META_SET_ATTR);

/// Creates a non-directory, non-symlink inode (regular file, fifo, socket or device) and its entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Create {
    pub partition: PartitionId,
    pub op: OpId,
    pub parent: InodeId,
    pub name: Name,
    pub kind: FileKind,
    /// Permission bits, umask already applied.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u32,
}
rpc!(Create => AttrResp, META_CREATE);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mkdir {
    pub partition: PartitionId,
    pub op: OpId,
    pub parent: InodeId,
    pub name: Name,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}
rpc!(Mkdir => AttrResp, META_MKDIR);

/// Removes a non-directory entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unlink {
    pub partition: PartitionId,
    pub op: OpId,
    pub parent: InodeId,
    pub name: Name,
}

/// The inode an entry pointed to and its link count afterwards: at 0 the client sends [`Evict`] once
/// it holds no open handle on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unlinked {
    pub inode: InodeId,
    pub nlink: u32,
}
rpc!(Unlink => Unlinked, META_UNLINK);

/// Removes an empty directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rmdir {
    pub partition: PartitionId,
    pub op: OpId,
    pub parent: InodeId,
    pub name: Name,
}
rpc!(Rmdir => (), META_RMDIR);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rename {
    pub partition: PartitionId,
    pub op: OpId,
    pub parent: InodeId,
    pub name: Name,
    pub new_parent: InodeId,
    pub new_name: Name,
    /// `renameat2` flags: [`Rename::NOREPLACE`], [`Rename::EXCHANGE`]; others are `NotSupported`.
    pub flags: u32,
}

impl Rename {
    /// Fail with `Exists` instead of replacing the target (Linux `RENAME_NOREPLACE`).
    pub const NOREPLACE: u32 = 1;
    /// Swap source and target atomically (Linux `RENAME_EXCHANGE`).
    pub const EXCHANGE: u32 = 2;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenameResp {
    /// The target the rename replaced, if any (see [`Unlinked`]).
    pub replaced: Option<Unlinked>,
}
rpc!(Rename => RenameResp, META_RENAME);

/// A new hard link to `inode` as `new_parent/new_name`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub partition: PartitionId,
    pub op: OpId,
    pub inode: InodeId,
    pub new_parent: InodeId,
    pub new_name: Name,
}
rpc!(Link => AttrResp, META_LINK);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Symlink {
    pub partition: PartitionId,
    pub op: OpId,
    pub parent: InodeId,
    pub name: Name,
    /// Bytes, like any path.
    pub target: Bytes,
    pub uid: u32,
    pub gid: u32,
}
rpc!(Symlink => AttrResp, META_SYMLINK);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readlink {
    pub partition: PartitionId,
    pub inode: InodeId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadlinkResp {
    pub target: Bytes,
}
rpc!(Readlink => ReadlinkResp, META_READLINK);

/// One page of a directory, in name order, excluding `.` and `..` (the client adds those).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadDir {
    pub partition: PartitionId,
    pub inode: InodeId,
    /// Resume strictly after this name; `None` from the start. Names are stable under concurrent
    /// changes, unlike positions.
    pub cursor: Option<Name>,
    pub limit: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirEntry {
    pub name: Name,
    pub inode: InodeId,
    pub kind: FileKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadDirResp {
    pub entries: Vec<DirEntry>,
    /// The cursor for the next page; `None` when this page ends the directory.
    pub next: Option<Name>,
}
rpc!(ReadDir => ReadDirResp, META_READ_DIR);

/// A missing attribute is `NoXattr`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetXattr {
    pub partition: PartitionId,
    pub inode: InodeId,
    pub name: Name,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct XattrValue {
    pub value: Bytes,
}
rpc!(GetXattr => XattrValue, META_GET_XATTR);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetXattr {
    pub partition: PartitionId,
    pub op: OpId,
    pub inode: InodeId,
    pub name: Name,
    pub value: Bytes,
    /// [`SetXattr::CREATE`] or [`SetXattr::REPLACE`] (Linux `setxattr` flags), or 0.
    pub flags: u32,
}

impl SetXattr {
    /// Fail with `Exists` if the attribute exists.
    pub const CREATE: u32 = 1;
    /// Fail with `NoXattr` if the attribute does not exist.
    pub const REPLACE: u32 = 2;
}
rpc!(SetXattr => (), META_SET_XATTR);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListXattr {
    pub partition: PartitionId,
    pub inode: InodeId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListXattrResp {
    pub names: Vec<Name>,
}
rpc!(ListXattr => ListXattrResp, META_LIST_XATTR);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveXattr {
    pub partition: PartitionId,
    pub op: OpId,
    pub inode: InodeId,
    pub name: Name,
}
rpc!(RemoveXattr => (), META_REMOVE_XATTR);

/// Usage of one meta partition; the client sums over a volume's partitions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatFs {
    pub partition: PartitionId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatFsResp {
    pub inodes: u64,
    /// Sum of file sizes.
    pub bytes: u64,
}
rpc!(StatFs => StatFsResp, META_STAT_FS);

/// Records data the client has written to datanodes; the size grows to cover the new extents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtentAppend {
    pub partition: PartitionId,
    pub op: OpId,
    pub inode: InodeId,
    pub extents: Vec<ExtentKey>,
}
rpc!(ExtentAppend => (), META_EXTENT_APPEND);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtentList {
    pub partition: PartitionId,
    pub inode: InodeId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtentListResp {
    pub size: u64,
    pub extents: Vec<ExtentKey>,
}
rpc!(ExtentList => ExtentListResp, META_EXTENT_LIST);

/// Sets a file's size, dropping the extent keys past it (the datanode space is reclaimed later).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truncate {
    pub partition: PartitionId,
    pub op: OpId,
    pub inode: InodeId,
    pub size: u64,
}
rpc!(Truncate => AttrResp, META_TRUNCATE);

/// Deletes an inode whose link count reached 0 once no client has it open, freeing its extents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evict {
    pub partition: PartitionId,
    pub op: OpId,
    pub inode: InodeId,
}
rpc!(Evict => (), META_EVICT);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ClientId, RequestId};
    use crate::msg::{decode, encode, Rpc};
    use crate::Opcode;

    fn op() -> OpId {
        OpId::new(ClientId(1), RequestId(2))
    }

    #[test]
    fn messages_round_trip() {
        let r = Rename {
            partition: PartitionId(1),
            op: op(),
            parent: InodeId::ROOT,
            name: "a".into(),
            new_parent: InodeId(9),
            new_name: "b".into(),
            flags: Rename::NOREPLACE,
        };
        assert_eq!(decode::<Rename>(&encode(&r)).unwrap(), r);
        let page = ReadDirResp {
            entries: vec![DirEntry {
                name: "x".into(),
                inode: InodeId(3),
                kind: FileKind::Dir,
            }],
            next: Some("x".into()),
        };
        assert_eq!(decode::<ReadDirResp>(&encode(&page)).unwrap(), page);
    }

    #[test]
    fn opcodes_are_wired() {
        assert_eq!(Lookup::OPCODE, Opcode::META_LOOKUP);
        assert_eq!(Rename::OPCODE, Opcode::META_RENAME);
        assert_eq!(Evict::OPCODE, Opcode::META_EVICT);
        assert_eq!(Truncate::OPCODE, Opcode::META_TRUNCATE);
    }
}
