//! Master protocol (opcodes `MASTER_*`): nodes register and report, the master places partitions on
//! nodes, clients fetch volume views.
//!
//! First cut: the master issue may extend these messages (append fields only); the opcodes are stable.

use serde::{Deserialize, Serialize};

use crate::error::LeaderHint;
use crate::ids::{InodeId, NodeId, OpId, PartitionId, VolumeId};
use crate::msg::topology::{InodeRange, PartitionKind, Replica, VolumeView};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NodeRole {
    Meta,
    Data,
}

/// Node → master, at start. Registering again with the same `instance_uuid` returns the same id, so a
/// restarted node keeps its identity and its partitions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterNode {
    pub role: NodeRole,
    /// `host:port` where this node serves RPC.
    pub advertise: String,
    /// Host name, so that replicas of one partition can be spread over hosts.
    pub host: String,
    /// Persisted in the node's data directory on first start.
    pub instance_uuid: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterNodeResp {
    pub node_id: NodeId,
}

rpc!(RegisterNode => RegisterNodeResp, MASTER_REGISTER_NODE);

/// Node → master, periodically. An unknown node gets `NotFound` and registers again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub node: NodeId,
    pub disk_total: u64,
    pub disk_free: u64,
    pub partitions: Vec<PartitionReport>,
}

/// A node's report on one partition replica it hosts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionReport {
    pub partition: PartitionId,
    pub kind: PartitionKind,
    pub is_leader: bool,
    pub used_bytes: u64,
    /// Inodes (meta) or extents (data).
    pub items: u64,
    /// The replica refuses writes (its disk is full): the master stops placing new data there. A meta
    /// partition says so once its inode range was ended by a split (`SplitMetaPartition`).
    pub read_only: bool,
}

rpc!(Heartbeat => (), MASTER_HEARTBEAT);

/// Master → node: what the node can offer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetResources {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    pub disk_total: u64,
    pub disk_free: u64,
    pub mem_total: u64,
    pub cores: u32,
    /// The node's build (`AGENT`).
    pub version: String,
    pub features: Vec<String>,
}

rpc!(GetResources => Resources, MASTER_GET_RESOURCES);

/// Master → node: host a replica of a new partition. Idempotent: creating an existing partition with
/// the same description succeeds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatePartition {
    pub partition: PartitionId,
    pub kind: PartitionKind,
    pub volume: VolumeId,
    /// Every replica of the partition (its Raft group's initial members). The first one initialises the
    /// group and campaigns at once; the others wait for it (see `MultiRaft::create_group_led`).
    pub members: Vec<Replica>,
    /// The inodes a meta partition allocates; `None` for data partitions.
    pub inodes: Option<InodeRange>,
}

rpc!(CreatePartition => (), MASTER_CREATE_PARTITION);

/// Master → node: drop this node's replica of a partition and its data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletePartition {
    pub partition: PartitionId,
}

rpc!(DeletePartition => (), MASTER_DELETE_PARTITION);

/// Client → master: where a volume's partitions are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetVolumeView {
    pub name: String,
    /// The view version the client already has (0 for none).
    pub known_version: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VolumeViewReply {
    /// The client's view is current.
    Unchanged {
        version: u64,
    },
    Changed(VolumeView),
}

rpc!(GetVolumeView => VolumeViewReply, MASTER_GET_VOLUME_VIEW);

// --- Admin and master-to-master requests. The master leader serves them; a follower answers
// --- `NotLeader`. The admin HTTP API of every master translates its routes into these, so the same
// --- types are its JSON bodies.

/// Liveness of a registered node, from the heartbeats the master leader receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NodeState {
    /// Heartbeats arrive.
    Alive,
    /// No heartbeat for a while; still counted on, not chosen for new partitions.
    Suspect,
    /// No heartbeat for long: its replicas count as missing.
    Dead,
}

