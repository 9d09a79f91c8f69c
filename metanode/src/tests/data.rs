//! Extent maps, truncation, eviction, the freed queue, statfs.

use ferrum_proto::msg::attr::SetAttrFields;
use ferrum_proto::msg::extent::ExtentKey;
use ferrum_proto::msg::meta::{Cred, Evict, ExtentAppend, ExtentList, FreedAck, FreedList, InlineOp, StatFs};
use ferrum_proto::{ErrorCode, ExtentId, InodeId, PartitionId};

use super::kit::{root, user, Kit};

fn key(off: u64, ext: u64, eoff: u64, len: u64) -> ExtentKey {
    ExtentKey { file_offset: off, partition: PartitionId(50), extent: ExtentId(ext), extent_offset: eoff, len }
}

async fn append(k: &Kit, ino: InodeId, keys: Vec<ExtentKey>, cred: Cred) -> Result<(), ErrorCode> {
    k.svc
        .extent_append(ExtentAppend {
            partition: k.p(ino),
            op: k.op(),
            inode: ino,
            extents: keys,
            inline: InlineOp::Keep,
            cred,
        })
        .await
}

async fn list(k: &Kit, ino: InodeId) -> (u64, Vec<ExtentKey>) {
    let r = k.svc.extent_list(ExtentList { partition: k.p(ino), inode: ino }).await.unwrap();
    (r.size, r.extents)
}

async fn freed(k: &Kit) -> Vec<(u64, ExtentKey, bool)> {
    let r = k.svc.freed_list(FreedList { partition: k.part(0), limit: 100 }).await.unwrap();
    r.pieces.into_iter().map(|p| (p.seq, p.extent, p.inode_evicted)).collect()
}

#[tokio::test]
async fn appends_map_data_and_grow_the_file() {
    let k = Kit::one().await;
    let f = k.create(InodeId::ROOT, "f").await.unwrap();
    append(&k, f.inode, vec![key(0, 1, 0, 4096), key(4096, 1, 4096, 4096)], root()).await.unwrap();
    let a = k.getattr(f.inode).await.unwrap();
    assert_eq!(a.size, 8192);
    assert!(a.mtime >= f.mtime);
    assert_eq!(list(&k, f.inode).await, (8192, vec![key(0, 1, 0, 8192)]));
    // An overwrite elsewhere replaces the middle and queues the old bytes.
    append(&k, f.inode, vec![key(1000, 2, 0, 100)], root()).await.unwrap();
    assert_eq!(list(&k, f.inode).await.1, vec![key(0, 1, 0, 1000), key(1000, 2, 0, 100), key(1100, 1, 1100, 7092)]);
    assert_eq!(freed(&k).await, vec![(1, key(1000, 1, 1000, 100), false)]);
    // Sparse: a write past the end leaves a hole.
    append(&k, f.inode, vec![key(1 << 20, 3, 0, 10)], root()).await.unwrap();
    assert_eq!(k.getattr(f.inode).await.unwrap().size, (1 << 20) + 10);
    let d = k.mkdir(InodeId::ROOT, "d").await.unwrap();
    assert_eq!(append(&k, d.inode, vec![key(0, 1, 0, 1)], root()).await, Err(ErrorCode::IsDir));
    assert_eq!(append(&k, f.inode, vec![key(u64::MAX, 1, 0, 2)], root()).await, Err(ErrorCode::FileTooBig));
}

#[tokio::test]
async fn writes_by_users_clear_setuid() {
    let k = Kit::one().await;
    let f = k.create(InodeId::ROOT, "f").await.unwrap();
    k.setattr(f.inode, SetAttrFields { mode: Some(0o6755), ..Default::default() }, root()).await.unwrap();
    append(&k, f.inode, vec![key(0, 1, 0, 1)], root()).await.unwrap();
    assert_eq!(k.getattr(f.inode).await.unwrap().mode, 0o6755);
    append(&k, f.inode, vec![key(1, 1, 1, 1)], user(3)).await.unwrap();
    assert_eq!(k.getattr(f.inode).await.unwrap().mode, 0o755);
}

