//! Namespace and attribute operations: lookup, getattr/setattr, creating and removing names, links,
//! renames, symlinks, access checks.

use bytes::Bytes;
use ferrum_proto::msg::attr::{FileKind, InodeAttr, SetAttrFields, SetTime};
use ferrum_proto::msg::meta::{AttrResp, Unlinked};
use ferrum_proto::msg::name::Name;
use ferrum_proto::{ErrorCode, InodeId};

use std::collections::HashMap;

use super::extent_map::ExtentMap;
use super::open_inode::OpenInode;
use super::statahead::{self, Answer};
use super::{Cred, Fh, Vfs};
use crate::backend::{DataBackend, MetaBackend, NewNode};
use crate::error::Result;

/// The attributes a `setattr` changes; `None` leaves one as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<SetTime>,
    pub mtime: Option<SetTime>,
}

/// The file kind encoded in a `mode`'s `S_IFMT` bits (`mknod`); a missing type means a regular file.
pub fn kind_of_mode(mode: u32) -> Result<FileKind> {
    Ok(match mode & libc::S_IFMT {
        0 | libc::S_IFREG => FileKind::File,
        libc::S_IFIFO => FileKind::Fifo,
        libc::S_IFSOCK => FileKind::Socket,
        libc::S_IFCHR => FileKind::CharDev,
        libc::S_IFBLK => FileKind::BlockDev,
        libc::S_IFDIR => FileKind::Dir,
        libc::S_IFLNK => FileKind::Symlink,
        other => return Err(ErrorCode::InvalidArgument(format!("file type {other:#o}")).into()),
    })
}

impl<M: MetaBackend, D: DataBackend> Vfs<M, D> {
    /// `attr` as this client sees it (buffered writes included) and remembered.
    fn seen(&self, attr: InodeAttr) -> InodeAttr {
        self.inner.attrs.put(&attr);
        self.overlaid(attr)
    }

    /// [`Vfs::seen`] for attributes read from the metanode by a read begun at `since` (see
    /// `AttrCache::put_since`).
    fn seen_since(&self, attr: InodeAttr, since: u64) -> InodeAttr {
        self.inner.attrs.put_since(&attr, since);
        self.overlaid(attr)
    }

    /// What this client's buffered writes make of `attr`.
    fn overlaid(&self, mut attr: InodeAttr) -> InodeAttr {
        if let Some(node) = self.open_node(attr.inode) {
            node.overlay_attr(&mut attr);
        }
        attr
    }

    pub async fn lookup(&self, parent: InodeId, name: &Name, cred: &Cred) -> Result<InodeAttr> {
        if name.len() > Name::MAX_LEN {
            return Err(ErrorCode::NameTooLong.into());
        }
        match self.inner.statahead.answer(parent, name) {
            Some(Answer::Missing) => return Err(ErrorCode::NotFound.into()),
            Some(Answer::Found(ino)) => {
                if let Some(attr) = self.inner.attrs.get(ino) {
                    return Ok(self.overlaid(attr));
                }
            }
            None => {}
        }
        if self.inner.statahead.missed(parent) {
            if let Some(answer) = self.list_ahead(parent, name).await {
                return answer;
            }
        }
        let since = self.inner.attrs.epoch();
        let attr = self.inner.meta.lookup(parent, name, cred).await?;
        Ok(self.seen_since(attr, since))
    }

    /// Reads `parent` with its entries' attributes into a statahead listing and answers `name` from it;
    /// `None` if the directory could not be read (the caller looks the name up itself).
    async fn list_ahead(&self, parent: InodeId, name: &Name) -> Option<Result<InodeAttr>> {
        let token = self.inner.statahead.begin(parent);
        let since = self.inner.attrs.epoch();
        let page = self.inner.meta.read_dir_plus(parent, None, statahead::MAX_LISTED).await.ok()?;
        let mut names = HashMap::with_capacity(page.entries.len());
        for (e, attr) in page.entries {
            if let Some(attr) = attr {
                self.inner.attrs.put_since(&attr, since);
            }
            names.insert(e.name, (e.inode, e.kind));
        }
        self.inner.statahead.listed(parent, token, names, page.next.is_none());
        match self.inner.statahead.answer(parent, name)? {
            Answer::Missing => Some(Err(ErrorCode::NotFound.into())),
            Answer::Found(ino) => self.inner.attrs.get(ino).map(|attr| Ok(self.overlaid(attr))),
        }
    }

    /// `dir` changed: cache its new attributes when the metanode sent them (the kernel asks for them
    /// next), else forget the old ones.
    /// `since`: the attribute cache's epoch from before the call that changed it.
    pub(super) fn dir_changed(&self, dir: InodeId, attr: Option<InodeAttr>, since: u64) {
        match attr {
            Some(a) if a.inode == dir => self.inner.attrs.put_dir(&a, since),
            _ => self.inner.attrs.invalidate(dir),
        }
    }

