//! The records the master group persists, one per node, volume, partition and joined master.
//!
//! They are postcard-encoded under the versioned prefixes of [`super::keys`]: a field is never
//! removed or reordered; a changed format gets a new prefix.

use ferrum_proto::msg::master::{NodeRole, VolumeState};
use ferrum_proto::msg::repair::RepairReason;
use ferrum_proto::msg::topology::{InodeRange, PartitionKind};
use ferrum_proto::{NodeId, OpId, PartitionId, VolumeId};
use serde::{Deserialize, Serialize};

/// A registered metanode or datanode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: NodeId,
    pub role: NodeRole,
    pub advertise: String,
    pub host: String,
    /// The identity of the node's data dir: the same uuid always gets the same id.
    pub instance_uuid: String,
    pub registered_unix_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub id: VolumeId,
    pub name: String,
    pub replicas: u8,
    /// Bytes; 0 for unlimited.
    pub capacity: u64,
    pub owner: String,
    pub state: VolumeState,
    /// Bumped whenever what a client's view of the volume shows changes.
    pub view_version: u64,
    pub created_unix_ms: u64,
    /// So that a retried create is answered with this volume instead of `VolumeExists`.
    pub created_by: OpId,
    pub deleted_by: Option<OpId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    pub id: PartitionId,
    pub volume: VolumeId,
    pub kind: PartitionKind,
    /// The Raft group's members, in placement order.
    pub replicas: Vec<NodeId>,
    /// Meta partitions only; the last one of a volume is open-ended.
    pub inodes: Option<InodeRange>,
    /// Data partitions: false once full.
    pub writable: bool,
    /// True once its Raft group was created on every replica; only ready partitions are in views.
    pub ready: bool,
}

/// A replica move in flight: `add` replaces `remove` in the partition's group. At most one per
/// partition; the leader drives it (create on `add`, learner catch-up, voter swap) and a new leader
/// resumes it from the record, every step being idempotent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairTask {
    pub partition: PartitionId,
    pub remove: NodeId,
    pub add: NodeId,
    pub reason: RepairReason,
    pub started_unix_ms: u64,
}

/// A node being emptied: every replica on it is moved away, and it receives no new ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecommissionRecord {
    pub node: NodeId,
    pub started_unix_ms: u64,
}

/// A master that joined the group after the bootstrap (bootstrap members are in the Raft membership).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterRecord {
    pub id: NodeId,
    pub addr: String,
}

/// Id allocators; ids are never reused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub next_node: u64,
    pub next_volume: u64,
    /// Partition ids are Raft group ids, and group 0 is the master's: they start at 1.
    pub next_partition: u64,
    pub next_master: u64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters { next_node: 1, next_volume: 1, next_partition: 1, next_master: 1 }
    }
}
