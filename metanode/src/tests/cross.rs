//! Operations whose inodes and entries live in different partitions: the same results as within one,
//! and nothing left behind (no prepare, no outbox, fsck clean).

use ferrum_proto::msg::attr::FileKind;
use ferrum_proto::msg::meta::Rename;
use ferrum_proto::{ErrorCode, InodeId, PartitionId};

use super::kit::{root, user, Kit};

const ROOT: InodeId = InodeId::ROOT;

/// Root in partition 1; partitions 2 and 3 hold inodes from 1000 and 2000.
async fn three() -> Kit {
    Kit::with(&[(1, 1, 1000), (2, 1000, 2000), (3, 2000, u64::MAX)], Default::default()).await
}

const P1: PartitionId = PartitionId(1);
const P2: PartitionId = PartitionId(2);
const P3: PartitionId = PartitionId(3);

async fn done(k: &Kit) {
    assert_eq!(k.leftovers().await, 0, "prepares or outboxes left behind");
    k.assert_clean().await;
}

#[tokio::test]
async fn create_and_mkdir_elsewhere() {
    let k = three().await;
    let f = k.create_as(ROOT, "f", FileKind::File, 0o600, root(), P2).await.unwrap();
    assert_eq!(k.p(f.inode), P2);
    let l = k.lookup(ROOT, "f").await.unwrap();
    assert_eq!((l.inode, l.kind, l.attr), (f.inode, FileKind::File, None), "attributes live in the inode's partition");
    assert_eq!(k.getattr(f.inode).await.unwrap().mode, 0o600);
    let d = k.mkdir_as(ROOT, "d", 0o755, root(), P3).await.unwrap();
    assert_eq!(k.getattr(ROOT).await.unwrap().nlink, 3);
    // Entries of d live in P3; a file created there may live in P1 again.
    let g = k.create_as(d.inode, "g", FileKind::File, 0o644, root(), P1).await.unwrap();
    assert_eq!(k.ino(d.inode, "g").await.unwrap(), g.inode);
    assert_eq!(k.lookup(d.inode, "..").await.unwrap().inode, ROOT);
    assert_eq!(k.names(ROOT, 10).await.unwrap(), ["d", "f"]);
    let s = k.symlink(d.inode, "s", b"g", P2).await.unwrap();
    assert_eq!(k.p(s.inode), P2);
    // A taken name costs no inode: refused before anything is prepared.
    let before = k.svc.stat_fs(ferrum_proto::msg::meta::StatFs { partition: P2 }).await.unwrap().inodes;
    assert_eq!(k.create_as(ROOT, "f", FileKind::File, 0o600, root(), P2).await, Err(ErrorCode::Exists));
    assert_eq!(k.svc.stat_fs(ferrum_proto::msg::meta::StatFs { partition: P2 }).await.unwrap().inodes, before);
    done(&k).await;
}

#[tokio::test]
async fn unlink_link_and_rmdir_elsewhere() {
    let k = three().await;
    let f = k.create_as(ROOT, "f", FileKind::File, 0o644, root(), P2).await.unwrap();
    let d = k.mkdir_as(ROOT, "d", 0o755, root(), P3).await.unwrap();
    let a = k.link(f.inode, d.inode, "again", root()).await.unwrap();
    assert_eq!(a.nlink, 2);
    assert_eq!(k.link(d.inode, ROOT, "dirlink", root()).await, Err(ErrorCode::NotPermitted));
    let u = k.unlink(ROOT, "f", root()).await.unwrap();
    assert_eq!((u.inode, u.nlink), (f.inode, 1));
    let u = k.unlink(d.inode, "again", root()).await.unwrap();
    assert_eq!(u.nlink, 0);
    assert_eq!(k.getattr(f.inode).await.unwrap().nlink, 0);
    k.create_as(d.inode, "x", FileKind::File, 0o644, root(), P2).await.unwrap();
    assert_eq!(k.rmdir(ROOT, "d", root()).await, Err(ErrorCode::NotEmpty));
    assert_eq!(k.leftovers().await, 0, "a refused rmdir leaves nothing prepared");
    k.unlink(d.inode, "x", root()).await.unwrap();
    k.rmdir(ROOT, "d", root()).await.unwrap();
    assert_eq!(k.getattr(d.inode).await, Err(ErrorCode::NotFound));
    assert_eq!(k.getattr(ROOT).await.unwrap().nlink, 2);
    assert_eq!(k.create(d.inode, "late").await, Err(ErrorCode::NotFound));
    done(&k).await;
}

