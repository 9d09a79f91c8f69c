//! High availability (opcodes `MASTER_*` 0x0220-0x023F): the master moves partition replicas — to
//! repair a partition that lost one on a dead node, or to empty a node being decommissioned — and
//! reports what is in flight.

use serde::{Deserialize, Serialize};

use crate::ids::{NodeId, PartitionId, VolumeId};
use crate::msg::topology::{PartitionKind, Replica};

/// Master → a replica of the partition (followers answer `NotLeader`): make the group's voters its
/// current voters minus `remove` plus `add`. `add` must already host the group (created with the current
/// members). One step per call, so the master can show progress and a leader change loses nothing:
/// the first call adds `add` as a learner; later calls report its catch-up; once it has caught up, one
/// joint-consensus change swaps the voters (the group never has fewer copies than before). Idempotent:
/// once the voters are the target, every call answers `done`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeReplicas {
    pub partition: PartitionId,
    pub remove: NodeId,
    pub add: Replica,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeProgress {
    /// The voters are the target.
    pub done: bool,
    /// Log index the new replica has (learner catch-up), and the leader's last one.
    pub matched: u64,
    pub last: u64,
}

rpc!(ChangeReplicas => ChangeProgress, MASTER_CHANGE_REPLICAS);

/// Master → the partition's leader (others answer `NotLeader`): hand the leadership to its voter `to`,
/// to spread leaders evenly. The partition refuses new requests for about one election timeout
/// (answering `NotLeader` naming `to`). Answers the leader afterwards (normally `to`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferLeader {
    pub partition: PartitionId,
    pub to: NodeId,
}

rpc!(TransferLeader => NodeId, MASTER_TRANSFER_LEADER);

/// Admin → master: move every replica off `node` (add the new one first, then remove this one), then
/// keep it empty. Idempotent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecommissionNode {
    pub node: NodeId,
}

rpc!(DecommissionNode => (), MASTER_DECOMMISSION_NODE);

/// Admin → master: forget a node. Refused while it still holds replicas.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveNode {
    pub node: NodeId,
}

rpc!(RemoveNode => (), MASTER_REMOVE_NODE);

/// Why a replica is being moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RepairReason {
    /// Its node has been dead longer than the grace period.
    DeadNode,
    /// Its node is being decommissioned.
    Decommission,
}

/// Admin → master: the replica moves in flight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRepairs {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairInfo {
    pub partition: PartitionId,
    pub volume: VolumeId,
    pub kind: PartitionKind,
    pub remove: NodeId,
    pub add: NodeId,
    pub reason: RepairReason,
    pub started_unix_ms: u64,
    /// Last progress seen by this leader (0/0 before the first report).
    pub matched: u64,
    pub last: u64,
}

rpc!(ListRepairs => Vec<RepairInfo>, MASTER_LIST_REPAIRS);

/// How the cluster is doing, at a glance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Health {
    /// Every partition has all its replicas alive and a leader.
    Ok,
    /// Everything is served, but with less redundancy than configured (or repairs in flight).
    Degraded,
    /// Something cannot be served: a partition without a live majority or without a leader.
    Unavailable,
}
