//! Metanode protocol (opcodes `META_*`): namespace, attributes, extended attributes and extent maps.
//!
//! # Where to send a request
//! A volume's inodes are split by [`InodeRange`] over meta partitions, each a Raft group. A directory's
//! entries live in the partition that holds the directory's inode, so every request names the partition
//! that serves it:
//! - calls about one inode (`GetAttr`, `SetAttr`, `Readlink`, xattrs, extents, `Evict`): the partition of
//!   that inode;
//! - calls about a name in a directory (`Lookup`, `ReadDir`, `Create`, `Mkdir`, `Symlink`, `Unlink`,
//!   `Rmdir`): the partition of the directory (`parent`);
//! - `Link`: the partition of `new_parent`; `Rename`: the partition of `new_parent`.
//!
//! A request for an inode outside the partition's range is `InvalidArgument` (a routing bug, not ENOENT).
//!
//! # Leaders, retries, consistency
//! Every call goes to the partition's Raft leader; a follower answers `NotLeader { leader }`. Reads are
//! linearizable (they see every acknowledged mutation). Every mutation carries an [`OpId`]: retrying it
//! with the same id (after `Timeout`, `Unavailable`, `NotLeader`, a closed connection) returns the first
//! outcome — success or error — instead of applying it twice. A partition remembers outcomes for ten
//! minutes (configurable, `op_ttl_secs`); any number of requests may be in flight meanwhile, in any
//! order. Request ids of one client must increase: once an outcome is forgotten, a request of that
//! client with a lower or equal id is refused with `InvalidArgument` rather than risk a double apply.
//!
//! # Operations that span partitions
//! A new inode may be placed in another partition than its directory (`inode_partition`), and a rename,
//! link or unlink may touch up to four partitions. The serving metanode then coordinates the others
//! through a crash-safe protocol (`ferrum_metanode::coord`): the caller sees one atomic-looking call.
//! For this it needs to reach the volume's other meta partitions: such requests carry `routes`, the
//! volume's meta partitions as the caller knows them (from its `VolumeView`, see [`MetaRoute::from`]).
//! Observers may see a transient state while such an operation runs (for a cross-directory rename, both
//! names exist for a moment); a crash in the middle is repaired by the metanodes themselves. If the
//! serving metanode was too slow and recovery aborted the operation meanwhile, the call fails with
//! `Unavailable("operation aborted by recovery; ...")`: nothing happened, retry with a *new* request id.
//! A source entry locked by a rename in progress makes other changes to it fail with `Busy` (retry).
//!
//! # Permissions
//! Mutations of the namespace and attributes carry the caller's credentials ([`Cred`]) and are checked
//! like a local filesystem does (search/write permission on directories, sticky directories, owner-only
//! `chmod`, root-only `chown`, ...). `uid` 0 bypasses permission bits, as `CAP_DAC_OVERRIDE` and
//! `CAP_FOWNER` do. Opening a file is not a metanode call: check access on `open` in the client.
//!
//! # Errors (besides `NotLeader`, `PartitionNotFound`, `Busy`, `Timeout`, `Unavailable`)
//! `NotFound` (ENOENT), `Exists` (EEXIST), `NotDir` (ENOTDIR), `IsDir` (EISDIR), `NotEmpty` (ENOTEMPTY),
//! `NameTooLong` (ENAMETOOLONG: a name over 255 bytes, a symlink target over 4095), `PermissionDenied`
//! (EACCES), `NotPermitted` (EPERM), `TooManyLinks` (EMLINK), `NoXattr` (ENODATA), `NotSupported`
//! (EOPNOTSUPP), `NoSpace` (ENOSPC: the partition's inode range is used up, or an xattr is too large),
//! `InvalidArgument` (EINVAL, e.g. renaming a directory into itself).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ids::{InodeId, OpId, PartitionId};
use crate::msg::attr::{FileKind, InodeAttr, SetAttrFields};
use crate::msg::extent::ExtentKey;
use crate::msg::name::Name;
use crate::msg::topology::{InodeRange, MetaPartitionView};

/// Longest symlink target (PATH_MAX without the terminating NUL).
pub const MAX_SYMLINK_LEN: usize = 4095;

/// Largest extended attribute value (Linux `XATTR_SIZE_MAX`).
pub const MAX_XATTR_VALUE: usize = 64 * 1024;

/// Most hard links to one file, and most subdirectories in one directory (+2).
pub const MAX_LINKS: u32 = 65_000;

