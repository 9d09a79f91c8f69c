//! Splitting a partition's inode range (the master's `SplitMetaPartition`): the end is committed
//! through Raft once, allocations past it are refused with `InodeRangeEnd`, inodes past it are
//! someone else's, and the partition that follows takes new inodes.

use std::collections::BTreeMap;

use ferrum_proto::msg::attr::FileKind;
use ferrum_proto::msg::master::SplitMetaPartition;
use ferrum_proto::msg::meta::MetaRoute;
use ferrum_proto::msg::topology::{InodeRange, Replica};
use ferrum_proto::{ErrorCode, GroupId, InodeId, NodeId, PartitionId, VolumeId};
use ferrum_raftstore::GroupView;

use super::kit::{root, Kit, ADDR};
use crate::app::partition_desc;

const ROOT: InodeId = InodeId::ROOT;
const P1: PartitionId = PartitionId(1);
const P2: PartitionId = PartitionId(2);

async fn split(k: &Kit, step: u64) -> Result<InodeId, ErrorCode> {
    Ok(k.svc.split(SplitMetaPartition { partition: P1, step }).await?.end)
}

/// What the partition reports to the master: `read_only` once its range was ended.
fn reports_ended(k: &Kit) -> bool {
    let h = k.raft.handle(GroupId::from(P1)).unwrap();
    h.app.usage(&GroupView::new(k.raft.store(), GroupId::from(P1))).read_only
}

/// Creates the partition that follows `P1` from `start` on, as the master does after a split.
async fn add_next(k: &mut Kit, start: InodeId) {
    let range = InodeRange { start, end: InodeId(u64::MAX) };
    let desc = partition_desc(P2, VolumeId(1), range, vec![Replica { node: NodeId(1), addr: ADDR.into() }]);
    k.raft.create_group(GroupId::from(P2), desc, BTreeMap::from([(NodeId(1), ADDR.to_string())])).await.unwrap();
    k.wait_leader(P2).await;
    k.routes[0].inodes.end = start;
    k.routes.push(MetaRoute { partition: P2, inodes: range, replicas: vec![ADDR.into()] });
}

#[tokio::test]
async fn a_split_ends_the_range_once_and_the_next_partition_takes_over() {
    let mut k = Kit::one().await;
    let mut before = Vec::new();
    for name in ["a", "b", "c"] {
        before.push(k.create(ROOT, name).await.unwrap().inode);
    }
    assert!(!reports_ended(&k));
    // Inodes 1 (root) to 4 are taken: the range ends 3 numbers past the next free one.
    let end = split(&k, 3).await.unwrap();
    assert_eq!(end, InodeId(8));
    assert_eq!(split(&k, 100).await.unwrap(), end, "a second request (a retry, a new master) gets the same end");
    assert!(reports_ended(&k), "the master learns of the split from the heartbeat report");

    // The partition allocates up to its end, then refuses with an error saying where it ends.
    for name in ["d", "e", "f"] {
        before.push(k.create(ROOT, name).await.unwrap().inode);
    }
    assert_eq!(before.last(), Some(&InodeId(7)));
    let refused = ErrorCode::InodeRangeEnd { partition: P1, end };
    assert_eq!(k.create(ROOT, "g").await, Err(refused.clone()));
    assert_eq!(k.mkdir(ROOT, "g").await, Err(refused.clone()));
    // An inode past the end is not this partition's: a caller with an old view is told so.
    assert_eq!(k.svc.get_attr(ferrum_proto::msg::meta::GetAttr { partition: P1, inode: end }).await, Err(refused));

    // The partition that follows: new inodes there, entries still in the directory's partition.
    add_next(&mut k, end).await;
    let g = k.create_as(ROOT, "g", FileKind::File, 0o644, root(), P2).await.unwrap();
    assert_eq!(g.inode, end);
    let h = k.mkdir_as(ROOT, "h", 0o755, root(), P2).await.unwrap();
    assert_eq!(k.p(h.inode), P2);
    // Children of a directory in P2 are made there, without crossing partitions.
    let i = k.create(h.inode, "i").await.unwrap();
    assert_eq!(k.p(i.inode), P2);
    for ino in before.iter().chain([&g.inode, &h.inode, &i.inode]) {
        k.getattr(*ino).await.unwrap();
    }
    assert_eq!(k.names(ROOT, 100).await.unwrap(), ["a", "b", "c", "d", "e", "f", "g", "h"]);
    k.assert_clean().await;

    // The end is state of the partition: it survives a restart.
    let k = k.restart(Default::default()).await;
    assert_eq!(split(&k, 1).await.unwrap(), end);
    let again = k.create_as(ROOT, "j", FileKind::File, 0o644, root(), P1).await;
    assert_eq!(again, Err(ErrorCode::InodeRangeEnd { partition: P1, end }));
    assert_eq!(k.create_as(ROOT, "j", FileKind::File, 0o644, root(), P2).await.unwrap().inode, InodeId(end.get() + 3));
}