/// Admin → master: the cluster at a glance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetClusterStatus {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub leader: Option<LeaderHint>,
    pub term: u64,
    pub masters: Vec<MasterInfo>,
    pub nodes_alive: u64,
    pub nodes_suspect: u64,
    pub nodes_dead: u64,
    pub volumes: u64,
    pub meta_partitions: u64,
    pub data_partitions: u64,
    /// Partitions with fewer live replicas than their volume's replica count.
    pub under_replicated_partitions: u64,
    /// Feature flags every live instance supports (masters included): only these may be used.
    pub features: Vec<String>,
    pub health: crate::msg::repair::Health,
    /// Why the health is not `Ok`, one line each.
    pub reasons: Vec<String>,
    /// Partitions no replica reports leading.
    pub partitions_without_leader: u64,
    /// Replica moves in flight (repairs and decommissions).
    pub repairs: Vec<crate::msg::repair::RepairInfo>,
    /// Bytes copied to new replicas by finished moves since this master leads.
    pub bytes_rebuilt: u64,
}

/// One member of the master group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterInfo {
    pub id: NodeId,
    pub addr: String,
    /// False while a joining master is still a learner.
    pub voter: bool,
    pub leader: bool,
    /// `None` when the master could not be asked.
    pub resources: Option<Resources>,
}

rpc!(GetClusterStatus => ClusterStatus, MASTER_CLUSTER_STATUS);

/// Admin → master: every registered metanode and datanode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListNodes {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: NodeId,
    pub role: NodeRole,
    pub advertise: String,
    pub host: String,
    pub state: NodeState,
    /// Milliseconds since the leader last heard from it; `None`: not since this leader took over.
    pub last_heartbeat_ms: Option<u64>,
    pub meta_partitions: u64,
    pub data_partitions: u64,
    /// From the last heartbeat (0 before the first).
    pub disk_total: u64,
    pub disk_free: u64,
    /// Being emptied (`ferrum node decommission`): receives no new replicas.
    #[serde(default)]
    pub decommissioning: bool,
    /// Partition replicas the node itself reported hosting in its last heartbeat (its Raft groups),
    /// whatever the master assigns it.
    #[serde(default)]
    pub hosted_partitions: u64,
    /// Partitions whose leader it reported being in its last heartbeat.
    #[serde(default)]
    pub leaders: u64,
}

rpc!(ListNodes => Vec<NodeInfo>, MASTER_LIST_NODES);

/// Admin → master: create a volume with its meta and data partitions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateVolume {
    /// A retry with the same op id gets the volume the first attempt created, not `VolumeExists`.
    pub op: OpId,
    pub name: String,
    /// 1 to 5.
    pub replicas: u8,
    /// Bytes; 0 for unlimited.
    pub capacity: u64,
    pub owner: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeCreated {
    pub volume: VolumeInfo,
    /// E.g. replicas that had to share a host: worth telling the operator, not worth failing.
    pub warnings: Vec<String>,
}

rpc!(CreateVolume => VolumeCreated, MASTER_CREATE_VOLUME);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VolumeState {
    /// Recorded; its partitions are being created on their nodes.
    Creating,
    Ready,
    /// Deleted; its partitions are being removed from their nodes. The name is already free.
    Deleting,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeInfo {
    pub id: VolumeId,
    pub name: String,
    pub replicas: u8,
    pub capacity: u64,
    pub owner: String,
    pub state: VolumeState,
    /// The version of the volume's view (see [`GetVolumeView`]).
    pub view_version: u64,
    pub meta_partitions: u64,
    pub data_partitions: u64,
    pub created_unix_ms: u64,
}

/// Admin → master: delete a volume; its partitions are removed from their nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteVolume {
    pub op: OpId,
    pub name: String,
}

rpc!(DeleteVolume => (), MASTER_DELETE_VOLUME);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListVolumes {}

rpc!(ListVolumes => Vec<VolumeInfo>, MASTER_LIST_VOLUMES);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetVolume {
    pub name: String,
}