/// Who is asking: the uid, gid and supplementary groups of the process behind the request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cred {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

impl Cred {
    /// Superuser: every permission check passes (tests, admin tools, trusted callers).
    pub fn root() -> Cred {
        Cred::default()
    }

    pub fn user(uid: u32, gid: u32) -> Cred {
        Cred { uid, gid, groups: Vec::new() }
    }

    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// Whether the caller belongs to `gid` (primary or supplementary).
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}

/// Where one meta partition of the volume is: what a metanode needs to reach it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaRoute {
    pub partition: PartitionId,
    pub inodes: InodeRange,
    /// `host:port` of each replica; the leader is found by following `NotLeader` hints.
    pub replicas: Vec<String>,
}

impl From<&MetaPartitionView> for MetaRoute {
    fn from(v: &MetaPartitionView) -> MetaRoute {
        // The known leader first: it is most likely to answer.
        let mut replicas: Vec<String> = v.leader.iter().map(|h| h.addr.clone()).collect();
        for r in &v.replicas {
            if !replicas.contains(&r.addr) {
                replicas.push(r.addr.clone());
            }
        }
        MetaRoute { partition: v.partition, inodes: v.inodes, replicas }
    }
}

/// The reply of every call that yields an inode's attributes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttrResp {
    pub attr: InodeAttr,
    /// For a call that changed a directory (`Create`, `Mkdir`, `Symlink`, `Link`): that directory's
    /// attributes right after, when the serving metanode holds it. The kernel asks for them after
    /// every change to a directory; the client answers from these instead of another round trip.
    pub dir: Option<InodeAttr>,
}

/// The name `name` in directory `parent`. Needs search (x) permission on `parent`. `.` is the
/// directory itself and `..` its parent (the root's is the root).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lookup {
    pub partition: PartitionId,
    pub parent: InodeId,
    pub name: Name,
    pub cred: Cred,
}

/// The entry found; `attr` is included when the child's inode lives in the same partition as the
/// directory, otherwise ask the child's partition with [`GetAttr`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupResp {
    pub inode: InodeId,
    pub kind: FileKind,
    pub attr: Option<InodeAttr>,
}
rpc!(Lookup => LookupResp, META_LOOKUP);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetAttr {
    pub partition: PartitionId,
    pub inode: InodeId,
}
rpc!(GetAttr => AttrResp, META_GET_ATTR);

/// Changes attributes with the POSIX rules: only the owner (or root) may `chmod`; only root may change
/// the owner, and the owner may change the group to one they belong to; `chmod` by a non-member of the
/// file's group clears setgid; `chown` and a size change by a non-root caller clear setuid and setgid
/// (setgid only when group-executable); setting times to "now" needs ownership or write permission,
/// setting them to a given time needs ownership. ctime is set to now on every change (or to
/// `set.ctime` when given). A size change sets mtime and ctime, and drops the extents past the new end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAttr {
    pub partition: PartitionId,
    pub op: OpId,
    pub inode: InodeId,
    pub set: SetAttrFields,
    pub cred: Cred,
    /// The change comes through an open file handle (`ftruncate`, `fchmod`, ...): write permission
    /// for a size change was checked when the file was opened, so it is not checked again.
    pub handle: bool,
}
rpc!(SetAttr => AttrResp, META_SET_ATTR);

/// Creates a regular file, fifo, socket or device node (`kind`; use [`Mkdir`] and [`Symlink`] for the
/// others) named `name` in `parent`, owned by the caller. In a setgid directory the new inode takes the
/// directory's group. Needs write and search permission on `parent`; `Exists` if the name is taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Create {
    pub partition: PartitionId,
    pub op: OpId,
    pub parent: InodeId,
    pub name: Name,
    pub kind: FileKind,
    /// Permission bits (with setuid/setgid/sticky), umask already applied.
    pub mode: u32,
    pub rdev: u32,
    pub cred: Cred,
    /// The partition that allocates the new inode: `partition` itself (cheapest), or another writable
    /// one of the volume to spread inodes.
    pub inode_partition: PartitionId,
    pub routes: Vec<MetaRoute>,
}
rpc!(Create => AttrResp, META_CREATE);

/// Creates a directory (see [`Create`]); the parent's link count grows by one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mkdir {
    pub partition: PartitionId,
    pub op: OpId,
    pub parent: InodeId,
    pub name: Name,
    pub mode: u32,
    pub cred: Cred,
    pub inode_partition: PartitionId,
    pub routes: Vec<MetaRoute>,
}
rpc!(Mkdir => AttrResp, META_MKDIR);

