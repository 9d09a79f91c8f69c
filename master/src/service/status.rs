//! The cluster at a glance.

use ferrum_proto::msg::master::{ClusterStatus, NodeState, VolumeState};
use ferrum_proto::msg::repair::Health;
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
                health: Health::Ok,
                reasons: Vec::new(),
                partitions_without_leader: 0,
                repairs: Vec::new(),
                bytes_rebuilt: self.repairs.bytes_rebuilt(),
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
        status.repairs = self.repair_infos();
        let (health, reasons, leaderless) = self.health(&status);
        status.health = health;
        status.reasons = reasons;
        status.partitions_without_leader = leaderless;
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

    /// OK / degraded / unavailable, with a line per reason, and the partitions without a leader.
    fn health(&self, status: &ClusterStatus) -> (Health, Vec<String>, u64) {
        let mut unavailable = Vec::new();
        let mut degraded = Vec::new();
        let stats = self.liveness.partition_stats();
        let st = self.state.read().expect("state lock");
        let mut leaderless = 0;
        for p in st.partitions.values().filter(|p| p.ready) {
            if !st.volumes.get(&p.volume).is_some_and(|v| v.state == VolumeState::Ready) {
                continue;
            }
            let live = self.live_replicas(p) as usize;
            let has_leader = stats.get(&p.id).and_then(|s| s.leader).is_some_and(|l| p.replicas.contains(&l));
            if !has_leader {
                leaderless += 1;
            }
            if live * 2 <= p.replicas.len() {
                unavailable.push(format!(
                    "{:?} partition {} has {live} of {} replicas alive: no majority",
                    p.kind,
                    p.id,
                    p.replicas.len()
                ));
            } else if !has_leader {
                unavailable
                    .push(format!("{:?} partition {} has no leader (an election may be under way)", p.kind, p.id));
            }
        }
        if status.under_replicated_partitions > 0 {
            degraded.push(format!("{} partitions are missing replicas", status.under_replicated_partitions));
        }
        if status.nodes_dead + status.nodes_suspect > 0 {
            degraded.push(format!("{} nodes dead, {} suspect", status.nodes_dead, status.nodes_suspect));
        }
        if !status.repairs.is_empty() {
            degraded.push(format!("{} replica moves in flight", status.repairs.len()));
        }
        let masters_down = status.masters.iter().filter(|m| m.resources.is_none()).count();
        if masters_down > 0 {
            degraded.push(format!("{masters_down} of {} masters do not answer", status.masters.len()));
        }
        // A long list helps nobody at a glance: the first few, and how many more.
        const SHOWN: usize = 5;
        let more = unavailable.len().saturating_sub(SHOWN);
        unavailable.truncate(SHOWN);
        if more > 0 {
            unavailable.push(format!("... and {more} more"));
        }
        let health = if !unavailable.is_empty() {
            Health::Unavailable
        } else if !degraded.is_empty() {
            Health::Degraded
        } else {
            Health::Ok
        };
        (health, unavailable.into_iter().chain(degraded).collect(), leaderless)
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
