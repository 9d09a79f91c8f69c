//! The commands the master group replicates, and their replies.
//!
//! Commands are stored in the Raft log, so this is a persisted format: variants and fields are only
//! ever appended. Everything an apply needs that is not in the state (the time, the placement) is
//! decided by the leader and carried in the command, so every replica applies it alike.

use ferrum_proto::msg::master::NodeRole;
use ferrum_proto::msg::repair::RepairReason;
use ferrum_proto::msg::topology::{InodeRange, PartitionKind};
use ferrum_proto::{InodeId, NodeId, OpId, PartitionId, VolumeId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MasterCmd {
    /// Same uuid, same id; a changed address or host is recorded.
    RegisterNode {
        role: NodeRole,
        advertise: String,
        host: String,
        instance_uuid: String,
        now_unix_ms: u64,
    },
    /// Records a volume (state `Creating`) and its partitions (not ready).
    CreateVolume {
        op: OpId,
        name: String,
        replicas: u8,
        capacity: u64,
        owner: String,
        now_unix_ms: u64,
        partitions: Vec<NewPartition>,
    },
    /// Every partition of the volume exists on its nodes.
    VolumeReady {
        volume: VolumeId,
    },
    /// Marks the volume `Deleting` and frees its name.
    DeleteVolume {
        op: OpId,
        name: String,
    },
    /// Its partitions are gone from their nodes: forget the volume.
    RemoveVolume {
        volume: VolumeId,
    },
    /// Growth: more partitions for a ready volume (not ready until created on their nodes).
    AddPartitions {
        volume: VolumeId,
        partitions: Vec<NewPartition>,
    },
    PartitionsReady {
        partitions: Vec<PartitionId>,
    },
    SetWritable {
        partition: PartitionId,
        writable: bool,
    },
    /// The last meta partition stops at `end` (the metanode agreed); a new one takes `[end, MAX)`.
    SplitMeta {
        partition: PartitionId,
        end: InodeId,
        replicas: Vec<NodeId>,
    },
    /// A Raft id for a joining master at `addr`, at least `min_id` (above every current member).
    AllocMasterId {
        addr: String,
        min_id: NodeId,
    },
    /// Records a replica move (`add` replaces `remove` in `partition`), placed by the leader.
    StartRepair {
        partition: PartitionId,
        remove: NodeId,
        add: NodeId,
        reason: RepairReason,
        now_unix_ms: u64,
    },
    /// The group's voters are swapped: the partition's replicas become the same, the task is done.
    FinishRepair {
        partition: PartitionId,
        add: NodeId,
    },
    /// The move cannot finish (its target died before joining): forget it; a new one is planned.
    AbortRepair {
        partition: PartitionId,
        add: NodeId,
    },
    /// Start moving every replica off `node`.
    Decommission {
        node: NodeId,
        now_unix_ms: u64,
    },
    /// Forget a node that holds no replica.
    RemoveNode {
        node: NodeId,
    },
    /// Master `id` is being removed from the group: forget its record, so that a master joining
    /// later at the same address gets a new id.
    ForgetMaster {
        id: NodeId,
    },
}

/// A partition to record, as placed by the leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPartition {
    pub kind: PartitionKind,
    pub replicas: Vec<NodeId>,
    pub inodes: Option<InodeRange>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmdReply {
    Done,
    Node(NodeId),
    Volume { volume: VolumeId, partitions: Vec<PartitionId> },
    Partitions(Vec<PartitionId>),
    Master(NodeId),
}
