//! The namespace of an in-memory volume: inodes, directories, and the POSIX rules for changing them
//! (link counts, rename restrictions, timestamps, setgid directories).
//!
//! Permission checks are not repeated here: the mount uses `default_permissions`, so the kernel checks
//! every call against the stored mode, owner and group before it reaches the filesystem.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use ferrum_proto::msg::attr::{FileKind, InodeAttr, SetAttrFields, SetTime, Time};
use ferrum_proto::msg::extent::ExtentKey;
use ferrum_proto::msg::meta::{
    Cred, DirEntry, ExtentListResp, InlineOp, ReadDirResp, Rename, RenameResp, SetXattr, Unlinked, MAX_LINKS,
    MAX_SYMLINK_LEN,
};
use ferrum_proto::msg::name::Name;
use ferrum_proto::{ErrorCode, InodeId};

use crate::backend::{BResult, NewNode, VolumeUsage};

const S_ISGID: u32 = 0o2000;

pub(super) struct Inode {
    pub attr: InodeAttr,
    pub body: Body,
    pub xattrs: BTreeMap<Name, Bytes>,
}

pub(super) enum Body {
    File {
        extents: Vec<ExtentKey>,
        /// Inline bytes from offset 0 (then `extents` is empty), as the metanode keeps them.
        inline: Option<Bytes>,
    },
    Dir {
        entries: BTreeMap<Name, InodeId>,
        parent: InodeId,
    },
    Symlink(Bytes),
    /// Fifo, socket or device: attributes only.
    Special,
}

pub(super) struct Tree {
    inodes: HashMap<InodeId, Inode>,
    next: u64,
}

impl Tree {
    pub fn new() -> Tree {
        let now = Time::now();
        let root = Inode {
            attr: InodeAttr {
                inode: InodeId::ROOT,
                kind: FileKind::Dir,
                mode: 0o755,
                nlink: 2,
                uid: 0,
                gid: 0,
                size: 0,
                rdev: 0,
                atime: now,
                mtime: now,
                ctime: now,
            },
            body: Body::Dir { entries: BTreeMap::new(), parent: InodeId::ROOT },
            xattrs: BTreeMap::new(),
        };
        Tree { inodes: HashMap::from([(InodeId::ROOT, root)]), next: InodeId::ROOT.get() + 1 }
    }

    fn get(&self, ino: InodeId) -> BResult<&Inode> {
        self.inodes.get(&ino).ok_or(ErrorCode::NotFound)
    }