#[tokio::test]
async fn truncate_evict_and_the_freed_queue() {
    let k = Kit::one().await;
    let f = k.create(InodeId::ROOT, "f").await.unwrap();
    append(&k, f.inode, vec![key(0, 1, 0, 1000), key(5000, 2, 0, 1000)], root()).await.unwrap();
    let a = k.setattr(f.inode, SetAttrFields { size: Some(500), ..Default::default() }, root()).await.unwrap();
    assert_eq!(a.size, 500);
    assert_eq!(list(&k, f.inode).await, (500, vec![key(0, 1, 0, 500)]));
    assert_eq!(freed(&k).await.len(), 2);
    // Growing leaves a hole, frees nothing.
    k.setattr(f.inode, SetAttrFields { size: Some(9000), ..Default::default() }, root()).await.unwrap();
    assert_eq!(list(&k, f.inode).await, (9000, vec![key(0, 1, 0, 500)]));
    // Evicting a linked inode does nothing; once unlinked it frees everything.
    let ev = || Evict { partition: k.part(0), op: k.op(), inode: f.inode };
    k.svc.evict(ev()).await.unwrap();
    assert!(k.getattr(f.inode).await.is_ok());
    k.unlink(InodeId::ROOT, "f", root()).await.unwrap();
    k.svc.evict(ev()).await.unwrap();
    assert_eq!(k.getattr(f.inode).await, Err(ErrorCode::NotFound));
    k.svc.evict(ev()).await.unwrap();
    let q = freed(&k).await;
    assert_eq!(q.len(), 3);
    assert_eq!(q[2], (3, key(0, 1, 0, 500), true));
    k.svc.freed_ack(FreedAck { partition: k.part(0), op: k.op(), upto: 2 }).await.unwrap();
    assert_eq!(freed(&k).await.iter().map(|p| p.0).collect::<Vec<_>>(), [3]);
}

#[tokio::test]
async fn statfs_counts_inodes_and_bytes() {
    let k = Kit::with(&[(1, 1, 1000)], Default::default()).await;
    let s0 = k.svc.stat_fs(StatFs { partition: k.part(0) }).await.unwrap();
    assert_eq!((s0.inodes, s0.bytes, s0.free_inodes), (1, 0, 998));
    let f = k.create(InodeId::ROOT, "f").await.unwrap();
    append(&k, f.inode, vec![key(0, 1, 0, 300)], root()).await.unwrap();
    k.mkdir(InodeId::ROOT, "d").await.unwrap();
    let s = k.svc.stat_fs(StatFs { partition: k.part(0) }).await.unwrap();
    assert_eq!((s.inodes, s.bytes, s.free_inodes), (3, 300, 996));
    k.unlink(InodeId::ROOT, "f", root()).await.unwrap();
    k.svc.evict(Evict { partition: k.part(0), op: k.op(), inode: f.inode }).await.unwrap();
    k.rmdir(InodeId::ROOT, "d", root()).await.unwrap();
    let s = k.svc.stat_fs(StatFs { partition: k.part(0) }).await.unwrap();
    assert_eq!((s.inodes, s.bytes, s.free_inodes), (1, 0, 996), "inode numbers are never reused");
}

#[tokio::test]
async fn an_exhausted_range_says_where_it_ends() {
    let k = Kit::with(&[(1, 1, 4)], Default::default()).await;
    k.create(InodeId::ROOT, "a").await.unwrap();
    k.create(InodeId::ROOT, "b").await.unwrap();
    let end = ErrorCode::InodeRangeEnd { partition: k.part(0), end: InodeId(4) };
    assert_eq!(k.create(InodeId::ROOT, "c").await, Err(end));
}

async fn append_inline(k: &Kit, ino: InodeId, keys: Vec<ExtentKey>, inline: InlineOp) -> Result<(), ErrorCode> {
    let req = ExtentAppend { partition: k.p(ino), op: k.op(), inode: ino, extents: keys, inline, cred: root() };
    k.svc.extent_append(req).await
}

