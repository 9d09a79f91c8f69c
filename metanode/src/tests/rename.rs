//! rename within one partition: plain, over files and directories, NOREPLACE, EXCHANGE, and errors.

use ferrum_proto::msg::attr::FileKind;
use ferrum_proto::msg::meta::Rename;
use ferrum_proto::{ErrorCode, InodeId};

use super::kit::{root, user, Kit};

const ROOT: InodeId = InodeId::ROOT;

#[tokio::test]
async fn rename_a_file_within_and_across_directories() {
    let k = Kit::one().await;
    let f = k.create(ROOT, "a").await.unwrap();
    let r = k.rename(ROOT, "a", ROOT, "b", 0).await.unwrap();
    assert_eq!(r.replaced, None);
    assert_eq!(k.ino(ROOT, "b").await.unwrap(), f.inode);
    assert_eq!(k.lookup(ROOT, "a").await, Err(ErrorCode::NotFound));
    let d = k.mkdir(ROOT, "d").await.unwrap();
    k.rename(ROOT, "b", d.inode, "c", 0).await.unwrap();
    assert_eq!(k.ino(d.inode, "c").await.unwrap(), f.inode);
    assert!(k.getattr(f.inode).await.unwrap().ctime >= f.ctime);
    assert_eq!(k.getattr(ROOT).await.unwrap().nlink, 3);
    k.assert_clean().await;
}

#[tokio::test]
async fn rename_over_a_file_unlinks_it() {
    let k = Kit::one().await;
    let a = k.create(ROOT, "a").await.unwrap();
    let b = k.create(ROOT, "b").await.unwrap();
    let r = k.rename(ROOT, "a", ROOT, "b", 0).await.unwrap();
    assert_eq!(r.replaced.map(|u| (u.inode, u.nlink)), Some((b.inode, 0)));
    assert_eq!(k.ino(ROOT, "b").await.unwrap(), a.inode);
    assert_eq!(k.getattr(b.inode).await.unwrap().nlink, 0, "kept as an orphan until evicted");
    k.assert_clean().await;
}

#[tokio::test]
async fn moving_directories_updates_links_and_dotdot() {
    let k = Kit::one().await;
    let x = k.mkdir(ROOT, "x").await.unwrap();
    let y = k.mkdir(ROOT, "y").await.unwrap();
    let sub = k.mkdir(x.inode, "sub").await.unwrap();
    k.rename(x.inode, "sub", y.inode, "moved", 0).await.unwrap();
    assert_eq!(k.getattr(x.inode).await.unwrap().nlink, 2);
    assert_eq!(k.getattr(y.inode).await.unwrap().nlink, 3);
    assert_eq!(k.lookup(sub.inode, "..").await.unwrap().inode, y.inode);
    // Directory over an empty directory: replaced, the parent's count unchanged.
    let empty = k.mkdir(ROOT, "empty").await.unwrap();
    let r = k.rename(ROOT, "x", ROOT, "empty", 0).await.unwrap();
    assert_eq!(r.replaced.map(|u| u.inode), Some(empty.inode));
    assert_eq!(k.getattr(empty.inode).await, Err(ErrorCode::NotFound));
    assert_eq!(k.getattr(ROOT).await.unwrap().nlink, 4, "root holds y and the renamed x");
    k.assert_clean().await;
}

