//! Master protocol (opcodes `MASTER_*`): nodes register and report, the master places partitions on
//! nodes, clients fetch volume views.
//!
//! First cut: the master issue may extend these messages (append fields only); the opcodes are stable.

use serde::{Deserialize, Serialize};

use crate::ids::{NodeId, PartitionId, VolumeId};
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
    /// Every replica of the partition (its Raft group's initial members).
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
            members: vec![Replica {
                node: NodeId(1),
                addr: "h1:7000".into(),
            }],
            inodes: Some(InodeRange {
                start: crate::InodeId(1),
                end: crate::InodeId(u64::MAX),
            }),
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