#[tokio::test]
async fn sticky_checks_ask_the_remote_owner() {
    let k = three().await;
    let tmp = k.mkdir_as(ROOT, "tmp", 0o1777, root(), P1).await.unwrap();
    k.create_as(tmp.inode, "theirs", FileKind::File, 0o644, user(11), P2).await.unwrap();
    k.create_as(tmp.inode, "mine", FileKind::File, 0o644, user(10), P2).await.unwrap();
    assert_eq!(k.unlink(tmp.inode, "theirs", user(10)).await, Err(ErrorCode::NotPermitted));
    k.unlink(tmp.inode, "mine", user(10)).await.unwrap();
    let other = k.mkdir_as(ROOT, "other", 0o777, root(), P3).await.unwrap();
    let r = k.svc.rename(k.rename_req(tmp.inode, "theirs", other.inode, "x", 0, user(10))).await;
    assert_eq!(r, Err(ErrorCode::NotPermitted));
    k.svc.rename(k.rename_req(tmp.inode, "theirs", other.inode, "x", 0, user(11))).await.unwrap();
    done(&k).await;
}

#[tokio::test]
async fn rename_across_partitions() {
    let k = three().await;
    let a = k.mkdir_as(ROOT, "a", 0o755, root(), P2).await.unwrap();
    let b = k.mkdir_as(ROOT, "b", 0o755, root(), P3).await.unwrap();
    let f = k.create_as(a.inode, "f", FileKind::File, 0o644, root(), P1).await.unwrap();
    // A file from a directory in P2 to one in P3.
    k.rename(a.inode, "f", b.inode, "g", 0).await.unwrap();
    assert_eq!(k.lookup(a.inode, "f").await, Err(ErrorCode::NotFound));
    assert_eq!(k.ino(b.inode, "g").await.unwrap(), f.inode);
    assert!(k.getattr(f.inode).await.unwrap().ctime > f.ctime, "the moved inode's ctime, in P1");
    // A directory across partitions: both parents' counts and its `..`.
    let sub = k.mkdir_as(a.inode, "sub", 0o755, root(), P1).await.unwrap();
    k.create(sub.inode, "inside").await.unwrap();
    k.rename(a.inode, "sub", b.inode, "sub", 0).await.unwrap();
    assert_eq!(k.getattr(a.inode).await.unwrap().nlink, 2);
    assert_eq!(k.getattr(b.inode).await.unwrap().nlink, 3);
    assert_eq!(k.lookup(sub.inode, "..").await.unwrap().inode, b.inode);
    assert_eq!(k.names(sub.inode, 10).await.unwrap(), ["inside"]);
    // Over a file held in a third partition: its count drops through the outbox.
    let victim = k.create_as(b.inode, "victim", FileKind::File, 0o644, root(), P2).await.unwrap();
    k.create_as(a.inode, "new", FileKind::File, 0o644, root(), P3).await.unwrap();
    let r = k.rename(a.inode, "new", b.inode, "victim", 0).await.unwrap();
    assert_eq!(r.replaced.map(|u| (u.inode, u.nlink)), Some((victim.inode, 0)));
    assert_eq!(k.getattr(victim.inode).await.unwrap().nlink, 0);
    done(&k).await;
}

