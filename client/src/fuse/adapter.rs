//! The `fuser::Filesystem` impl: a dispatch table. Each method hands its request to the matching
//! `do_*` function in `ops_*.rs`, which copies the arguments and hands the work to [`FuseFs::spawn`]
//! (run here until it has to wait, then on tokio), replying from wherever it finishes.

use std::ffi::OsStr;
use std::future::Future;
use std::io;
use std::path::Path;
use std::task::{Context, Waker};
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, BsdFileFlags, Errno, FileHandle, Filesystem, INodeNo, KernelConfig, LockOwner, OpenFlags, RenameFlags,
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyLseek, ReplyOpen, ReplyStatfs,
    ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use tokio::runtime::Handle;

use super::cred::Creds;
use crate::backend::{DataBackend, MetaBackend};
use crate::error::FsError;
use crate::vfs::Vfs;

/// Largest FUSE read and write: 1 MiB, what the kernel allows by default (256 pages).
pub const MAX_IO: u32 = 1 << 20;

pub struct FuseFs<M, D> {
    pub(super) vfs: Vfs<M, D>,
    pub(super) rt: Handle,
    pub(super) creds: Creds,
    pub(super) attr_ttl: Duration,
    pub(super) entry_ttl: Duration,
}

impl<M: MetaBackend, D: DataBackend> FuseFs<M, D> {
    /// The kernel caches attributes and entries for the VFS config's TTLs.
    pub fn new(vfs: Vfs<M, D>, rt: Handle) -> FuseFs<M, D> {
        let (attr_ttl, entry_ttl) = (vfs.config().attr_ttl, vfs.config().entry_ttl);
        FuseFs { vfs, rt, creds: Creds::default(), attr_ttl, entry_ttl }
    }

    /// Runs a request's work: first right here on the FUSE thread, until it has to wait, and only then
    /// on tokio. A request served from the client's caches (a lookup the statahead listing answers, a
    /// cached getattr, the readdir pages of an open directory, a releasedir) is then answered without
    /// waking a tokio worker: on an idle VM each such hand-off costs a thread wake-up, a good part of a
    /// round trip that does no other work.
    pub(super) fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        let mut work = Box::pin(work);
        // tokio's timers and sockets need the runtime's context even when polled from another thread.
        let _rt = self.rt.enter();
        // A future that returns `Pending` wakes the waker of its latest poll, which tokio supplies when
        // it polls the task; this first waker is never used.
        let mut cx = Context::from_waker(Waker::noop());
        if work.as_mut().poll(&mut cx).is_pending() {
            self.rt.spawn(work);
        }
    }
}

/// The errno for a reply (the mapping itself is [`crate::errno`]).
pub(super) fn errno(e: &FsError) -> Errno {
    Errno::from_i32(crate::errno::errno(e))
}

/// Tries to enable a kernel capability; unsupported ones are skipped (older kernels).
fn want(config: &mut KernelConfig, cap: fuser::InitFlags) {
    if config.add_capabilities(cap).is_err() {
        tracing::debug!(?cap, "kernel lacks FUSE capability");
    }
}

impl<M: MetaBackend, D: DataBackend> Filesystem for FuseFs<M, D> {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        use fuser::InitFlags as F;
        // Large requests: fewer round trips through the kernel for big reads and writes.
        if let Err(max) = config.set_max_write(MAX_IO) {
            let _ = config.set_max_write(max);
        }
        if let Err(max) = config.set_max_readahead(MAX_IO) {
            let _ = config.set_max_readahead(max);
        }
        // More requests in flight (read-ahead, async direct I/O): they run concurrently on tokio.
        let _ = config.set_max_background(64);
        // Lookups and readdirs of one directory need not be serialised: the metanode orders them.
        want(config, F::FUSE_PARALLEL_DIROPS);
        want(config, F::FUSE_ASYNC_DIO);
        // Symlink targets cached in the page cache (they never change).
        want(config, F::FUSE_CACHE_SYMLINKS);
        Ok(())
    }

    fn destroy(&mut self) {
        // Files still open at unmount (a lazy unmount) get their buffered writes stored.
        let vfs = self.vfs.clone();
        let _ = self.rt.block_on(async move { vfs.flush_all().await });
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.do_lookup(req, parent, name, reply)
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.do_getattr(ino, reply)
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        self.do_setattr(req, ino, mode, uid, gid, size, atime, mtime, fh, reply)
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.do_readlink(ino, reply)
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        self.do_mknod(req, parent, name, mode, rdev, reply)
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, _umask: u32, reply: ReplyEntry) {
        self.do_mkdir(req, parent, name, mode, reply)
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.do_unlink(req, parent, name, reply)
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.do_rmdir(req, parent, name, reply)
    }

    fn symlink(&self, req: &Request, parent: INodeNo, link_name: &OsStr, target: &Path, reply: ReplyEntry) {
        self.do_symlink(req, parent, link_name, target, reply)
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        self.do_rename(req, parent, name, newparent, newname, flags, reply)
    }

    fn link(&self, req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        self.do_link(req, ino, newparent, newname, reply)
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.do_open(req, ino, flags, reply)
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.do_read(fh, offset, size, reply)
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        self.do_write(fh, offset, data, reply)
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        self.do_flush(fh, reply)
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.do_release(fh, reply)
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, datasync: bool, reply: ReplyEmpty) {
        self.do_fsync(fh, datasync, reply)
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.do_opendir(ino, reply)
    }

    fn readdir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, offset: u64, reply: ReplyDirectory) {
        self.do_readdir(fh, offset, reply)
    }

    fn releasedir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _flags: OpenFlags, reply: ReplyEmpty) {
        self.do_releasedir(fh, reply)
    }

    fn fsyncdir(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        let vfs = self.vfs.clone();
        self.spawn(async move {
            match vfs.sync_backends().await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        self.do_statfs(reply)
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        self.do_setxattr(req, ino, name, value, flags, reply)
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        self.do_getxattr(req, ino, name, size, reply)
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        self.do_listxattr(req, ino, size, reply)
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.do_removexattr(req, ino, name, reply)
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        self.do_access(req, ino, mask, reply)
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        self.do_create(req, parent, name, mode, flags, reply)
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        self.do_fallocate(fh, offset, length, mode, reply)
    }

    fn lseek(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, offset: i64, whence: i32, reply: ReplyLseek) {
        self.do_lseek(fh, offset, whence, reply)
    }
}
