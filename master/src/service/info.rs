//! Turning records into what the admin API and clients see.

use std::collections::HashMap;

use ferrum_proto::msg::master::{NodeState, PartitionInfo, VolumeInfo};
use ferrum_proto::msg::topology::{PartitionKind, Replica};
use ferrum_proto::{NodeId, PartitionId};

use super::Master;
use crate::liveness::PartitionStat;
use crate::state::{PartitionRecord, State, VolumeRecord};

pub(crate) fn volume_info(st: &State, v: &VolumeRecord) -> VolumeInfo {
    let (mut meta, mut data) = (0, 0);
    for p in st.partitions_of(v.id) {
        match p.kind {
            PartitionKind::Meta => meta += 1,
            PartitionKind::Data => data += 1,
        }
    }
    VolumeInfo {
        id: v.id,
        name: v.name.clone(),
        replicas: v.replicas,
        capacity: v.capacity,
        owner: v.owner.clone(),
        state: v.state,
        view_version: v.view_version,
        meta_partitions: meta,
        data_partitions: data,
        created_unix_ms: v.created_unix_ms,
    }
}

/// The replicas of a partition with their current addresses.
pub(crate) fn replicas(st: &State, p: &PartitionRecord) -> Vec<Replica> {
    p.replicas
        .iter()
        .map(|n| Replica { node: *n, addr: st.nodes.get(n).map(|r| r.advertise.clone()).unwrap_or_default() })
        .collect()
}

impl Master {
    /// Replicas of `p` on nodes that are not dead.
    pub(crate) fn live_replicas(&self, p: &PartitionRecord) -> u8 {
        p.replicas.iter().filter(|n| self.liveness.state(**n).0 != NodeState::Dead).count() as u8
    }

    pub(crate) fn partition_info(
        &self,
        st: &State,
        p: &PartitionRecord,
        stats: &HashMap<PartitionId, PartitionStat>,
    ) -> PartitionInfo {
        let stat = stats.get(&p.id).cloned().unwrap_or_default();
        PartitionInfo {
            partition: p.id,
            volume: p.volume,
            volume_name: st.volumes.get(&p.volume).map(|v| v.name.clone()).unwrap_or_default(),
            kind: p.kind,
            replicas: replicas(st, p),
            leader: stat.leader.filter(|l: &NodeId| p.replicas.contains(l)),
            inodes: p.inodes,
            writable: p.writable,
            ready: p.ready,
            live_replicas: self.live_replicas(p),
            used_bytes: stat.used_bytes,
            items: stat.items,
        }
    }
}