/// Removes a non-directory entry (`IsDir` for a directory). In a sticky directory only the owner of the
/// file or of the directory (or root) may remove it (`NotPermitted`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unlink {
    pub partition: PartitionId,
    pub op: OpId,
    pub parent: InodeId,
    pub name: Name,
    pub cred: Cred,
    pub routes: Vec<MetaRoute>,
    /// The inodes the caller holds open, if it says: an inode that loses its last link here and is
    /// not among them is deleted in the same step (`Unlinked::evicted`), saving the [`Evict`] call.
    /// `None`: the caller evicts itself.
    pub open_here: Option<Vec<InodeId>>,
}

/// Most inodes an [`Unlink`] may list as open at the caller (a client with more sends `None`).
pub const MAX_OPEN_HERE: usize = 64;

/// The inode an entry pointed to and its link count afterwards. At 0 the inode becomes an orphan: it
/// keeps its data until the client sends [`Evict`], which it does once it holds no open handle on it
/// (at once if it has none), unless it is already deleted (`evicted`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unlinked {
    pub inode: InodeId,
    pub nlink: u32,
    pub evicted: bool,
    /// The directory's attributes right after (see [`AttrResp::dir`]); `None` inside a [`RenameResp`].
    pub dir: Option<InodeAttr>,
}
rpc!(Unlink => Unlinked, META_UNLINK);

/// Removes an empty directory (`NotEmpty`, `NotDir`; sticky rules as for [`Unlink`]). The directory's
/// inode is deleted at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rmdir {
    pub partition: PartitionId,
    pub op: OpId,
    pub parent: InodeId,
    pub name: Name,
    pub cred: Cred,
    pub routes: Vec<MetaRoute>,
}
rpc!(Rmdir => (), META_RMDIR);

/// `renameat2(parent/name, new_parent/new_name, flags)`, sent to the partition of `new_parent`.
///
/// Replaces an existing target atomically: a file by a file, a directory by a directory only if the
/// target is empty (`NotEmpty`); a directory over a file is `NotDir`, a file over a directory `IsDir`.
/// Renaming a name onto another name of the same inode does nothing. Moving a directory into itself or
/// a descendant is `InvalidArgument`. Sticky-directory rules apply to the source and the replaced
/// target.
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
    pub cred: Cred,
    pub routes: Vec<MetaRoute>,
}

impl Rename {
    /// Fail with `Exists` instead of replacing the target (Linux `RENAME_NOREPLACE`).
    pub const NOREPLACE: u32 = 1;
    /// Swap source and target atomically; both must exist (Linux `RENAME_EXCHANGE`).
    pub const EXCHANGE: u32 = 2;
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenameResp {
    /// The target the rename replaced, if any (see [`Unlinked`]; a replaced directory is deleted and
    /// reported with `nlink` 0, and needs no `Evict`).
    pub replaced: Option<Unlinked>,
    /// The attributes of the directories changed (see [`AttrResp::dir`]) that the serving metanode
    /// holds.
    pub dirs: Vec<InodeAttr>,
}
rpc!(Rename => RenameResp, META_RENAME);

/// A new hard link to `inode` as `new_parent/new_name`, sent to the partition of `new_parent`.
/// `NotPermitted` for a directory, `TooManyLinks` past [`MAX_LINKS`], `NotFound` for an unlinked inode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub partition: PartitionId,
    pub op: OpId,
    pub inode: InodeId,
    pub new_parent: InodeId,
    pub new_name: Name,
    pub cred: Cred,
    pub routes: Vec<MetaRoute>,
}
rpc!(Link => AttrResp, META_LINK);

/// A symbolic link (mode `0o777`, owned by the caller).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Symlink {
    pub partition: PartitionId,
    pub op: OpId,
    pub parent: InodeId,
    pub name: Name,
    /// Bytes, like any path; at most [`MAX_SYMLINK_LEN`].
    pub target: Bytes,
    pub cred: Cred,
    pub inode_partition: PartitionId,
    pub routes: Vec<MetaRoute>,
}
rpc!(Symlink => AttrResp, META_SYMLINK);

/// `InvalidArgument` if the inode is not a symlink.
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