    /// A namespace change failed in a way a stale listing could explain: drop the listings involved.
    fn listing_was_wrong<T>(&self, dirs: &[InodeId], r: &Result<T, ErrorCode>) {
        if matches!(r, Err(ErrorCode::NotFound | ErrorCode::Exists | ErrorCode::NotEmpty)) {
            for d in dirs {
                self.inner.statahead.forget(*d);
            }
        }
    }

    pub async fn getattr(&self, ino: InodeId) -> Result<InodeAttr> {
        if let Some(attr) = self.inner.attrs.get(ino) {
            return Ok(self.overlaid(attr));
        }
        let since = self.inner.attrs.epoch();
        let attr = self.inner.meta.get_attr(ino).await?;
        Ok(self.seen_since(attr, since))
    }

    /// `fh`: the change comes through an open file (`ftruncate`, `fchmod`, ...).
    pub async fn setattr(&self, ino: InodeId, req: &SetAttr, fh: Option<Fh>, cred: &Cred) -> Result<InodeAttr> {
        self.inner.attrs.invalidate(ino);
        let node = self.open_node(ino);
        if let Some(node) = &node {
            // Buffered writes land first: a later flush would otherwise undo a truncate or move the mtime
            // an application (cp -p, tar) has just set.
            self.flush_node(node).await?;
        }
        let fields = SetAttrFields {
            mode: req.mode,
            uid: req.uid,
            gid: req.gid,
            atime: req.atime,
            mtime: req.mtime,
            size: req.size,
            ctime: None,
        };
        let attr = if fields == SetAttrFields::default() {
            self.inner.meta.get_attr(ino).await?
        } else {
            self.inner.meta.set_attr(ino, &fields, cred, fh.is_some()).await?
        };
        if let (Some(size), Some(node)) = (req.size, &node) {
            self.truncated(node, size);
        }
        Ok(self.seen(attr))
    }

    /// The metanode cut the file at `size`: make the open state agree.
    pub(super) fn truncated(&self, node: &OpenInode, size: u64) {
        let mut d = node.lock();
        d.dirty.truncate(size);
        match (&mut d.extents, size) {
            (_, 0) => {
                d.extents = Some((ExtentMap::new(), 0));
                d.inline = None;
            }
            (Some((map, s)), _) => {
                map.truncate(size);
                *s = size;
                if let Some(b) = &mut d.inline {
                    *b = b.slice(..b.len().min(size as usize));
                }
            }
            (None, _) => {}
        }
        d.written_end = d.dirty.end();
        d.data_changed();
    }

    /// A regular file, fifo, socket or device node; the type comes from `mode`'s `S_IFMT` bits.
    pub async fn mknod(&self, parent: InodeId, name: &Name, mode: u32, rdev: u32, cred: &Cred) -> Result<InodeAttr> {
        let kind = kind_of_mode(mode)?;
        if matches!(kind, FileKind::Dir | FileKind::Symlink) {
            return Err(ErrorCode::InvalidArgument("mknod of a directory or symlink".into()).into());
        }
        let node = NewNode { kind, mode: mode & 0o7777, rdev };
        let since = self.inner.attrs.epoch();
        let r = self.inner.meta.create(parent, name, &node, cred).await;
        self.listing_was_wrong(&[parent], &r);
        let AttrResp { attr, dir } = r?;
        self.dir_changed(parent, dir, since);
        self.inner.statahead.added(parent, name, attr.inode, attr.kind);
        Ok(self.seen(attr))
    }

    pub async fn mkdir(&self, parent: InodeId, name: &Name, mode: u32, cred: &Cred) -> Result<InodeAttr> {
        let since = self.inner.attrs.epoch();
        let r = self.inner.meta.mkdir(parent, name, mode & 0o7777, cred).await;
        self.listing_was_wrong(&[parent], &r);
        let AttrResp { attr, dir } = r?;
        self.dir_changed(parent, dir, since);
        self.inner.statahead.added(parent, name, attr.inode, attr.kind);
        Ok(self.seen(attr))
    }

    pub async fn symlink(&self, parent: InodeId, name: &Name, target: Bytes, cred: &Cred) -> Result<InodeAttr> {
        let since = self.inner.attrs.epoch();
        let r = self.inner.meta.symlink(parent, name, &target, cred).await;
        self.listing_was_wrong(&[parent], &r);
        let AttrResp { attr, dir } = r?;
        self.dir_changed(parent, dir, since);
        self.inner.statahead.added(parent, name, attr.inode, attr.kind);
        Ok(self.seen(attr))
    }

