//! Directory handles: opendir, readdir (paged from the metanode by name cursor), releasedir.

use std::sync::Arc;

use ferrum_proto::msg::attr::FileKind;
use ferrum_proto::msg::name::Name;
use ferrum_proto::InodeId;

use super::handles::{DirHandle, Listing};
use super::{Fh, Vfs};
use crate::backend::{DataBackend, MetaBackend};
use crate::error::Result;

/// One entry as the kernel wants it: `offset` is where to resume *after* this entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntryOut {
    pub ino: InodeId,
    pub offset: u64,
    pub kind: FileKind,
    pub name: Name,
}

impl<M: MetaBackend, D: DataBackend> Vfs<M, D> {
    pub async fn opendir(&self, ino: InodeId) -> Result<Fh> {
        // Fail now on a missing inode or a non-directory, not at the first readdir.
        let attr = self.getattr(ino).await?;
        if attr.kind != FileKind::Dir {
            return Err(ferrum_proto::ErrorCode::NotDir.into());
        }
        let fh = self.next_fh();
        let handle = DirHandle { ino, listing: tokio::sync::Mutex::new(Listing::default()) };
        self.inner.dirs.lock().expect("dirs lock").insert(fh, Arc::new(handle));
        Ok(fh)
    }

    /// Up to `max` entries from position `offset` (0 = `.`, 1 = `..`, then the directory's entries in
    /// name order). Offset 0 on a handle that was read before starts a fresh listing (`rewinddir`).
    pub async fn readdir(&self, fh: Fh, offset: u64, max: usize) -> Result<Vec<DirEntryOut>> {
        let h = self.dir(fh)?;
        let mut l = h.listing.lock().await;
        if offset == 0 && (l.done || !l.entries.is_empty()) {
            *l = Listing::default();
        }
        let mut out = Vec::new();
        let mut pos = offset;
        while out.len() < max {
            match pos {
                0 => out.push(DirEntryOut { ino: h.ino, offset: 1, kind: FileKind::Dir, name: Name::from(".") }),
                1 => out.push(DirEntryOut { ino: h.ino, offset: 2, kind: FileKind::Dir, name: Name::from("..") }),
                _ => {
                    let i = (pos - 2) as usize;
                    while i >= l.entries.len() && !l.done {
                        let page =
                            self.inner.meta.read_dir(h.ino, l.cursor.as_ref(), self.inner.cfg.readdir_page).await?;
                        l.entries.extend(page.entries);
                        l.done = page.next.is_none();
                        l.cursor = page.next;
                    }
                    let Some(e) = l.entries.get(i) else { break };
                    out.push(DirEntryOut { ino: e.inode, offset: pos + 1, kind: e.kind, name: e.name.clone() });
                }
            }
            pos += 1;
        }
        Ok(out)
    }

    pub fn releasedir(&self, fh: Fh) -> Result<()> {
        self.inner.dirs.lock().expect("dirs lock").remove(&fh).map(drop).ok_or(crate::error::FsError::BadHandle)
    }
}