/// One page of a directory, in byte order of the names, excluding `.` and `..` (the client adds
/// those). A page is read from one consistent state; across pages, an entry that exists for the whole
/// listing is returned exactly once, however the directory changes meanwhile. No permission check:
/// read permission is checked when the client opens the directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadDir {
    pub partition: PartitionId,
    pub inode: InodeId,
    /// Resume strictly after this name; `None` from the start.
    pub cursor: Option<Name>,
    /// At most this many entries (the server caps it at [`ReadDir::MAX_LIMIT`]).
    pub limit: u32,
}

impl ReadDir {
    pub const MAX_LIMIT: u32 = 4096;
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

/// [`ReadDir`] with each entry's attributes, for a client that looks names up ahead of the kernel
/// (statahead). Attributes are given for entries whose inode lives in the same partition, `None` for
/// the others.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadDirPlus {
    pub partition: PartitionId,
    pub inode: InodeId,
    pub cursor: Option<Name>,
    pub limit: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadDirPlusResp {
    pub entries: Vec<(DirEntry, Option<InodeAttr>)>,
    pub next: Option<Name>,
}
rpc!(ReadDirPlus => ReadDirPlusResp, META_READ_DIR_PLUS);

/// Extended attribute names carry a namespace: `user.` (read/write permission on the inode; regular
/// files and directories only, else `NotPermitted`), `trusted.` (root only), `security.` and `system.`
/// (owner or root to change). Any other name is `NotSupported`. A missing attribute is `NoXattr`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetXattr {
    pub partition: PartitionId,
    pub inode: InodeId,
    pub name: Name,
    pub cred: Cred,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct XattrValue {
    pub value: Bytes,
}
rpc!(GetXattr => XattrValue, META_GET_XATTR);

/// Values up to [`MAX_XATTR_VALUE`] bytes (`NoSpace` beyond). Sets ctime.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetXattr {
    pub partition: PartitionId,
    pub op: OpId,
    pub inode: InodeId,
    pub name: Name,
    pub value: Bytes,
    /// [`SetXattr::CREATE`] or [`SetXattr::REPLACE`] (Linux `setxattr` flags), or 0.
    pub flags: u32,
    pub cred: Cred,
}

impl SetXattr {
    /// Fail with `Exists` if the attribute exists.
    pub const CREATE: u32 = 1;
    /// Fail with `NoXattr` if the attribute does not exist.
    pub const REPLACE: u32 = 2;
}
rpc!(SetXattr => (), META_SET_XATTR);

/// Names the caller may see (`trusted.` ones only for root), in byte order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListXattr {
    pub partition: PartitionId,
    pub inode: InodeId,
    pub cred: Cred,
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
    pub cred: Cred,
}
rpc!(RemoveXattr => (), META_REMOVE_XATTR);

/// Usage of one meta partition; the client sums over a volume's partitions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatFs {
    pub partition: PartitionId,
}

/// Leader: returns once a majority of the partition's replicas has fsynced every change acknowledged
/// before the call (`fsync`/`fsyncdir`; changes are acknowledged from memory).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncPartition {
    pub partition: PartitionId,
}
rpc!(SyncPartition => (), META_SYNC);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatFsResp {
    /// Inodes in use (including unlinked ones not yet evicted).
    pub inodes: u64,
    /// Sum of file sizes.
    pub bytes: u64,
    /// Inode numbers this partition can still allocate.
    pub free_inodes: u64,
}
rpc!(StatFs => StatFsResp, META_STAT_FS);

/// Records data the client has written to datanodes. Each key maps `len` bytes at `file_offset` and
/// replaces whatever the file mapped there before (the replaced pieces are queued for release, see
/// [`FreedList`], unless they are the very same bytes of the same extent). The size grows to cover the
/// new keys; mtime and ctime are set. A write by a non-root caller clears setuid/setgid, like Linux.
/// No permission check: access was checked when the file was opened.
///
/// A small file's bytes may instead live with its inode (`inline`, see [`InlineOp`]). A request whose
/// view of that is out of date (keys for a file that holds inline bytes, or inline bytes for a file
/// that has keys) is refused with `Stale`: reload the map with [`ExtentList`] and try again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtentAppend {
    pub partition: PartitionId,
    pub op: OpId,
    pub inode: InodeId,
    pub extents: Vec<ExtentKey>,
    pub inline: InlineOp,
    pub cred: Cred,
}
rpc!(ExtentAppend => (), META_EXTENT_APPEND);

/// Most bytes a file may keep inline, with its inode on the metanode, instead of in extents.
pub const MAX_INLINE: usize = 64 * 1024;

