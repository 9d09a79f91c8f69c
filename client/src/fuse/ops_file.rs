//! Open files: open, create, read, write, flush, release, fsync, fallocate, lseek.

use std::ffi::OsStr;

use fuser::{
    FileHandle, FopenFlags, Generation, INodeNo, OpenFlags, ReplyCreate, ReplyData, ReplyEmpty, ReplyLseek, ReplyOpen,
    ReplyWrite, Request,
};

use super::adapter::{errno, FuseFs};
use super::attr::file_attr;
use super::ops_entry::{ino, name_of};
use crate::backend::{DataBackend, MetaBackend};
use crate::error::FsError;
use crate::vfs::{FallocateMode, Whence};

impl<M: MetaBackend, D: DataBackend> FuseFs<M, D> {
    pub(super) fn do_open(&self, req: &Request, n: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let (vfs, cred) = (self.vfs.clone(), self.creds.of(req));
        self.spawn(async move {
            // No FOPEN_KEEP_CACHE: the kernel drops this file's cached pages on open, which together
            // with the extent map re-read on first open gives close-to-open consistency.
            match vfs.open(ino(n), flags.0, &cred).await {
                Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    pub(super) fn do_create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let (vfs, cred, name, ttl) = (self.vfs.clone(), self.creds.of(req), name_of(name), self.attr_ttl);
        self.spawn(async move {
            match vfs.create(ino(parent), &name, mode, flags, &cred).await {
                Ok((a, fh)) => reply.created(&ttl, &file_attr(&a), Generation(0), FileHandle(fh), FopenFlags::empty()),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    pub(super) fn do_read(&self, fh: FileHandle, offset: u64, size: u32, reply: ReplyData) {
        let vfs = self.vfs.clone();
        self.spawn(async move {
            match vfs.read(fh.0, offset, size).await {
                Ok(bytes) => reply.data(&bytes),
                Err(e) => {
                    tracing::debug!(fh = fh.0, offset, size, error = %e, "read failed");
                    reply.error(errno(&e))
                }
            }
        });
    }

    pub(super) fn do_write(&self, fh: FileHandle, offset: u64, data: &[u8], reply: ReplyWrite) {
        // The one copy on the write path: out of fuser's request buffer, which is reused at once.
        let (vfs, data) = (self.vfs.clone(), data.to_vec());
        self.spawn(async move {
            match vfs.write(fh.0, offset, &data).await {
                Ok(n) => reply.written(n),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    pub(super) fn do_flush(&self, fh: FileHandle, reply: ReplyEmpty) {
        let vfs = self.vfs.clone();
        self.reply_empty(reply, async move { vfs.flush(fh.0).await })
    }

    pub(super) fn do_release(&self, fh: FileHandle, reply: ReplyEmpty) {
        let vfs = self.vfs.clone();
        self.reply_empty(reply, async move { vfs.release(fh.0).await })
    }

    pub(super) fn do_fsync(&self, fh: FileHandle, datasync: bool, reply: ReplyEmpty) {
        let vfs = self.vfs.clone();
        self.reply_empty(reply, async move { vfs.fsync(fh.0, datasync).await })
    }

    pub(super) fn do_fallocate(&self, fh: FileHandle, offset: u64, len: u64, mode: i32, reply: ReplyEmpty) {
        let vfs = self.vfs.clone();
        self.reply_empty(reply, async move { vfs.fallocate(fh.0, offset, len, FallocateMode(mode)).await })
    }

    pub(super) fn do_lseek(&self, fh: FileHandle, offset: i64, whence: i32, reply: ReplyLseek) {
        // The kernel resolves SEEK_SET/CUR/END itself and only asks for data and holes.
        let whence = match whence {
            libc::SEEK_DATA => Whence::Data,
            libc::SEEK_HOLE => Whence::Hole,
            _ => return reply.error(errno(&ferrum_proto::ErrorCode::InvalidArgument("whence".into()).into())),
        };
        let Ok(offset) = u64::try_from(offset) else {
            return reply.error(errno(&FsError::PastEof));
        };
        let vfs = self.vfs.clone();
        self.spawn(async move {
            match vfs.lseek(fh.0, offset, whence).await {
                Ok(o) => reply.offset(o as i64),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }
}
