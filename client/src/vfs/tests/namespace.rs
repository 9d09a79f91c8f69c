//! Names and attributes: create/lookup/readdir/rename/link/symlink/xattrs/statfs/access.

use bytes::Bytes;
use ferrum_proto::msg::attr::FileKind;
use ferrum_proto::msg::meta::{Cred, Rename};
use ferrum_proto::InodeId;

use super::*;
use crate::backend::MetaBackend;
use crate::vfs::SetAttr;

#[tokio::test]
async fn create_lookup_getattr_and_owner() {
    let (v, _, _) = vfs();
    let user = Cred::user(1000, 100);
    let (attr, fh) = v.create(InodeId::ROOT, &name("a"), 0o640, libc::O_RDWR, &user).await.unwrap();
    assert_eq!((attr.kind, attr.mode, attr.uid, attr.gid, attr.nlink), (FileKind::File, 0o640, 1000, 100, 1));
    assert_eq!(v.lookup(InodeId::ROOT, &name("a"), &root()).await.unwrap().inode, attr.inode);
    assert_errno(v.create(InodeId::ROOT, &name("a"), 0o640, libc::O_RDWR | libc::O_EXCL, &user).await, libc::EEXIST);
    // Without O_EXCL an existing file is opened (another client won the race).
    let (again, fh2) = v.create(InodeId::ROOT, &name("a"), 0o640, libc::O_RDWR, &user).await.unwrap();
    assert_eq!(again.inode, attr.inode);
    v.release(fh).await.unwrap();
    v.release(fh2).await.unwrap();
    assert_errno(v.lookup(InodeId::ROOT, &name("missing"), &root()).await, libc::ENOENT);
    assert_errno(v.lookup(InodeId::ROOT, &name(&"x".repeat(256)), &root()).await, libc::ENAMETOOLONG);
}

#[tokio::test]
async fn mkdir_rmdir_and_link_counts() {
    let (v, _, _) = vfs();
    let d = v.mkdir(InodeId::ROOT, &name("d"), 0o755, &root()).await.unwrap();
    assert_eq!(d.nlink, 2);
    assert_eq!(v.getattr(InodeId::ROOT).await.unwrap().nlink, 3);
    v.mknod(d.inode, &name("f"), libc::S_IFREG | 0o644, 0, &root()).await.unwrap();
    assert_errno(v.rmdir(InodeId::ROOT, &name("d"), &root()).await, libc::ENOTEMPTY);
    assert_errno(v.unlink(InodeId::ROOT, &name("d"), &root()).await, libc::EISDIR);
    v.unlink(d.inode, &name("f"), &root()).await.unwrap();
    v.rmdir(InodeId::ROOT, &name("d"), &root()).await.unwrap();
    assert_eq!(v.getattr(InodeId::ROOT).await.unwrap().nlink, 2);
}

#[tokio::test]
async fn special_files_symlinks_and_hard_links() {
    let (v, _, _) = vfs();
    let fifo = v.mknod(InodeId::ROOT, &name("p"), libc::S_IFIFO | 0o600, 0, &root()).await.unwrap();
    assert_eq!(fifo.kind, FileKind::Fifo);
    let dev = v.mknod(InodeId::ROOT, &name("c"), libc::S_IFCHR | 0o600, 0x0103, &root()).await.unwrap();
    assert_eq!((dev.kind, dev.rdev), (FileKind::CharDev, 0x0103));
    let s = v.symlink(InodeId::ROOT, &name("s"), Bytes::from_static(b"../target"), &root()).await.unwrap();
    assert_eq!((s.kind, s.size), (FileKind::Symlink, 9));
    assert_eq!(&v.readlink(s.inode).await.unwrap()[..], b"../target");
    let (f, fh) = create(&v, "f").await;
    v.release(fh).await.unwrap();
    let l = v.link(f, InodeId::ROOT, &name("f2"), &root()).await.unwrap();
    assert_eq!(l.nlink, 2);
    v.unlink(InodeId::ROOT, &name("f"), &root()).await.unwrap();
    assert_eq!(v.getattr(f).await.unwrap().nlink, 1);
    let d = v.mkdir(InodeId::ROOT, &name("d"), 0o755, &root()).await.unwrap();
    assert_errno(v.link(d.inode, InodeId::ROOT, &name("d2"), &root()).await, libc::EPERM);
}

