//! Who holds what: partitions, their replicas, and a volume's view of them.
//!
//! First cut, shared by the master and its clients; the master and client issues may extend these
//! (append fields only).

use serde::{Deserialize, Serialize};

use crate::error::LeaderHint;
use crate::ids::{InodeId, NodeId, PartitionId, VolumeId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PartitionKind {
    /// Holds inodes and dentries of a volume, for an [`InodeRange`].
    Meta,
    /// Holds extents (file data) of a volume.
    Data,
}

/// One replica of a partition: which node, reachable where (`host:port`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Replica {
    pub node: NodeId,
    pub addr: String,
}

/// The inodes a meta partition allocates: `start..end` (end exclusive; `InodeId(u64::MAX)` for the last,
/// open-ended partition).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InodeRange {
    pub start: InodeId,
    pub end: InodeId,
}

impl InodeRange {
    pub fn contains(&self, ino: InodeId) -> bool {
        self.start <= ino && ino < self.end
    }
}

/// A volume as a client sees it: where its metadata and data live.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeView {
    pub volume: VolumeId,
    pub name: String,
    /// Increases on every change; a client sends the version it knows to skip unchanged views.
    pub version: u64,
    pub meta_partitions: Vec<MetaPartitionView>,
    pub data_partitions: Vec<DataPartitionView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaPartitionView {
    pub partition: PartitionId,
    pub inodes: InodeRange,
    pub replicas: Vec<Replica>,
    /// Last known leader; a hint only, the replicas answer `NotLeader` when it moved.
    pub leader: Option<LeaderHint>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataPartitionView {
    pub partition: PartitionId,
    pub replicas: Vec<Replica>,
    pub leader: Option<LeaderHint>,
    /// False when full or being drained: clients read from it but put new extents elsewhere.
    pub writable: bool,
}

impl VolumeView {
    /// The meta partition whose range holds `ino`.
    pub fn meta_partition_of(&self, ino: InodeId) -> Option<&MetaPartitionView> {
        self.meta_partitions.iter().find(|p| p.inodes.contains(ino))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inode_range_is_half_open() {
        let r = InodeRange { start: InodeId(1), end: InodeId(100) };
        assert!(r.contains(InodeId(1)));
        assert!(r.contains(InodeId(99)));
        assert!(!r.contains(InodeId(100)));
        assert!(!r.contains(InodeId(0)));
    }

    #[test]
    fn finds_the_meta_partition_of_an_inode() {
        let mp = |p, start, end| MetaPartitionView {
            partition: PartitionId(p),
            inodes: InodeRange { start: InodeId(start), end: InodeId(end) },
            replicas: vec![Replica { node: NodeId(1), addr: "a:1".into() }],
            leader: None,
        };
        let view = VolumeView {
            volume: VolumeId(1),
            name: "v".into(),
            version: 3,
            meta_partitions: vec![mp(1, 1, 1000), mp(2, 1000, u64::MAX)],
            data_partitions: vec![],
        };
        assert_eq!(view.meta_partition_of(InodeId::ROOT).unwrap().partition, PartitionId(1));
        assert_eq!(view.meta_partition_of(InodeId(5000)).unwrap().partition, PartitionId(2));
        let back: VolumeView = crate::msg::decode(&crate::msg::encode(&view)).unwrap();
        assert_eq!(back, view);
    }
}
