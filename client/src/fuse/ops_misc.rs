//! statfs, extended attributes, access.

use std::ffi::OsStr;

use bytes::Bytes;
use fuser::{AccessFlags, INodeNo, ReplyEmpty, ReplyStatfs, ReplyXattr, Request};

use super::adapter::{errno, FuseFs};
use super::ops_entry::{ino, name_of};
use crate::backend::{DataBackend, MetaBackend};
use crate::error::FsError;

/// `getxattr`/`listxattr` protocol: size 0 asks for the length, a too-small size is `ERANGE`.
fn reply_sized(reply: ReplyXattr, size: u32, value: &[u8]) {
    if size == 0 {
        reply.size(value.len() as u32)
    } else if value.len() > size as usize {
        reply.error(errno(&FsError::Range))
    } else {
        reply.data(value)
    }
}

impl<M: MetaBackend, D: DataBackend> FuseFs<M, D> {
    pub(super) fn do_statfs(&self, reply: ReplyStatfs) {
        let vfs = self.vfs.clone();
        self.spawn(async move {
            match vfs.statfs().await {
                Ok(s) => reply.statfs(s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    pub(super) fn do_setxattr(
        &self,
        req: &Request,
        n: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        reply: ReplyEmpty,
    ) {
        let (vfs, cred, name) = (self.vfs.clone(), self.creds.of(req), name_of(name));
        let value = Bytes::copy_from_slice(value);
        // XATTR_CREATE / XATTR_REPLACE are the protocol's CREATE / REPLACE bits.
        let flags = (flags & (libc::XATTR_CREATE | libc::XATTR_REPLACE)) as u32;
        self.reply_empty(reply, async move { vfs.setxattr(ino(n), &name, value, flags, &cred).await })
    }

    pub(super) fn do_getxattr(&self, req: &Request, n: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let (vfs, cred, name) = (self.vfs.clone(), self.creds.of(req), name_of(name));
        self.spawn(async move {
            match vfs.getxattr(ino(n), &name, &cred).await {
                Ok(value) => reply_sized(reply, size, &value),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    pub(super) fn do_listxattr(&self, req: &Request, n: INodeNo, size: u32, reply: ReplyXattr) {
        let (vfs, cred) = (self.vfs.clone(), self.creds.of(req));
        self.spawn(async move {
            match vfs.listxattr(ino(n), &cred).await {
                Ok(names) => {
                    let mut list = Vec::new();
                    for name in names {
                        list.extend_from_slice(name.as_bytes());
                        list.push(0);
                    }
                    reply_sized(reply, size, &list)
                }
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    pub(super) fn do_removexattr(&self, req: &Request, n: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let (vfs, cred, name) = (self.vfs.clone(), self.creds.of(req), name_of(name));
        self.reply_empty(reply, async move { vfs.removexattr(ino(n), &name, &cred).await })
    }

    pub(super) fn do_access(&self, req: &Request, n: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let (vfs, cred) = (self.vfs.clone(), self.creds.of(req));
        self.reply_empty(reply, async move { vfs.access(ino(n), mask.bits(), &cred).await })
    }
}