#[tokio::test]
async fn rename_over_directories_held_elsewhere() {
    let k = three().await;
    let a = k.mkdir_as(ROOT, "a", 0o755, root(), P2).await.unwrap();
    let b = k.mkdir_as(ROOT, "b", 0o755, root(), P3).await.unwrap();
    k.mkdir_as(a.inode, "d", 0o755, root(), P3).await.unwrap();
    let full = k.mkdir_as(b.inode, "full", 0o755, root(), P1).await.unwrap();
    k.create_as(full.inode, "x", FileKind::File, 0o644, root(), P1).await.unwrap();
    assert_eq!(k.rename(a.inode, "d", b.inode, "full", 0).await, Err(ErrorCode::NotEmpty));
    assert_eq!(k.leftovers().await, 0, "the source lock was released");
    k.unlink(a.inode, "d", root()).await.expect_err("still a directory, still there");
    let empty = k.mkdir_as(b.inode, "empty", 0o755, root(), P1).await.unwrap();
    let r = k.rename(a.inode, "d", b.inode, "empty", 0).await.unwrap();
    assert_eq!(r.replaced.map(|u| u.inode), Some(empty.inode));
    assert_eq!(k.getattr(empty.inode).await, Err(ErrorCode::NotFound));
    assert_eq!(k.getattr(b.inode).await.unwrap().nlink, 4);
    assert_eq!(k.getattr(a.inode).await.unwrap().nlink, 2);
    done(&k).await;
}

#[tokio::test]
async fn exchange_and_noreplace_across_partitions() {
    let k = three().await;
    let a = k.mkdir_as(ROOT, "a", 0o755, root(), P2).await.unwrap();
    let b = k.mkdir_as(ROOT, "b", 0o755, root(), P3).await.unwrap();
    let f = k.create_as(a.inode, "f", FileKind::File, 0o644, root(), P1).await.unwrap();
    let d = k.mkdir_as(b.inode, "d", 0o755, root(), P2).await.unwrap();
    assert_eq!(k.rename(a.inode, "f", b.inode, "d", Rename::NOREPLACE).await, Err(ErrorCode::Exists));
    k.rename(a.inode, "f", b.inode, "d", Rename::EXCHANGE).await.unwrap();
    assert_eq!(k.lookup(a.inode, "f").await.unwrap().inode, d.inode);
    assert_eq!(k.lookup(b.inode, "d").await.unwrap().inode, f.inode);
    assert_eq!(k.lookup(d.inode, "..").await.unwrap().inode, a.inode);
    assert_eq!((k.getattr(a.inode).await.unwrap().nlink, k.getattr(b.inode).await.unwrap().nlink), (3, 2));
    done(&k).await;
}

#[tokio::test]
async fn no_loops_through_other_partitions() {
    let k = three().await;
    let top = k.mkdir_as(ROOT, "top", 0o755, root(), P2).await.unwrap();
    let mid = k.mkdir_as(top.inode, "mid", 0o755, root(), P3).await.unwrap();
    let low = k.mkdir_as(mid.inode, "low", 0o755, root(), P1).await.unwrap();
    let r = k.rename(ROOT, "top", low.inode, "loop", 0).await;
    assert!(matches!(r, Err(ErrorCode::InvalidArgument(_))), "{r:?}");
    assert_eq!(k.leftovers().await, 0);
    assert_eq!(k.ino(ROOT, "top").await.unwrap(), top.inode);
    done(&k).await;
}

#[tokio::test]
async fn a_retried_cross_partition_request_is_applied_once() {
    let k = three().await;
    let a = k.mkdir_as(ROOT, "a", 0o755, root(), P2).await.unwrap();
    let b = k.mkdir_as(ROOT, "b", 0o755, root(), P3).await.unwrap();
    k.create_as(a.inode, "f", FileKind::File, 0o644, root(), P1).await.unwrap();
    let req = k.rename_req(a.inode, "f", b.inode, "g", 0, root());
    let first = k.svc.rename(req.clone()).await.unwrap();
    assert_eq!(k.svc.rename(req).await.unwrap(), first);
    let mk = ferrum_proto::msg::meta::Mkdir {
        partition: P1,
        op: k.op(),
        parent: ROOT,
        name: "m".into(),
        mode: 0o755,
        cred: root(),
        inode_partition: P3,
        routes: k.routes.clone(),
    };
    let m1 = k.svc.mkdir(mk.clone()).await.unwrap();
    assert_eq!(k.svc.mkdir(mk).await.unwrap(), m1);
    done(&k).await;
}
