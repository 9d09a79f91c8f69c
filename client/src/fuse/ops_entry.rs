//! Names and attributes: lookup, getattr, setattr, readlink, mknod, mkdir, unlink, rmdir, symlink,
//! rename, link.
//!
//! The kernel applied the umask to `mode` already (no `FUSE_DONT_MASK`), so it is used as given.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use bytes::Bytes;
use ferrum_proto::msg::attr::{InodeAttr, SetTime, Time};
use ferrum_proto::msg::name::Name;
use ferrum_proto::{ErrorCode, InodeId};
use fuser::{
    FileHandle, Generation, INodeNo, RenameFlags, ReplyAttr, ReplyData, ReplyEmpty, ReplyEntry, Request, TimeOrNow,
};

use super::adapter::{errno, FuseFs};
use super::attr::file_attr;
use crate::backend::{DataBackend, MetaBackend};
use crate::error::Result;
use crate::vfs::SetAttr;

pub(super) fn name_of(s: &OsStr) -> Name {
    Name::from(s.as_bytes())
}

pub(super) fn ino(n: INodeNo) -> InodeId {
    InodeId(n.0)
}

fn set_time(t: TimeOrNow) -> SetTime {
    match t {
        TimeOrNow::Now => SetTime::Now,
        TimeOrNow::SpecificTime(t) => SetTime::At(Time::from(t)),
    }
}

impl<M: MetaBackend, D: DataBackend> FuseFs<M, D> {
    /// Runs `op` on tokio and answers with the entry it yields.
    pub(super) fn reply_entry(
        &self,
        reply: ReplyEntry,
        op: impl std::future::Future<Output = Result<InodeAttr>> + Send + 'static,
    ) {
        let (attr_ttl, entry_ttl) = (self.attr_ttl, self.entry_ttl);
        self.spawn(async move {
            match op.await {
                Ok(a) => reply.entry_with_ttls(&attr_ttl, &entry_ttl, &file_attr(&a), Generation(0)),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    pub(super) fn reply_empty(
        &self,
        reply: ReplyEmpty,
        op: impl std::future::Future<Output = Result<()>> + Send + 'static,
    ) {
        self.spawn(async move {
            match op.await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    pub(super) fn do_lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let (vfs, cred, name) = (self.vfs.clone(), self.creds.of(req), name_of(name));
        self.reply_entry(reply, async move { vfs.lookup(ino(parent), &name, &cred).await })
    }

    pub(super) fn do_getattr(&self, n: INodeNo, reply: ReplyAttr) {
        let (vfs, ttl) = (self.vfs.clone(), self.attr_ttl);
        self.spawn(async move {
            match vfs.getattr(ino(n)).await {
                Ok(a) => reply.attr(&ttl, &file_attr(&a)),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn do_setattr(
        &self,
        req: &Request,
        n: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        fh: Option<FileHandle>,
        reply: ReplyAttr,
    ) {
        let set = SetAttr {
            mode: mode.map(|m| m & 0o7777),
            uid,
            gid,
            size,
            atime: atime.map(set_time),
            mtime: mtime.map(set_time),
        };
        let (vfs, cred, ttl) = (self.vfs.clone(), self.creds.of(req), self.attr_ttl);
        self.spawn(async move {
            match vfs.setattr(ino(n), &set, fh.map(|f| f.0), &cred).await {
                Ok(a) => reply.attr(&ttl, &file_attr(&a)),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    pub(super) fn do_readlink(&self, n: INodeNo, reply: ReplyData) {
        let vfs = self.vfs.clone();
        self.spawn(async move {
            match vfs.readlink(ino(n)).await {
                Ok(target) => reply.data(&target),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    pub(super) fn do_mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let (vfs, cred, name) = (self.vfs.clone(), self.creds.of(req), name_of(name));
        self.reply_entry(reply, async move { vfs.mknod(ino(parent), &name, mode, rdev, &cred).await })
    }

    pub(super) fn do_mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, reply: ReplyEntry) {
        let (vfs, cred, name) = (self.vfs.clone(), self.creds.of(req), name_of(name));
        self.reply_entry(reply, async move { vfs.mkdir(ino(parent), &name, mode, &cred).await })
    }

    pub(super) fn do_unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let (vfs, cred, name) = (self.vfs.clone(), self.creds.of(req), name_of(name));
        self.reply_empty(reply, async move { vfs.unlink(ino(parent), &name, &cred).await })
    }

    pub(super) fn do_rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let (vfs, cred, name) = (self.vfs.clone(), self.creds.of(req), name_of(name));
        self.reply_empty(reply, async move { vfs.rmdir(ino(parent), &name, &cred).await })
    }

    pub(super) fn do_symlink(&self, req: &Request, parent: INodeNo, name: &OsStr, target: &Path, reply: ReplyEntry) {
        let (vfs, cred, name) = (self.vfs.clone(), self.creds.of(req), name_of(name));
        let target = Bytes::copy_from_slice(target.as_os_str().as_bytes());
        self.reply_entry(reply, async move { vfs.symlink(ino(parent), &name, target, &cred).await })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn do_rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        new_parent: INodeNo,
        new_name: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        // Whiteouts are an overlayfs device trick that this filesystem does not store.
        if flags.contains(RenameFlags::RENAME_WHITEOUT) {
            return reply.error(errno(&ErrorCode::InvalidArgument("RENAME_WHITEOUT".into()).into()));
        }
        let (vfs, cred) = (self.vfs.clone(), self.creds.of(req));
        let (name, new_name) = (name_of(name), name_of(new_name));
        self.reply_empty(reply, async move {
            vfs.rename(ino(parent), &name, ino(new_parent), &new_name, flags.bits(), &cred).await
        })
    }

    pub(super) fn do_link(&self, req: &Request, n: INodeNo, new_parent: INodeNo, new_name: &OsStr, reply: ReplyEntry) {
        let (vfs, cred, new_name) = (self.vfs.clone(), self.creds.of(req), name_of(new_name));
        self.reply_entry(reply, async move { vfs.link(ino(n), ino(new_parent), &new_name, &cred).await })
    }
}