#[tokio::test]
async fn rename_errors() {
    let k = Kit::one().await;
    let d = k.mkdir(ROOT, "d").await.unwrap();
    let sub = k.mkdir(d.inode, "sub").await.unwrap();
    k.create(d.inode, "f").await.unwrap();
    k.create(ROOT, "g").await.unwrap();
    let full = k.mkdir(ROOT, "full").await.unwrap();
    k.create(full.inode, "x").await.unwrap();
    assert_eq!(k.rename(ROOT, "nope", ROOT, "z", 0).await, Err(ErrorCode::NotFound));
    assert_eq!(k.rename(d.inode, "sub", ROOT, "g", 0).await, Err(ErrorCode::NotDir), "directory over a file");
    assert_eq!(k.rename(ROOT, "g", d.inode, "sub", 0).await, Err(ErrorCode::IsDir), "file over a directory");
    assert_eq!(k.rename(ROOT, "d", ROOT, "full", 0).await, Err(ErrorCode::NotEmpty));
    assert!(matches!(k.rename(ROOT, "d", sub.inode, "inside", 0).await, Err(ErrorCode::InvalidArgument(_))));
    assert!(matches!(k.rename(ROOT, "d", d.inode, "self", 0).await, Err(ErrorCode::InvalidArgument(_))));
    assert_eq!(k.rename(ROOT, "g", ROOT, &"n".repeat(256), 0).await, Err(ErrorCode::NameTooLong));
    assert_eq!(k.rename(ROOT, "g", ROOT, "h", 4).await, Err(ErrorCode::NotSupported));
    assert!(matches!(
        k.rename(ROOT, "g", ROOT, "h", Rename::NOREPLACE | Rename::EXCHANGE).await,
        Err(ErrorCode::InvalidArgument(_))
    ));
    let r = k.svc.rename(k.rename_req(ROOT, "g", ROOT, "h", 0, user(5))).await;
    assert_eq!(r, Err(ErrorCode::PermissionDenied));
    // Nothing changed.
    assert_eq!(k.names(ROOT, 10).await.unwrap(), ["d", "full", "g"]);
    k.assert_clean().await;
}

#[tokio::test]
async fn noreplace_and_same_inode() {
    let k = Kit::one().await;
    let a = k.create(ROOT, "a").await.unwrap();
    k.create(ROOT, "b").await.unwrap();
    assert_eq!(k.rename(ROOT, "a", ROOT, "b", Rename::NOREPLACE).await, Err(ErrorCode::Exists));
    k.rename(ROOT, "a", ROOT, "c", Rename::NOREPLACE).await.unwrap();
    // Two names of one file: nothing happens, both stay.
    k.link(a.inode, ROOT, "c2", root()).await.unwrap();
    let r = k.rename(ROOT, "c", ROOT, "c2", 0).await.unwrap();
    assert_eq!(r.replaced, None);
    assert_eq!(k.ino(ROOT, "c").await.unwrap(), a.inode);
    assert_eq!(k.ino(ROOT, "c2").await.unwrap(), a.inode);
    // Onto itself: nothing.
    k.rename(ROOT, "c", ROOT, "c", 0).await.unwrap();
    assert_eq!(k.getattr(a.inode).await.unwrap().nlink, 2);
    k.assert_clean().await;
}

#[tokio::test]
async fn exchange_swaps_including_directories() {
    let k = Kit::one().await;
    let x = k.mkdir(ROOT, "x").await.unwrap();
    let y = k.mkdir(ROOT, "y").await.unwrap();
    let f = k.create(x.inode, "f").await.unwrap();
    let sub = k.mkdir(y.inode, "sub").await.unwrap();
    k.rename(x.inode, "f", y.inode, "sub", Rename::EXCHANGE).await.unwrap();
    let l = k.lookup(x.inode, "f").await.unwrap();
    assert_eq!((l.inode, l.kind), (sub.inode, FileKind::Dir));
    let l = k.lookup(y.inode, "sub").await.unwrap();
    assert_eq!((l.inode, l.kind), (f.inode, FileKind::File));
    assert_eq!(k.getattr(x.inode).await.unwrap().nlink, 3);
    assert_eq!(k.getattr(y.inode).await.unwrap().nlink, 2);
    assert_eq!(k.lookup(sub.inode, "..").await.unwrap().inode, x.inode);
    assert_eq!(k.rename(x.inode, "f", y.inode, "absent", Rename::EXCHANGE).await, Err(ErrorCode::NotFound));
    k.assert_clean().await;
}