    fn get_mut(&mut self, ino: InodeId) -> BResult<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or(ErrorCode::NotFound)
    }

    /// The entries of a live directory.
    fn entries(&self, dir: InodeId) -> BResult<&BTreeMap<Name, InodeId>> {
        let inode = self.get(dir)?;
        match &inode.body {
            // A removed directory that is still open has no entries and takes no new ones.
            Body::Dir { .. } if inode.attr.nlink == 0 => Err(ErrorCode::NotFound),
            Body::Dir { entries, .. } => Ok(entries),
            _ => Err(ErrorCode::NotDir),
        }
    }

    fn entries_mut(&mut self, dir: InodeId) -> BResult<&mut BTreeMap<Name, InodeId>> {
        self.entries(dir)?;
        match &mut self.get_mut(dir)?.body {
            Body::Dir { entries, .. } => Ok(entries),
            _ => unreachable!("checked above"),
        }
    }

    fn child(&self, parent: InodeId, name: &Name) -> BResult<InodeId> {
        self.entries(parent)?.get(name).copied().ok_or(ErrorCode::NotFound)
    }

    fn is_dir(&self, ino: InodeId) -> bool {
        self.inodes.get(&ino).is_some_and(|i| matches!(i.body, Body::Dir { .. }))
    }

    fn touch_dir(&mut self, dir: InodeId) {
        if let Some(d) = self.inodes.get_mut(&dir) {
            let now = Time::now();
            d.attr.mtime = now;
            d.attr.ctime = now;
        }
    }

    fn touch_ctime(&mut self, ino: InodeId) {
        if let Some(i) = self.inodes.get_mut(&ino) {
            i.attr.ctime = Time::now();
        }
    }

    fn add_nlink(&mut self, ino: InodeId, delta: i32) {
        if let Some(i) = self.inodes.get_mut(&ino) {
            i.attr.nlink = i.attr.nlink.saturating_add_signed(delta);
        }
    }

    /// Checks that `name` may be created in `parent`.
    fn check_new_entry(&self, parent: InodeId, name: &Name) -> BResult<()> {
        name.validate()?;
        if self.entries(parent)?.contains_key(name) {
            return Err(ErrorCode::Exists);
        }
        Ok(())
    }

    /// Allocates an inode and links it as `parent/name`. A setgid directory passes its group on, and
    /// its setgid bit to subdirectories (what ext4 does; the kernel leaves this to the filesystem).
    #[allow(clippy::too_many_arguments)]
    fn add_new(
        &mut self,
        parent: InodeId,
        name: &Name,
        kind: FileKind,
        mut mode: u32,
        owner: &Cred,
        rdev: u32,
        body: Body,
    ) -> BResult<InodeAttr> {
        self.check_new_entry(parent, name)?;
        let parent_attr = &self.get(parent)?.attr;
        let mut gid = owner.gid;
        if parent_attr.mode & S_ISGID != 0 {
            gid = parent_attr.gid;
            if kind == FileKind::Dir {
                mode |= S_ISGID;
            }
        }
        let ino = InodeId(self.next);
        self.next += 1;
        let now = Time::now();
        let size = match &body {
            Body::Symlink(target) => target.len() as u64,
            _ => 0,
        };
        let attr = InodeAttr {
            inode: ino,
            kind,
            mode: mode & 0o7777,
            nlink: if kind == FileKind::Dir { 2 } else { 1 },
            uid: owner.uid,
            gid,
            size,
            rdev,
            atime: now,
            mtime: now,
            ctime: now,
        };
        self.inodes.insert(ino, Inode { attr: attr.clone(), body, xattrs: BTreeMap::new() });
        self.entries_mut(parent)?.insert(name.clone(), ino);
        if kind == FileKind::Dir {
            self.add_nlink(parent, 1);
        }
        self.touch_dir(parent);
        Ok(attr)
    }

    pub fn lookup(&self, parent: InodeId, name: &Name) -> BResult<InodeAttr> {
        if name.len() > Name::MAX_LEN {
            return Err(ErrorCode::NameTooLong);
        }
        let ino = self.child(parent, name)?;
        self.get_attr(ino)
    }

    pub fn get_attr(&self, ino: InodeId) -> BResult<InodeAttr> {
        Ok(self.get(ino)?.attr.clone())
    }

    pub fn set_attr(&mut self, ino: InodeId, set: &SetAttrFields) -> BResult<InodeAttr> {
        // The size first: it sets mtime, which explicit times given in the same call then override.
        if let Some(size) = set.size {
            self.truncate(ino, size)?;
        }
        let now = Time::now();
        let at = |t: SetTime| match t {
            SetTime::Now => now,
            SetTime::At(t) => t,
        };
        let a = &mut self.get_mut(ino)?.attr;
        if let Some(mode) = set.mode {
            a.mode = mode & 0o7777;
        }
        if let Some(uid) = set.uid {
            a.uid = uid;
        }
        if let Some(gid) = set.gid {
            a.gid = gid;
        }
        if let Some(t) = set.atime {
            a.atime = at(t);
        }
        if let Some(t) = set.mtime {
            a.mtime = at(t);
        }
        a.ctime = set.ctime.unwrap_or(now);
        Ok(a.clone())
    }

    pub fn create(&mut self, parent: InodeId, name: &Name, n: &NewNode, cred: &Cred) -> BResult<InodeAttr> {
        let body = match n.kind {
            FileKind::File => Body::File { extents: Vec::new(), inline: None },
            FileKind::Dir | FileKind::Symlink => {
                return Err(ErrorCode::InvalidArgument("create makes files, fifos, sockets and devices".into()))
            }
            _ => Body::Special,
        };
        let rdev = if matches!(n.kind, FileKind::CharDev | FileKind::BlockDev) { n.rdev } else { 0 };
        self.add_new(parent, name, n.kind, n.mode, cred, rdev, body)
    }

    pub fn mkdir(&mut self, parent: InodeId, name: &Name, mode: u32, owner: &Cred) -> BResult<InodeAttr> {
        let body = Body::Dir { entries: BTreeMap::new(), parent };
        self.add_new(parent, name, FileKind::Dir, mode, owner, 0, body)
    }

    pub fn symlink(&mut self, parent: InodeId, name: &Name, target: &Bytes, owner: &Cred) -> BResult<InodeAttr> {
        if target.is_empty() {
            return Err(ErrorCode::InvalidArgument("empty symlink target".into()));
        }
        if target.len() > MAX_SYMLINK_LEN {
            return Err(ErrorCode::NameTooLong);
        }
        self.add_new(parent, name, FileKind::Symlink, 0o777, owner, 0, Body::Symlink(target.clone()))
    }

    pub fn link(&mut self, ino: InodeId, new_parent: InodeId, new_name: &Name) -> BResult<InodeAttr> {
        let inode = self.get(ino)?;
        if matches!(inode.body, Body::Dir { .. }) {
            return Err(ErrorCode::NotPermitted);
        }
        if inode.attr.nlink >= MAX_LINKS {
            return Err(ErrorCode::TooManyLinks);
        }
        self.check_new_entry(new_parent, new_name)?;
        self.entries_mut(new_parent)?.insert(new_name.clone(), ino);
        self.add_nlink(ino, 1);
        self.touch_ctime(ino);
        self.touch_dir(new_parent);
        self.get_attr(ino)
    }

    pub fn unlink(&mut self, parent: InodeId, name: &Name, open_here: Option<&[InodeId]>) -> BResult<Unlinked> {
        let ino = self.child(parent, name)?;
        if self.is_dir(ino) {
            return Err(ErrorCode::IsDir);
        }
        self.entries_mut(parent)?.remove(name);
        self.add_nlink(ino, -1);
        self.touch_ctime(ino);
        self.touch_dir(parent);
        let nlink = self.get(ino)?.attr.nlink;
        let evicted = nlink == 0 && open_here.is_some_and(|open| !open.contains(&ino));
        if evicted {
            self.inodes.remove(&ino);
        }
        Ok(Unlinked { inode: ino, nlink, evicted, dir: None })
    }

    pub fn rmdir(&mut self, parent: InodeId, name: &Name) -> BResult<()> {
        let ino = self.child(parent, name)?;
        if !self.entries(ino).map_err(|e| if e == ErrorCode::NotFound { ErrorCode::NotDir } else { e })?.is_empty() {
            return Err(ErrorCode::NotEmpty);
        }
        self.entries_mut(parent)?.remove(name);
        self.get_mut(ino)?.attr.nlink = 0;
        self.touch_ctime(ino);
        self.add_nlink(parent, -1);
        self.touch_dir(parent);
        Ok(())
    }

    /// Whether `ino` is `ancestor` or lies below it.
    fn is_within(&self, mut ino: InodeId, ancestor: InodeId) -> bool {
        loop {
            if ino == ancestor {
                return true;
            }
            match self.inodes.get(&ino).map(|i| &i.body) {
                Some(Body::Dir { parent, .. }) if *parent != ino => ino = *parent,
                _ => return false,
            }
        }
    }

    fn set_dir_parent(&mut self, dir: InodeId, parent: InodeId) {
        if let Some(Inode { body: Body::Dir { parent: p, .. }, .. }) = self.inodes.get_mut(&dir) {
            *p = parent;
        }
    }

    pub fn rename(
        &mut self,
        parent: InodeId,
        name: &Name,
        new_parent: InodeId,
        new_name: &Name,
        flags: u32,
    ) -> BResult<RenameResp> {
        if flags & !(Rename::NOREPLACE | Rename::EXCHANGE) != 0 || flags == Rename::NOREPLACE | Rename::EXCHANGE {
            return Err(ErrorCode::InvalidArgument(format!("rename flags {flags:#x}")));
        }
        let src = self.child(parent, name)?;
        new_name.validate()?;
        let dst = match self.entries(new_parent)?.get(new_name) {
            Some(d) => Some(*d),
            None if flags & Rename::EXCHANGE != 0 => return Err(ErrorCode::NotFound),
            None => None,
        };
        let src_is_dir = self.is_dir(src);
        if flags & Rename::EXCHANGE != 0 {
            let dst = dst.expect("checked");
            let dst_is_dir = self.is_dir(dst);
            if (src_is_dir && self.is_within(new_parent, src)) || (dst_is_dir && self.is_within(parent, dst)) {
                return Err(ErrorCode::InvalidArgument("cannot move a directory below itself".into()));
            }
            self.entries_mut(parent)?.insert(name.clone(), dst);
            self.entries_mut(new_parent)?.insert(new_name.clone(), src);
            if parent != new_parent {
                if src_is_dir {
                    self.set_dir_parent(src, new_parent);
                }
                if dst_is_dir {
                    self.set_dir_parent(dst, parent);
                }
                let delta = i32::from(src_is_dir) - i32::from(dst_is_dir);
                self.add_nlink(parent, -delta);
                self.add_nlink(new_parent, delta);
            }
            self.touch_ctime(src);
            self.touch_ctime(dst);
            self.touch_dir(parent);
            self.touch_dir(new_parent);
            return Ok(RenameResp { replaced: None, dirs: Vec::new() });
        }
        if let Some(dst) = dst {
            if flags & Rename::NOREPLACE != 0 {
                return Err(ErrorCode::Exists);
            }
            if dst == src {
                // Two names of one inode: POSIX says do nothing.
                return Ok(RenameResp { replaced: None, dirs: Vec::new() });
            }
            match (src_is_dir, self.is_dir(dst)) {
                (true, false) => return Err(ErrorCode::NotDir),
                (false, true) => return Err(ErrorCode::IsDir),
                (true, true) if !self.entries(dst)?.is_empty() => return Err(ErrorCode::NotEmpty),
                _ => {}
            }
        }
        if src_is_dir && self.is_within(new_parent, src) {
            return Err(ErrorCode::InvalidArgument("cannot move a directory below itself".into()));
        }
        let mut replaced = None;
        if let Some(dst) = dst {
            if self.is_dir(dst) {
                self.get_mut(dst)?.attr.nlink = 0;
                self.add_nlink(new_parent, -1);
            } else {
                self.add_nlink(dst, -1);
            }
            self.touch_ctime(dst);
            replaced = Some(Unlinked { inode: dst, nlink: self.get(dst)?.attr.nlink, evicted: false, dir: None });
        }
        self.entries_mut(parent)?.remove(name);
        self.entries_mut(new_parent)?.insert(new_name.clone(), src);
        if src_is_dir && parent != new_parent {
            self.set_dir_parent(src, new_parent);
            self.add_nlink(parent, -1);
            self.add_nlink(new_parent, 1);
        }
        self.touch_ctime(src);
        self.touch_dir(parent);
        self.touch_dir(new_parent);
        Ok(RenameResp { replaced, dirs: Vec::new() })
    }

    pub fn readlink(&self, ino: InodeId) -> BResult<Bytes> {
        match &self.get(ino)?.body {
            Body::Symlink(target) => Ok(target.clone()),
            _ => Err(ErrorCode::InvalidArgument("not a symlink".into())),
        }
    }

    pub fn read_dir(&self, dir: InodeId, cursor: Option<&Name>, limit: u32) -> BResult<ReadDirResp> {
        use std::ops::Bound::{Excluded, Unbounded};
        let entries = self.entries(dir)?;
        let start = cursor.map_or(Unbounded, Excluded);
        let mut out = Vec::new();
        let mut iter = entries.range::<Name, _>((start, Unbounded));
        for (name, ino) in iter.by_ref().take(limit.max(1) as usize) {
            let kind = self.get(*ino)?.attr.kind;
            out.push(DirEntry { name: name.clone(), inode: *ino, kind });
        }
        let next = if iter.next().is_some() { out.last().map(|e| e.name.clone()) } else { None };
        Ok(ReadDirResp { entries: out, next })
    }

    pub fn get_xattr(&self, ino: InodeId, name: &Name) -> BResult<Bytes> {
        self.get(ino)?.xattrs.get(name).cloned().ok_or(ErrorCode::NoXattr)
    }

    pub fn set_xattr(&mut self, ino: InodeId, name: &Name, value: &Bytes, flags: u32) -> BResult<()> {
        let inode = self.get_mut(ino)?;
        let exists = inode.xattrs.contains_key(name);
        if flags & SetXattr::CREATE != 0 && exists {
            return Err(ErrorCode::Exists);
        }
        if flags & SetXattr::REPLACE != 0 && !exists {
            return Err(ErrorCode::NoXattr);
        }
        inode.xattrs.insert(name.clone(), value.clone());
        inode.attr.ctime = Time::now();
        Ok(())
    }

    pub fn list_xattr(&self, ino: InodeId) -> BResult<Vec<Name>> {
        Ok(self.get(ino)?.xattrs.keys().cloned().collect())
    }

    pub fn remove_xattr(&mut self, ino: InodeId, name: &Name) -> BResult<()> {
        let inode = self.get_mut(ino)?;
        inode.xattrs.remove(name).ok_or(ErrorCode::NoXattr)?;
        inode.attr.ctime = Time::now();
        Ok(())
    }

    pub fn usage(&self) -> VolumeUsage {
        let bytes = self.inodes.values().filter(|i| i.attr.kind == FileKind::File).map(|i| i.attr.size).sum();
        VolumeUsage { inodes: self.inodes.len() as u64, bytes, free_inodes: Some(u64::MAX - self.next) }
    }

    #[allow(clippy::type_complexity)]
    fn file_mut(&mut self, ino: InodeId) -> BResult<(&mut InodeAttr, &mut Vec<ExtentKey>, &mut Option<Bytes>)> {
        let inode = self.get_mut(ino)?;
        match &mut inode.body {
            Body::File { extents, inline } => Ok((&mut inode.attr, extents, inline)),
            Body::Dir { .. } => Err(ErrorCode::IsDir),
            _ => Err(ErrorCode::InvalidArgument("not a regular file".into())),
        }
    }

    pub fn extent_append(&mut self, ino: InodeId, keys: &[ExtentKey], op: &InlineOp) -> BResult<()> {
        let (attr, extents, inline) = self.file_mut(ino)?;
        let has_keys = keys.iter().any(|k| k.len > 0);
        match op {
            InlineOp::Keep if has_keys && inline.is_some() => return Err(ErrorCode::Stale { current: 0 }),
            InlineOp::Keep => {}
            InlineOp::Drop => *inline = None,
            InlineOp::Set(_) if has_keys => return Err(ErrorCode::InvalidArgument("inline and keys".into())),
            InlineOp::Set(_) if !extents.is_empty() => return Err(ErrorCode::Stale { current: 0 }),
            InlineOp::Set(bytes) => {
                attr.size = attr.size.max(bytes.len() as u64);
                *inline = Some(bytes.clone());
            }
        }
        for key in keys.iter().filter(|k| k.len > 0) {
            // Keys wholly hidden by the new one can never be read again: drop them so the list stays short.
            extents.retain(|k| !(key.file_offset <= k.file_offset && k.file_end() <= key.file_end()));
            extents.push(*key);
            attr.size = attr.size.max(key.file_end());
        }
        let now = Time::now();
        attr.mtime = now;
        attr.ctime = now;
        Ok(())
    }

    pub fn extent_list(&self, ino: InodeId) -> BResult<ExtentListResp> {
        let inode = self.get(ino)?;
        match &inode.body {
            Body::File { extents, inline } => {
                Ok(ExtentListResp { size: inode.attr.size, extents: extents.clone(), inline: inline.clone() })
            }
            Body::Dir { .. } => Err(ErrorCode::IsDir),
            _ => Err(ErrorCode::InvalidArgument("not a regular file".into())),
        }
    }

    pub fn truncate(&mut self, ino: InodeId, size: u64) -> BResult<InodeAttr> {
        let (attr, extents, inline) = self.file_mut(ino)?;
        if size == 0 {
            *inline = None;
        } else if let Some(b) = inline {
            if b.len() as u64 > size {
                *b = b.slice(..size as usize);
            }
        }
        // Keys are cut at the new size, not just dropped when wholly past it: if the file grows again,
        // the bytes between must read as zeros.
        extents.retain_mut(|k| {
            if k.file_end() > size {
                k.len = size.saturating_sub(k.file_offset);
            }
            k.len > 0
        });
        attr.size = size;
        let now = Time::now();
        attr.mtime = now;
        attr.ctime = now;
        Ok(attr.clone())
    }

    pub fn evict(&mut self, ino: InodeId) -> BResult<()> {
        if self.inodes.get(&ino).is_some_and(|i| i.attr.nlink == 0) {
            self.inodes.remove(&ino);
        }
        Ok(())
    }

    pub fn contains(&self, ino: InodeId) -> bool {
        self.inodes.contains_key(&ino)
    }
}
