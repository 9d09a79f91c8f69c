//! Statahead through the VFS: a directory walked name by name is listed once and answered locally, and
//! this client's own changes show in the listing at once.

use super::*;
use crate::backend::MetaBackend;

async fn make(v: &MemVfs, dir: InodeId, names: &[&str]) {
    for n in names {
        let (_, fh) = v.create(dir, &name(n), 0o644, libc::O_RDWR, &root()).await.unwrap();
        v.release(fh).await.unwrap();
    }
}

#[tokio::test]
async fn a_directory_walked_name_by_name_costs_one_listing() {
    let (writer, meta, data) = vfs();
    let d = writer.mkdir(InodeId::ROOT, &name("d"), 0o755, &root()).await.unwrap().inode;
    let names: Vec<String> = (0..50).map(|i| format!("f{i}")).collect();
    make(&writer, d, &names.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let reader = second_client(&meta, &data);
    let before = meta.calls();
    for n in &names {
        let a = reader.lookup(d, &name(n), &root()).await.unwrap();
        assert_eq!(a.kind, ferrum_proto::msg::attr::FileKind::File);
    }
    assert_errno(reader.lookup(d, &name("absent"), &root()).await, libc::ENOENT);
    // One lookup, then the listing; everything else was answered here.
    assert_eq!(meta.calls() - before, 2, "calls for 51 lookups");
}

#[tokio::test]
async fn local_changes_show_in_the_listing_at_once() {
    let (v, _meta, _data) = vfs();
    let d = v.mkdir(InodeId::ROOT, &name("d"), 0o755, &root()).await.unwrap().inode;
    make(&v, d, &["a", "b"]).await;
    for n in ["a", "b"] {
        v.lookup(d, &name(n), &root()).await.unwrap();
    }
    make(&v, d, &["c"]).await;
    assert!(v.lookup(d, &name("c"), &root()).await.is_ok(), "created here after the listing");
    v.unlink(d, &name("a"), &root()).await.unwrap();
    assert_errno(v.lookup(d, &name("a"), &root()).await, libc::ENOENT);
    let b = v.lookup(d, &name("b"), &root()).await.unwrap().inode;
    v.rename(d, &name("b"), d, &name("renamed"), 0, &root()).await.unwrap();
    assert_errno(v.lookup(d, &name("b"), &root()).await, libc::ENOENT);
    assert_eq!(v.lookup(d, &name("renamed"), &root()).await.unwrap().inode, b);
    let sub = v.mkdir(d, &name("sub"), 0o755, &root()).await.unwrap().inode;
    assert_eq!(v.lookup(d, &name("sub"), &root()).await.unwrap().inode, sub);
    v.rmdir(d, &name("sub"), &root()).await.unwrap();
    assert_errno(v.lookup(d, &name("sub"), &root()).await, libc::ENOENT);
}

#[tokio::test]
async fn a_name_taken_elsewhere_is_found_once_a_create_fails() {
    let (v, meta, data) = vfs();
    let d = v.mkdir(InodeId::ROOT, &name("d"), 0o755, &root()).await.unwrap().inode;
    make(&v, d, &["a", "b"]).await;
    for n in ["a", "b"] {
        v.lookup(d, &name(n), &root()).await.unwrap();
    }
    let other = second_client(&meta, &data);
    make(&other, d, &["late"]).await;
    // Within the TTL the listing may say "no such name", as a kernel's negative dentry would; an
    // exclusive create still fails, and drops the listing.
    let r = v.create(d, &name("late"), 0o644, libc::O_RDWR | libc::O_EXCL, &root()).await;
    assert_errno(r, libc::EEXIST);
    assert!(v.lookup(d, &name("late"), &root()).await.is_ok());
}

#[tokio::test]
async fn a_rename_in_a_listed_directory_leaves_the_directory_attributes_cached() {
    let (v, meta, _data) = vfs();
    let d = v.mkdir(InodeId::ROOT, &name("d"), 0o755, &root()).await.unwrap().inode;
    make(&v, d, &["a", "b"]).await;
    let a = v.lookup(d, &name("a"), &root()).await.unwrap();
    v.lookup(d, &name("b"), &root()).await.unwrap();
    v.rename(d, &name("a"), d, &name("a.r"), 0, &root()).await.unwrap();
    let calls = meta.calls();
    let dir = v.getattr(d).await.unwrap();
    assert_eq!(meta.calls(), calls, "the directory's attributes came with the rename's reply");
    assert_eq!(dir, meta.get_attr(d).await.unwrap(), "exactly what the metanode holds");
    let moved = v.getattr(a.inode).await.unwrap();
    assert!(moved.ctime > a.ctime, "the moved inode's cached attributes were dropped (its ctime changed)");
}
