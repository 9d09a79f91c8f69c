//! Directory handles: opendir, readdir, releasedir.

use std::os::unix::ffi::OsStrExt;

use fuser::{FileHandle, FopenFlags, INodeNo, ReplyDirectory, ReplyEmpty, ReplyOpen};

use super::adapter::{errno, FuseFs};
use super::attr::file_type;
use super::ops_entry::ino;
use crate::backend::{DataBackend, MetaBackend};

/// Entries prepared per readdir call; those that do not fit the kernel's buffer are served again from
/// the handle's listing at the next call, without a metanode round trip.
const BATCH: usize = 512;

impl<M: MetaBackend, D: DataBackend> FuseFs<M, D> {
    pub(super) fn do_opendir(&self, n: INodeNo, reply: ReplyOpen) {
        let vfs = self.vfs.clone();
        self.spawn(async move {
            match vfs.opendir(ino(n)).await {
                Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    pub(super) fn do_readdir(&self, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let vfs = self.vfs.clone();
        self.spawn(async move {
            match vfs.readdir(fh.0, offset, BATCH).await {
                Ok(entries) => {
                    for e in entries {
                        let name = std::ffi::OsStr::from_bytes(e.name.as_bytes());
                        if reply.add(INodeNo(e.ino.get()), e.offset, file_type(e.kind), name) {
                            break;
                        }
                    }
                    reply.ok()
                }
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    pub(super) fn do_releasedir(&self, fh: FileHandle, reply: ReplyEmpty) {
        match self.vfs.releasedir(fh.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }
}
