//! Where the client meets the services: [`MetaBackend`] (namespace, attributes, xattrs, extent maps) and
//! [`DataBackend`] (extents). The VFS layer is written against these two traits only, so it runs the same
//! over the in-memory implementations ([`memory`], for fast tests and `ferrum mount --memory`) and over
//! the cluster ([`rpc`]: the master for the volume view, partition leaders for everything else).
//!
//! Errors are wire [`ErrorCode`]s either way, so the in-memory backend fails exactly the way a metanode
//! would, and the errno mapping is exercised by the fast tests too.
//!
//! Methods return `impl Future + Send` (not `async fn`) so that callers can spawn the futures on a
//! multi-thread runtime; implementations may still write `async fn`.

use std::future::Future;

use bytes::Bytes;
use ferrum_proto::msg::attr::{FileKind, InodeAttr, SetAttrFields};
use ferrum_proto::msg::extent::ExtentKey;
use ferrum_proto::msg::meta::{
    AttrResp, Cred, ExtentListResp, InlineOp, ReadDirPlusResp, ReadDirResp, RenameResp, Unlinked,
};
use ferrum_proto::msg::name::Name;
use ferrum_proto::{ErrorCode, ExtentId, InodeId, PartitionId};

pub mod deadline;
pub mod memory;
pub mod rpc;

pub type BResult<T> = Result<T, ErrorCode>;

/// What a new non-directory inode looks like (regular file, fifo, socket, device); it is owned by the
/// caller's credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewNode {
    pub kind: FileKind,
    /// Permission bits (`0o7777`), umask already applied.
    pub mode: u32,
    pub rdev: u32,
}

/// Usage summed over a volume's meta partitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct VolumeUsage {
    pub inodes: u64,
    pub bytes: u64,
    /// Inode numbers still available, when the backend knows.
    pub free_inodes: Option<u64>,
}

/// One extent: a data partition and an extent id within it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExtentAddr {
    pub partition: PartitionId,
    pub extent: ExtentId,
}

impl ExtentAddr {
    pub fn of(key: &ExtentKey) -> ExtentAddr {
        ExtentAddr { partition: key.partition, extent: key.extent }
    }
}