#[tokio::test]
async fn a_small_file_lives_inline_until_it_moves_to_extents() {
    let k = Kit::one().await;
    let f = k.create(InodeId::ROOT, "f").await.unwrap();
    let bytes = bytes::Bytes::from_static(b"small file");
    append_inline(&k, f.inode, vec![], InlineOp::Set(bytes.clone())).await.unwrap();
    let r = k.svc.extent_list(ExtentList { partition: k.p(f.inode), inode: f.inode }).await.unwrap();
    assert_eq!((r.size, r.extents.len(), r.inline), (10, 0, Some(bytes.clone())));
    // A writer that did not know about the inline bytes is told to reload, and nothing changes.
    assert!(matches!(append(&k, f.inode, vec![key(0, 1, 0, 20)], root()).await, Err(ErrorCode::Stale { .. })));
    assert_eq!(list(&k, f.inode).await, (10, vec![]));
    // Truncating cuts the inline bytes.
    k.setattr(f.inode, SetAttrFields { size: Some(5), ..Default::default() }, root()).await.unwrap();
    let r = k.svc.extent_list(ExtentList { partition: k.p(f.inode), inode: f.inode }).await.unwrap();
    assert_eq!((r.size, r.inline), (5, Some(bytes.slice(..5))));
    // Moving to extents drops them in the same step.
    append_inline(&k, f.inode, vec![key(0, 1, 0, 20)], InlineOp::Drop).await.unwrap();
    let r = k.svc.extent_list(ExtentList { partition: k.p(f.inode), inode: f.inode }).await.unwrap();
    assert_eq!((r.size, r.extents, r.inline), (20, vec![key(0, 1, 0, 20)], None));
    assert!(matches!(append_inline(&k, f.inode, vec![], InlineOp::Set(bytes)).await, Err(ErrorCode::Stale { .. })));
    // Deleting an inline file frees nothing on the datanodes.
    let g = k.create(InodeId::ROOT, "g").await.unwrap();
    append_inline(&k, g.inode, vec![], InlineOp::Set(bytes::Bytes::from_static(b"x"))).await.unwrap();
    k.unlink(InodeId::ROOT, "g", root()).await.unwrap();
    k.svc.evict(Evict { partition: k.part(0), op: k.op(), inode: g.inode }).await.unwrap();
    assert_eq!(freed(&k).await.len(), 0);
    assert_eq!(k.svc.stat_fs(StatFs { partition: k.part(0) }).await.unwrap().bytes, 20, "f's 20 bytes are left");
}

#[tokio::test]
async fn an_unlink_deletes_at_once_what_the_caller_does_not_hold_open() {
    let k = Kit::one().await;
    let f = k.create(InodeId::ROOT, "f").await.unwrap();
    let g = k.create(InodeId::ROOT, "g").await.unwrap();
    let h = k.create(InodeId::ROOT, "h").await.unwrap();
    append(&k, f.inode, vec![key(0, 1, 0, 100)], root()).await.unwrap();
    // Not open at the caller: gone in the same step, its data queued for release.
    let u = k.unlink_with(InodeId::ROOT, "f", root(), Some(vec![g.inode])).await.unwrap();
    assert_eq!((u.nlink, u.evicted), (0, true));
    assert_eq!(k.getattr(f.inode).await, Err(ErrorCode::NotFound));
    assert_eq!(freed(&k).await, vec![(1, key(0, 1, 0, 100), true)]);
    // Open at the caller: an orphan until its Evict.
    let u = k.unlink_with(InodeId::ROOT, "g", root(), Some(vec![g.inode])).await.unwrap();
    assert_eq!((u.nlink, u.evicted), (0, false));
    assert!(k.getattr(g.inode).await.is_ok());
    // Still linked elsewhere: only the entry goes.
    k.link(h.inode, InodeId::ROOT, "h2", root()).await.unwrap();
    let u = k.unlink_with(InodeId::ROOT, "h", root(), Some(vec![])).await.unwrap();
    assert_eq!((u.nlink, u.evicted), (1, false));
    assert!(k.getattr(h.inode).await.is_ok());
}