    pub async fn link(&self, ino: InodeId, new_parent: InodeId, new_name: &Name, cred: &Cred) -> Result<InodeAttr> {
        let since = self.inner.attrs.epoch();
        let r = self.inner.meta.link(ino, new_parent, new_name, cred).await;
        self.listing_was_wrong(&[new_parent], &r);
        let AttrResp { attr, dir } = r?;
        self.dir_changed(new_parent, dir, since);
        self.inner.statahead.added(new_parent, new_name, attr.inode, attr.kind);
        Ok(self.seen(attr))
    }

    pub async fn readlink(&self, ino: InodeId) -> Result<Bytes> {
        Ok(self.inner.meta.readlink(ino).await?)
    }

    pub async fn unlink(&self, parent: InodeId, name: &Name, cred: &Cred) -> Result<()> {
        // Listing what is open here lets the metanode delete an unopened file in the same step. A file
        // this client opens while the call is in flight is not covered (nor is one open at another
        // client, as with a separate Evict).
        let since = self.inner.attrs.epoch();
        let r = self.inner.meta.unlink(parent, name, cred, self.open_inodes()).await;
        self.listing_was_wrong(&[parent], &r);
        let gone = r?;
        self.dir_changed(parent, gone.dir.clone(), since);
        self.inner.statahead.removed(parent, name);
        self.unlinked(gone);
        Ok(())
    }

    pub async fn rmdir(&self, parent: InodeId, name: &Name, cred: &Cred) -> Result<()> {
        let r = self.inner.meta.rmdir(parent, name, cred).await;
        self.listing_was_wrong(&[parent], &r);
        r?;
        self.inner.attrs.invalidate(parent);
        self.inner.statahead.removed(parent, name);
        Ok(())
    }

    pub async fn rename(
        &self,
        parent: InodeId,
        name: &Name,
        new_parent: InodeId,
        new_name: &Name,
        flags: u32,
        cred: &Cred,
    ) -> Result<()> {
        let since = self.inner.attrs.epoch();
        let r = self.inner.meta.rename(parent, name, new_parent, new_name, flags, cred).await;
        self.listing_was_wrong(&[parent, new_parent], &r);
        let resp = r?;
        let exchange = flags & ferrum_proto::msg::meta::Rename::EXCHANGE != 0;
        match self.inner.statahead.renamed(parent, name, new_parent, new_name, exchange) {
            Some(moved) => {
                // A directory the reply carries is not invalidated first: that would make `put_dir`
                // drop the reply's attributes as older than the invalidation, and the kernel's next
                // GETATTR of the directory would cost a round trip.
                let carried = |ino: &InodeId| resp.dirs.iter().any(|d| d.inode == *ino);
                for ino in moved.into_iter().chain([parent, new_parent]) {
                    if !carried(&ino) {
                        self.inner.attrs.invalidate(ino);
                    }
                }
                for dir in &resp.dirs {
                    self.inner.attrs.put_dir(dir, since);
                }
            }
            // The moved inode's ctime changed and neither the reply nor a listing names it: forget
            // every cached attribute rather than serve a stale one.
            None => self.inner.attrs.clear(),
        }
        if let Some(gone) = resp.replaced {
            self.unlinked(gone);
        }
        Ok(())
    }

    /// An entry went away: an inode left without links is deleted now, or when its last handle closes.
    fn unlinked(&self, gone: Unlinked) {
        self.inner.attrs.invalidate(gone.inode);
        if gone.nlink == 0 && !gone.evicted && !self.mark_orphan(gone.inode) {
            self.evict_later(gone.inode);
        }
    }

    /// Evicts in the background: the caller (unlink, rename, release) does not wait for the space.
    pub(super) fn evict_later(&self, ino: InodeId) {
        let vfs = self.clone();
        tokio::spawn(async move {
            if let Err(e) = vfs.inner.meta.evict(ino).await {
                tracing::warn!(inode = %ino, error = %e, "evicting an unlinked inode failed; its space leaks until repaired");
            }
        });
    }

    /// `access(2)` against the stored mode, owner and group (the kernel checks most calls itself under
    /// `default_permissions`; this answers the explicit `access` call).
    pub async fn access(&self, ino: InodeId, mask: i32, cred: &Cred) -> Result<()> {
        let attr = self.getattr(ino).await?;
        if mask == libc::F_OK {
            return Ok(());
        }
        let mask = (mask & 7) as u32;
        if cred.is_root() {
            // Root may do anything but execute a file nobody may execute.
            let x_denied = mask & 1 != 0 && attr.kind != FileKind::Dir && attr.mode & 0o111 == 0;
            return if x_denied { Err(ErrorCode::PermissionDenied.into()) } else { Ok(()) };
        }
        let bits = if cred.uid == attr.uid {
            attr.mode >> 6
        } else if cred.in_group(attr.gid) {
            attr.mode >> 3
        } else {
            attr.mode
        } & 7;
        if bits & mask == mask {
            Ok(())
        } else {
            Err(ErrorCode::PermissionDenied.into())
        }
    }
}