/// Metadata operations the filesystem needs. Every mutation is applied once even if retried (the RPC
/// implementation tags each with an `OpId`). Calls that a metanode checks permissions for carry the
/// caller's [`Cred`]; new inodes are owned by it.
pub trait MetaBackend: Send + Sync + 'static {
    fn lookup(&self, parent: InodeId, name: &Name, cred: &Cred) -> impl Future<Output = BResult<InodeAttr>> + Send;
    fn get_attr(&self, inode: InodeId) -> impl Future<Output = BResult<InodeAttr>> + Send;
    /// `handle`: the change comes through an open file (`ftruncate`, `fchmod`), whose open already
    /// checked write permission.
    fn set_attr(
        &self,
        inode: InodeId,
        set: &SetAttrFields,
        cred: &Cred,
        handle: bool,
    ) -> impl Future<Output = BResult<InodeAttr>> + Send;
    /// A regular file, fifo, socket or device node and its entry. These four also return the
    /// directory's new attributes when the server has them (`AttrResp::dir`).
    fn create(
        &self,
        parent: InodeId,
        name: &Name,
        node: &NewNode,
        cred: &Cred,
    ) -> impl Future<Output = BResult<AttrResp>> + Send;
    fn mkdir(
        &self,
        parent: InodeId,
        name: &Name,
        mode: u32,
        cred: &Cred,
    ) -> impl Future<Output = BResult<AttrResp>> + Send;
    fn symlink(
        &self,
        parent: InodeId,
        name: &Name,
        target: &Bytes,
        cred: &Cred,
    ) -> impl Future<Output = BResult<AttrResp>> + Send;
    fn link(
        &self,
        inode: InodeId,
        new_parent: InodeId,
        new_name: &Name,
        cred: &Cred,
    ) -> impl Future<Output = BResult<AttrResp>> + Send;
    /// `open_here`: the inodes this client holds open (see `Unlink::open_here`), or `None`.
    fn unlink(
        &self,
        parent: InodeId,
        name: &Name,
        cred: &Cred,
        open_here: Option<Vec<InodeId>>,
    ) -> impl Future<Output = BResult<Unlinked>> + Send;
    fn rmdir(&self, parent: InodeId, name: &Name, cred: &Cred) -> impl Future<Output = BResult<()>> + Send;
    /// `flags`: `Rename::NOREPLACE` / `Rename::EXCHANGE`.
    fn rename(
        &self,
        parent: InodeId,
        name: &Name,
        new_parent: InodeId,
        new_name: &Name,
        flags: u32,
        cred: &Cred,
    ) -> impl Future<Output = BResult<RenameResp>> + Send;
    fn readlink(&self, inode: InodeId) -> impl Future<Output = BResult<Bytes>> + Send;
    /// One page of entries after `cursor` in name order, without `.` and `..`.
    fn read_dir(
        &self,
        inode: InodeId,
        cursor: Option<&Name>,
        limit: u32,
    ) -> impl Future<Output = BResult<ReadDirResp>> + Send;
    /// [`MetaBackend::read_dir`] with the attributes of the entries (where the server has them).
    fn read_dir_plus(
        &self,
        inode: InodeId,
        cursor: Option<&Name>,
        limit: u32,
    ) -> impl Future<Output = BResult<ReadDirPlusResp>> + Send;
    fn get_xattr(&self, inode: InodeId, name: &Name, cred: &Cred) -> impl Future<Output = BResult<Bytes>> + Send;
    /// `flags`: `SetXattr::CREATE` / `SetXattr::REPLACE` or 0.
    fn set_xattr(
        &self,
        inode: InodeId,
        name: &Name,
        value: &Bytes,
        flags: u32,
        cred: &Cred,
    ) -> impl Future<Output = BResult<()>> + Send;
    fn list_xattr(&self, inode: InodeId, cred: &Cred) -> impl Future<Output = BResult<Vec<Name>>> + Send;
    fn remove_xattr(&self, inode: InodeId, name: &Name, cred: &Cred) -> impl Future<Output = BResult<()>> + Send;
    fn stat_fs(&self) -> impl Future<Output = BResult<VolumeUsage>> + Send;
    /// Records extents written to datanodes; later keys win where they overlap, the size grows to cover
    /// them. `inline` sets or drops a small file's inline bytes (`Stale` if the metanode's state of them
    /// is not what this client assumed).
    fn extent_append(
        &self,
        inode: InodeId,
        extents: &[ExtentKey],
        inline: &InlineOp,
        cred: &Cred,
    ) -> impl Future<Output = BResult<()>> + Send;
    fn extent_list(&self, inode: InodeId) -> impl Future<Output = BResult<ExtentListResp>> + Send;
    /// Sets the size through an open handle; data past it is dropped (and reads as zeros if the file
    /// grows again).
    fn truncate(&self, inode: InodeId, size: u64) -> impl Future<Output = BResult<InodeAttr>> + Send;
    /// Deletes an inode whose link count is 0 once this client holds no open handle on it.
    fn evict(&self, inode: InodeId) -> impl Future<Output = BResult<()>> + Send;
    /// Every change acknowledged so far is on the disks of a majority of its partition's replicas
    /// (changes are acknowledged once in the memory of a majority).
    fn sync(&self) -> impl Future<Output = BResult<()>> + Send;
}

/// Data operations: extents are append-friendly objects on data partitions; file bytes never pass
/// through the metanodes.
pub trait DataBackend: Send + Sync + 'static {
    /// A new, empty extent on some writable data partition.
    fn create_extent(&self) -> impl Future<Output = BResult<ExtentAddr>> + Send;
    fn write(&self, at: ExtentAddr, offset: u64, data: Bytes) -> impl Future<Output = BResult<()>> + Send;
    /// Up to `len` bytes at `offset`; shorter at the end of the extent.
    fn read(&self, at: ExtentAddr, offset: u64, len: u32) -> impl Future<Output = BResult<Bytes>> + Send;
    /// `len` bytes at `offset` read as zeros afterwards.
    fn punch_hole(&self, at: ExtentAddr, offset: u64, len: u64) -> impl Future<Output = BResult<()>> + Send;
    /// The volume's capacity in bytes; `None` when unlimited or unknown.
    fn capacity(&self) -> impl Future<Output = BResult<Option<u64>>> + Send;
    /// Every write this client had acknowledged is on the disks of a majority of its partition's replicas.
    fn sync(&self) -> impl Future<Output = BResult<()>> + Send;
}