/// What an [`ExtentAppend`] does to the file's inline bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InlineOp {
    /// Leave them; `extents` are only accepted for a file without inline bytes.
    Keep,
    /// The file's data is these bytes from offset 0 (at most [`MAX_INLINE`]; `extents` must be empty,
    /// and the file must have no keys). The size grows to cover them.
    Set(Bytes),
    /// The file leaves inline storage: its bytes were written to extents, named in `extents`.
    Drop,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtentList {
    pub partition: PartitionId,
    pub inode: InodeId,
}

/// A file's data map: keys in file-offset order, never overlapping, all below `size`. Ranges not
/// covered by a key are holes (read as zeros).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtentListResp {
    pub size: u64,
    pub extents: Vec<ExtentKey>,
    /// A small file's bytes from offset 0, kept with its inode (then `extents` is empty). Past them,
    /// up to `size`, the file reads as zeros.
    pub inline: Option<Bytes>,
}
rpc!(ExtentList => ExtentListResp, META_EXTENT_LIST);

/// Sets a file's size through an open handle (no permission check), dropping the extent keys past it
/// (queued for release, see [`FreedList`]). Same as [`SetAttr`] with only `size` and `handle: true`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truncate {
    pub partition: PartitionId,
    pub op: OpId,
    pub inode: InodeId,
    pub size: u64,
}
rpc!(Truncate => AttrResp, META_TRUNCATE);

/// Deletes an inode whose link count reached 0, once no client has it open; its extents are queued
/// for release (see [`FreedList`]). Evicting an inode that is linked again or already gone succeeds
/// and does nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evict {
    pub partition: PartitionId,
    pub op: OpId,
    pub inode: InodeId,
}
rpc!(Evict => (), META_EVICT);

/// The oldest pieces of file data that no inode of this partition references any more (evicted,
/// truncated or overwritten): whoever can reach the datanodes (the client) releases them there
/// (`Delete` when a piece covers its whole extent, else `PunchHole`), then acknowledges with
/// [`FreedAck`]. Releasing twice is harmless, so a crash between the two only repeats work.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreedList {
    pub partition: PartitionId,
    pub limit: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreedPiece {
    /// Position in the partition's queue, for [`FreedAck`].
    pub seq: u64,
    pub extent: ExtentKey,
    /// Freed because its inode was evicted (rather than truncated or overwritten). A client that never
    /// shares an extent between files may then delete the whole extent once all its pieces are freed;
    /// punching the piece's range is always safe.
    pub inode_evicted: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreedListResp {
    pub pieces: Vec<FreedPiece>,
}
rpc!(FreedList => FreedListResp, META_FREED_LIST);

/// Drops the queue entries with `seq <= upto`: their data was released on the datanodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreedAck {
    pub partition: PartitionId,
    pub op: OpId,
    pub upto: u64,
}
rpc!(FreedAck => (), META_FREED_ACK);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ClientId, NodeId, RequestId};
    use crate::msg::topology::Replica;
    use crate::msg::{decode, encode, Rpc};
    use crate::{LeaderHint, Opcode};

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
            cred: Cred { uid: 1000, gid: 100, groups: vec![4, 27] },
            routes: vec![],
        };
        assert_eq!(decode::<Rename>(&encode(&r)).unwrap(), r);
        let page = ReadDirResp {
            entries: vec![DirEntry { name: "x".into(), inode: InodeId(3), kind: FileKind::Dir }],
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
        assert_eq!(FreedAck::OPCODE, Opcode::META_FREED_ACK);
    }

    #[test]
    fn cred_groups() {
        let c = Cred { uid: 5, gid: 50, groups: vec![7] };
        assert!(c.in_group(50) && c.in_group(7) && !c.in_group(8));
        assert!(!c.is_root() && Cred::root().is_root());
    }

    #[test]
    fn route_from_view_puts_the_leader_first() {
        let v = MetaPartitionView {
            partition: PartitionId(3),
            inodes: InodeRange { start: InodeId(1), end: InodeId(10) },
            replicas: vec![
                Replica { node: NodeId(1), addr: "a:1".into() },
                Replica { node: NodeId(2), addr: "b:2".into() },
            ],
            leader: Some(LeaderHint { node: NodeId(2), addr: "b:2".into() }),
        };
        let r = MetaRoute::from(&v);
        assert_eq!(r.replicas, vec!["b:2".to_string(), "a:1".to_string()]);
        assert_eq!(r.partition, PartitionId(3));
    }
}
