//! The cluster at a glance.

use ferrum_proto::msg::master::{ClusterStatus, NodeState, VolumeState};
use ferrum_proto::msg::topology::PartitionKind;
use ferrum_proto::{ErrorCode, GroupId};
use futures_util::future::join_all;

use super::Master;
use crate::resources::{intersect_features, Need};

impl Master {
    pub async fn cluster_status(&self) -> Result<ClusterStatus, ErrorCode> {
        self.lead().await?;
        let term = self.raft.status(GroupId::MASTER)?.term;
        let masters = self.masters_info().await;
        let (alive_nodes, mut status) = {
            let st = self.state.read().expect("state lock");
            let mut status = ClusterStatus {
                leader: self.leader_hint(),
                term,
                masters: Vec::new(),
                nodes_alive: 0,
                nodes_suspect: 0,
                nodes_dead: 0,
                volumes: st.volumes.values().filter(|v| v.state != VolumeState::Deleting).count() as u64,
                meta_partitions: 0,
                data_partitions: 0,
                under_replicated_partitions: 0,
                features: Vec::new(),
            };
            let mut alive = Vec::new();
            for n in st.nodes.values() {
                match self.liveness.state(n.id).0 {
                    NodeState::Alive => {
                        status.nodes_alive += 1;
                        alive.push(n.advertise.clone());
                    }
                    NodeState::Suspect => status.nodes_suspect += 1,
                    NodeState::Dead => status.nodes_dead += 1,
                }
            }
            for p in st.partitions.values() {
                match p.kind {
                    PartitionKind::Meta => status.meta_partitions += 1,
                    PartitionKind::Data => status.data_partitions += 1,
                }
            }
            status.under_replicated_partitions = self.under_replicated(&st);
            (alive, status)
        };
        // Conservative: an instance whose features are unknown supports none, so nothing that needs
        // every instance is enabled while one of them cannot be asked.
        let node_features = join_all(alive_nodes.iter().map(|a| self.resources.get(a, Need::Facts))).await;
        let mut sets: Vec<Vec<String>> = Vec::new();
        for r in masters
            .iter()
            .map(|m| m.resources.clone().ok_or(()))
            .chain(node_features.into_iter().map(|r| r.map_err(drop)))
        {
            sets.push(r.map(|r| r.features).unwrap_or_default());
        }
        status.features = intersect_features(sets.iter().map(|s| s.as_slice()));
        status.masters = masters;
        Ok(status)
    }

    /// Partitions (of volumes not being deleted) with fewer live replicas than their volume wants.
    pub(crate) fn under_replicated(&self, st: &crate::state::State) -> u64 {
        st.partitions
            .values()
            .filter(|p| {
                st.volumes
                    .get(&p.volume)
                    .is_some_and(|v| v.state != VolumeState::Deleting && self.live_replicas(p) < v.replicas)
            })
            .count() as u64
    }
}
