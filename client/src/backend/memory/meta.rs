//! [`MetaBackend`] over the in-memory [`Tree`]: one lock, no awaits while holding it. Clones share the
//! volume (a test can stand in for a second client), and count calls (tests check how many round trips
//! a workload would cost).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ferrum_proto::msg::attr::{InodeAttr, SetAttrFields};
use ferrum_proto::msg::extent::ExtentKey;
use ferrum_proto::msg::meta::{
    AttrResp, Cred, ExtentListResp, InlineOp, ReadDirPlusResp, ReadDirResp, RenameResp, Unlinked,
};
use ferrum_proto::msg::name::Name;
use ferrum_proto::InodeId;

use super::tree::Tree;
use crate::backend::{BResult, MetaBackend, NewNode, VolumeUsage};

#[derive(Clone)]
pub struct MemMeta {
    tree: Arc<Mutex<Tree>>,
    calls: Arc<AtomicU64>,
    extent_appends: Arc<AtomicU64>,
}

impl Default for MemMeta {
    fn default() -> Self {
        MemMeta::new()
    }
}

impl MemMeta {
    /// An empty volume: just the root directory (mode 0755, owned by root).
    pub fn new() -> MemMeta {
        MemMeta {
            tree: Arc::new(Mutex::new(Tree::new())),
            calls: Arc::new(AtomicU64::new(0)),
            extent_appends: Arc::new(AtomicU64::new(0)),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Tree) -> BResult<T>) -> BResult<T> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        f(&mut self.tree.lock().expect("memory meta lock"))
    }

    /// Calls served so far (each would be one metanode round trip).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// `extent_append` calls served so far.
    pub fn extent_appends(&self) -> u64 {
        self.extent_appends.load(Ordering::Relaxed)
    }

    /// Whether the inode still exists (tests check that eviction happened).
    pub fn has_inode(&self, ino: InodeId) -> bool {
        self.tree.lock().expect("memory meta lock").contains(ino)
    }
}

impl MetaBackend for MemMeta {
    async fn lookup(&self, parent: InodeId, name: &Name, _cred: &Cred) -> BResult<InodeAttr> {
        self.with(|t| t.lookup(parent, name))
    }
    async fn get_attr(&self, inode: InodeId) -> BResult<InodeAttr> {
        self.with(|t| t.get_attr(inode))
    }
    async fn set_attr(&self, inode: InodeId, set: &SetAttrFields, _cred: &Cred, _handle: bool) -> BResult<InodeAttr> {
        self.with(|t| t.set_attr(inode, set))
    }
    async fn create(&self, parent: InodeId, name: &Name, node: &NewNode, cred: &Cred) -> BResult<AttrResp> {
        self.with(|t| with_dir(t, parent, |t| t.create(parent, name, node, cred)))
    }
    async fn mkdir(&self, parent: InodeId, name: &Name, mode: u32, cred: &Cred) -> BResult<AttrResp> {
        self.with(|t| with_dir(t, parent, |t| t.mkdir(parent, name, mode, cred)))
    }
    async fn symlink(&self, parent: InodeId, name: &Name, target: &Bytes, cred: &Cred) -> BResult<AttrResp> {
        self.with(|t| with_dir(t, parent, |t| t.symlink(parent, name, target, cred)))
    }
    async fn link(&self, inode: InodeId, new_parent: InodeId, new_name: &Name, _cred: &Cred) -> BResult<AttrResp> {
        self.with(|t| with_dir(t, new_parent, |t| t.link(inode, new_parent, new_name)))
    }
    async fn unlink(
        &self,
        parent: InodeId,
        name: &Name,
        _cred: &Cred,
        open_here: Option<Vec<InodeId>>,
    ) -> BResult<Unlinked> {
        self.with(|t| {
            let gone = t.unlink(parent, name, open_here.as_deref())?;
            Ok(Unlinked { dir: t.get_attr(parent).ok(), ..gone })
        })
    }
    async fn rmdir(&self, parent: InodeId, name: &Name, _cred: &Cred) -> BResult<()> {
        self.with(|t| t.rmdir(parent, name))
    }
    async fn rename(
        &self,
        parent: InodeId,
        name: &Name,
        new_parent: InodeId,
        new_name: &Name,
        flags: u32,
        _cred: &Cred,
    ) -> BResult<RenameResp> {
        self.with(|t| {
            let mut resp = t.rename(parent, name, new_parent, new_name, flags)?;
            resp.dirs.extend(t.get_attr(parent).ok());
            if new_parent != parent {
                resp.dirs.extend(t.get_attr(new_parent).ok());
            }
            Ok(resp)
        })
    }
    async fn readlink(&self, inode: InodeId) -> BResult<Bytes> {
        self.with(|t| t.readlink(inode))
    }
    async fn read_dir(&self, inode: InodeId, cursor: Option<&Name>, limit: u32) -> BResult<ReadDirResp> {
        self.with(|t| t.read_dir(inode, cursor, limit))
    }
    async fn read_dir_plus(&self, inode: InodeId, cursor: Option<&Name>, limit: u32) -> BResult<ReadDirPlusResp> {
        self.with(|t| {
            let page = t.read_dir(inode, cursor, limit)?;
            let entries = page.entries.into_iter().map(|e| (e.clone(), t.get_attr(e.inode).ok())).collect();
            Ok(ReadDirPlusResp { entries, next: page.next })
        })
    }
    async fn get_xattr(&self, inode: InodeId, name: &Name, _cred: &Cred) -> BResult<Bytes> {
        self.with(|t| t.get_xattr(inode, name))
    }
    async fn set_xattr(&self, inode: InodeId, name: &Name, value: &Bytes, flags: u32, _cred: &Cred) -> BResult<()> {
        self.with(|t| t.set_xattr(inode, name, value, flags))
    }
    async fn list_xattr(&self, inode: InodeId, _cred: &Cred) -> BResult<Vec<Name>> {
        self.with(|t| t.list_xattr(inode))
    }
    async fn remove_xattr(&self, inode: InodeId, name: &Name, _cred: &Cred) -> BResult<()> {
        self.with(|t| t.remove_xattr(inode, name))
    }
    async fn stat_fs(&self) -> BResult<VolumeUsage> {
        self.with(|t| Ok(t.usage()))
    }
    async fn extent_append(
        &self,
        inode: InodeId,
        extents: &[ExtentKey],
        inline: &InlineOp,
        _cred: &Cred,
    ) -> BResult<()> {
        self.extent_appends.fetch_add(1, Ordering::Relaxed);
        self.with(|t| t.extent_append(inode, extents, inline))
    }
    async fn extent_list(&self, inode: InodeId) -> BResult<ExtentListResp> {
        self.with(|t| t.extent_list(inode))
    }
    async fn truncate(&self, inode: InodeId, size: u64) -> BResult<InodeAttr> {
        self.with(|t| t.truncate(inode, size))
    }
    async fn evict(&self, inode: InodeId) -> BResult<()> {
        self.with(|t| t.evict(inode))
    }

    async fn sync(&self) -> BResult<()> {
        Ok(())
    }
}

/// `f`'s new inode with `dir`'s attributes after it, as a metanode answers.
fn with_dir(t: &mut Tree, dir: InodeId, f: impl FnOnce(&mut Tree) -> BResult<InodeAttr>) -> BResult<AttrResp> {
    let attr = f(t)?;
    Ok(AttrResp { attr, dir: t.get_attr(dir).ok() })
}