rpc!(GetVolume => VolumeInfo, MASTER_GET_VOLUME);

/// Admin → master: partitions of one volume, or of all volumes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListPartitions {
    pub volume: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionInfo {
    pub partition: PartitionId,
    pub volume: VolumeId,
    pub volume_name: String,
    pub kind: PartitionKind,
    pub replicas: Vec<Replica>,
    /// Last reported leader.
    pub leader: Option<NodeId>,
    /// Meta partitions only.
    pub inodes: Option<InodeRange>,
    /// Data partitions: false once full.
    pub writable: bool,
    /// False while its Raft group is still being created on its nodes.
    pub ready: bool,
    /// Replicas on nodes that are not dead.
    pub live_replicas: u8,
    /// Largest over the replicas' reports.
    pub used_bytes: u64,
    /// Inodes (meta) or extents (data), largest over the replicas' reports.
    pub items: u64,
}

rpc!(ListPartitions => Vec<PartitionInfo>, MASTER_LIST_PARTITIONS);

/// New master → master group: allocate a Raft id for a master joining at `addr` (same addr, same id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinMaster {
    pub addr: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinMasterResp {
    pub id: NodeId,
}

rpc!(JoinMaster => JoinMasterResp, MASTER_JOIN);

/// New master → master group, once it serves: replicate to it, then make it a voter. Idempotent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromoteMaster {
    pub id: NodeId,
    pub addr: String,
}

rpc!(PromoteMaster => (), MASTER_PROMOTE);

/// Master → metanode (the partition's leader): stop allocating inodes at some `end` no lower than
/// `max allocated + 1 + step`, and say which; the master then creates the next meta partition from
/// `end` on (a CubeFS-style split of the last, open-ended partition). Idempotent: a partition whose
/// range is already closed answers its current end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitMetaPartition {
    pub partition: PartitionId,
    pub step: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitMetaPartitionResp {
    pub end: InodeId,
}

rpc!(SplitMetaPartition => SplitMetaPartitionResp, MASTER_SPLIT_META_PARTITION);

/// Admin → master group: take master `id` out of the group (a voter or a learner). Refused when it is
/// the group's only voter. Idempotent: removing a master that is not a member answers `removed: false`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveMaster {
    pub id: NodeId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveMasterResp {
    /// False: it was not a member (already removed).
    pub removed: bool,
}

rpc!(RemoveMaster => RemoveMasterResp, MASTER_REMOVE_MASTER);

/// Metanode/datanode → master: every registered node's current address. A node that restarted on a
/// new `host:port` re-registers with it; its Raft peers learn it from here (their memberships still
/// carry the old one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddrs {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddr {
    pub id: NodeId,
    pub addr: String,
}

rpc!(NodeAddrs => Vec<NodeAddr>, MASTER_NODE_ADDRS);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{decode, encode, Rpc};
    use crate::Opcode;

    #[test]
    fn messages_round_trip() {
        let cp = CreatePartition {
            partition: PartitionId(9),
            kind: PartitionKind::Meta,
            volume: VolumeId(2),
            members: vec![Replica { node: NodeId(1), addr: "h1:7000".into() }],
            inodes: Some(InodeRange { start: crate::InodeId(1), end: crate::InodeId(u64::MAX) }),
        };
        assert_eq!(decode::<CreatePartition>(&encode(&cp)).unwrap(), cp);
        let reply = VolumeViewReply::Unchanged { version: 4 };
        assert_eq!(decode::<VolumeViewReply>(&encode(&reply)).unwrap(), reply);
    }

    #[test]
    fn opcodes() {
        assert_eq!(RegisterNode::OPCODE, Opcode::MASTER_REGISTER_NODE);
        assert_eq!(GetVolumeView::OPCODE, Opcode::MASTER_GET_VOLUME_VIEW);
    }
}