#[tokio::test]
async fn rename_replace_noreplace_exchange_and_cycles() {
    let (v, meta, _) = vfs();
    let (a, fh) = create(&v, "a").await;
    v.release(fh).await.unwrap();
    let (b, fh) = create(&v, "b").await;
    v.release(fh).await.unwrap();
    assert_errno(
        v.rename(InodeId::ROOT, &name("a"), InodeId::ROOT, &name("b"), Rename::NOREPLACE, &root()).await,
        libc::EEXIST,
    );
    v.rename(InodeId::ROOT, &name("a"), InodeId::ROOT, &name("b"), Rename::EXCHANGE, &root()).await.unwrap();
    assert_eq!(v.lookup(InodeId::ROOT, &name("a"), &root()).await.unwrap().inode, b);
    assert_eq!(v.lookup(InodeId::ROOT, &name("b"), &root()).await.unwrap().inode, a);
    v.rename(InodeId::ROOT, &name("a"), InodeId::ROOT, &name("b"), 0, &root()).await.unwrap();
    assert_errno(v.lookup(InodeId::ROOT, &name("a"), &root()).await, libc::ENOENT);
    // The replaced file lost its only link: it is evicted.
    for _ in 0..1000 {
        if !meta.has_inode(a) {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(!meta.has_inode(a));
    let d = v.mkdir(InodeId::ROOT, &name("d"), 0o755, &root()).await.unwrap();
    let sub = v.mkdir(d.inode, &name("sub"), 0o755, &root()).await.unwrap();
    assert_errno(v.rename(InodeId::ROOT, &name("d"), sub.inode, &name("x"), 0, &root()).await, libc::EINVAL);
    assert_errno(v.rename(InodeId::ROOT, &name("d"), InodeId::ROOT, &name("b"), 0, &root()).await, libc::ENOTDIR);
    assert_errno(v.rename(InodeId::ROOT, &name("b"), InodeId::ROOT, &name("d"), 0, &root()).await, libc::EISDIR);
    assert_errno(v.rename(InodeId::ROOT, &name("d"), InodeId::ROOT, &name("e"), 4, &root()).await, libc::EINVAL);
}

#[tokio::test]
async fn readdir_pages_offsets_and_rewind() {
    let cfg = VfsConfig { readdir_page: 7, ..VfsConfig::default() };
    let (v, _, _) = vfs_with(cfg);
    for i in 0..50 {
        v.mknod(InodeId::ROOT, &name(&format!("f{i:02}")), libc::S_IFREG | 0o644, 0, &root()).await.unwrap();
    }
    let fh = v.opendir(InodeId::ROOT).await.unwrap();
    let mut names = Vec::new();
    let mut offset = 0;
    loop {
        let batch = v.readdir(fh, offset, 9).await.unwrap();
        if batch.is_empty() {
            break;
        }
        offset = batch.last().unwrap().offset;
        names.extend(batch.into_iter().map(|e| e.name.to_string()));
    }
    assert_eq!(names.len(), 52);
    assert_eq!(&names[..3], &[".", "..", "f00"]);
    assert_eq!(names.last().unwrap(), "f49");
    // Resuming from any offset continues exactly there.
    let again = v.readdir(fh, 10, 1).await.unwrap();
    assert_eq!(again[0].name.to_string(), "f08");
    // Offset 0 again: a fresh listing that sees a new entry.
    v.mknod(InodeId::ROOT, &name("g"), libc::S_IFREG | 0o644, 0, &root()).await.unwrap();
    let fresh = v.readdir(fh, 0, 100).await.unwrap();
    assert_eq!(fresh.len(), 53);
    v.releasedir(fh).unwrap();
    assert_errno(v.readdir(fh, 0, 1).await, libc::EBADF);
    let (f, h) = create(&v, "notdir").await;
    v.release(h).await.unwrap();
    assert_errno(v.opendir(f).await, libc::ENOTDIR);
}

#[tokio::test]
async fn setattr_mode_owner_times() {
    let (v, _, _) = vfs();
    let (ino, fh) = create(&v, "f").await;
    v.release(fh).await.unwrap();
    let set = SetAttr { mode: Some(0o4711), uid: Some(5), gid: Some(6), ..Default::default() };
    let a = v.setattr(ino, &set, None, &root()).await.unwrap();
    assert_eq!((a.mode, a.uid, a.gid), (0o4711, 5, 6));
    assert_eq!(v.getattr(ino).await.unwrap().mode, 0o4711);
}

#[tokio::test]
async fn xattrs_statfs_and_access() {
    let (v, _, _) = vfs();
    let (ino, fh) = create(&v, "x").await;
    v.release(fh).await.unwrap();
    v.setxattr(ino, &name("user.a"), Bytes::from_static(b"1"), 0, &root()).await.unwrap();
    assert_errno(
        v.setxattr(ino, &name("user.a"), Bytes::new(), libc::XATTR_CREATE as u32, &root()).await,
        libc::EEXIST,
    );
    assert_errno(
        v.setxattr(ino, &name("user.b"), Bytes::new(), libc::XATTR_REPLACE as u32, &root()).await,
        libc::ENODATA,
    );
    assert_eq!(&v.getxattr(ino, &name("user.a"), &root()).await.unwrap()[..], b"1");
    assert_eq!(v.listxattr(ino, &root()).await.unwrap(), vec![name("user.a")]);
    v.removexattr(ino, &name("user.a"), &root()).await.unwrap();
    assert_errno(v.getxattr(ino, &name("user.a"), &root()).await, libc::ENODATA);

    let st = v.statfs().await.unwrap();
    assert_eq!(st.bsize, 4096);
    assert!(st.blocks > 0 && st.bfree <= st.blocks && st.files > st.ffree);

    let set = SetAttr { mode: Some(0o640), uid: Some(1000), gid: Some(100), ..Default::default() };
    v.setattr(ino, &set, None, &root()).await.unwrap();
    v.access(ino, libc::R_OK | libc::W_OK, &Cred::user(1000, 1)).await.unwrap();
    v.access(ino, libc::R_OK, &Cred::user(2000, 100)).await.unwrap();
    assert_errno(v.access(ino, libc::W_OK, &Cred::user(2000, 100)).await, libc::EACCES);
    assert_errno(v.access(ino, libc::R_OK, &Cred::user(2000, 200)).await, libc::EACCES);
    let member = Cred { uid: 2000, gid: 200, groups: vec![100] };
    v.access(ino, libc::R_OK, &member).await.unwrap();
    assert_errno(v.access(ino, libc::X_OK, &root()).await, libc::EACCES);
    v.access(ino, libc::F_OK, &Cred::user(3000, 3000)).await.unwrap();
}

#[tokio::test]
async fn setgid_directories_pass_their_group_on() {
    let (v, _, _) = vfs();
    let d = v.mkdir(InodeId::ROOT, &name("g"), 0o2775, &Cred::user(1, 50)).await.unwrap();
    assert_eq!(d.mode & 0o2000, 0o2000);
    let f = v.mknod(d.inode, &name("f"), libc::S_IFREG | 0o644, 0, &Cred::user(2, 60)).await.unwrap();
    assert_eq!(f.gid, 50);
    let sub = v.mkdir(d.inode, &name("s"), 0o755, &Cred::user(2, 60)).await.unwrap();
    assert_eq!((sub.gid, sub.mode & 0o2000), (50, 0o2000));
}

/// The kernel asks for `security.capability` before every write; for a file this client just created
/// the answer ("none") comes from the cache, without a metanode round trip.
#[tokio::test]
async fn a_new_file_has_no_capabilities_without_asking_the_metanode() {
    use crate::backend::MetaBackend;
    let (v, meta, _) = vfs();
    let (ino, _fh) = create(&v, "f").await;
    // Behind this client's back (as another client would): the cached answer is kept for the TTL.
    let cap = name("security.capability");
    meta.set_xattr(ino, &cap, &bytes::Bytes::from_static(b"x"), 0, &root()).await.unwrap();
    assert_errno(v.getxattr(ino, &cap, &root()).await, libc::ENODATA);
    // Other names still go to the metanode.
    meta.set_xattr(ino, &name("user.a"), &bytes::Bytes::from_static(b"y"), 0, &root()).await.unwrap();
    assert_eq!(&v.getxattr(ino, &name("user.a"), &root()).await.unwrap()[..], b"y");
}

#[tokio::test]
async fn an_unlinked_file_is_deleted_at_once_unless_open_here() {
    let (v, meta, _) = vfs();
    let (closed, fh) = create(&v, "closed").await;
    v.release(fh).await.unwrap();
    v.unlink(InodeId::ROOT, &name("closed"), &root()).await.unwrap();
    assert!(!meta.has_inode(closed), "deleted by the unlink itself, no Evict to wait for");
    let (open, fh) = create(&v, "open").await;
    v.write(fh, 0, b"still readable").await.unwrap();
    v.unlink(InodeId::ROOT, &name("open"), &root()).await.unwrap();
    assert!(meta.has_inode(open), "open here: kept until the last release");
    assert_eq!(&v.read(fh, 0, 100).await.unwrap()[..], b"still readable");
    v.release(fh).await.unwrap();
    for _ in 0..1000 {
        if !meta.has_inode(open) {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(!meta.has_inode(open));
}

#[tokio::test]
async fn a_change_to_a_directory_leaves_its_new_attributes_cached() {
    let (v, meta, _) = vfs();
    let d = v.mkdir(InodeId::ROOT, &name("d"), 0o755, &root()).await.unwrap().inode;
    let before = v.getattr(d).await.unwrap();
    let (_, fh) = v.create(d, &name("f"), 0o644, libc::O_RDWR, &root()).await.unwrap();
    v.release(fh).await.unwrap();
    let calls = meta.calls();
    let after = v.getattr(d).await.unwrap();
    assert_eq!(meta.calls(), calls, "answered from the attributes the create returned");
    assert!(after.mtime > before.mtime && after.ctime > before.ctime);
    assert_eq!(after, meta.get_attr(d).await.unwrap(), "exactly what the metanode holds");
    v.mkdir(d, &name("sub"), 0o755, &root()).await.unwrap();
    assert_eq!(v.getattr(d).await.unwrap().nlink, after.nlink + 1);
    v.unlink(d, &name("f"), &root()).await.unwrap();
    assert_eq!(v.getattr(d).await.unwrap(), meta.get_attr(d).await.unwrap());
}
