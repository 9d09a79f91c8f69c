//! The master's series on the instance's `/metrics`: nodes by state, volumes, partitions,
//! under-replicated and leaderless partitions, replica moves, leadership, resource fetches. Refreshed once a second.

use std::sync::Arc;
use std::time::Duration;

use ferrum_proto::msg::master::{NodeState, VolumeState};
use ferrum_proto::msg::repair::RepairReason;
use ferrum_proto::msg::topology::PartitionKind;
use ferrum_raftstore::instance::Metrics;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio_util::sync::CancellationToken;

use crate::service::Master;

type Labels = Vec<(String, String)>;

#[derive(Clone, Default)]
pub struct MasterMetrics {
    nodes: Family<Labels, Gauge>,
    volumes: Gauge,
    partitions: Family<Labels, Gauge>,
    under_replicated: Gauge,
    leaderless: Gauge,
    repairs: Family<Labels, Gauge>,
    bytes_rebuilt: Gauge<u64, std::sync::atomic::AtomicU64>,
    moves_finished: Gauge<u64, std::sync::atomic::AtomicU64>,
    decommissioning: Gauge,
    leader: Gauge,
    partition_leaders: Family<Labels, Gauge>,
    leader_transfers: Gauge<u64, std::sync::atomic::AtomicU64>,
}

fn label(k: &str, v: &str) -> Labels {
    vec![(k.to_string(), v.to_string())]
}

impl MasterMetrics {
    /// Registers the series and refreshes them until `stop`.
    pub fn register(metrics: &Metrics, master: Arc<Master>, stop: CancellationToken) -> MasterMetrics {
        let m = MasterMetrics::default();
        {
            let mut reg = metrics.registry_mut();
            let reg = reg.sub_registry_with_prefix("ferrum_master");
            reg.register(
                "nodes",
                "Registered nodes by liveness (as the leader sees them; 0 on followers)",
                m.nodes.clone(),
            );
            reg.register("volumes", "Volumes, not counting those being deleted", m.volumes.clone());
            reg.register("partitions", "Partitions by kind", m.partitions.clone());
            reg.register(
                "under_replicated_partitions",
                "Partitions with fewer live replicas than their volume's replica count (leader only)",
                m.under_replicated.clone(),
            );
            reg.register(
                "leaderless_partitions",
                "Ready partitions no replica reports leading (leader only)",
                m.leaderless.clone(),
            );
            reg.register("repairs_in_flight", "Replica moves in flight, by reason", m.repairs.clone());
            reg.register(
                "bytes_rebuilt",
                "Bytes copied to new replicas by moves finished since this master leads",
                m.bytes_rebuilt.clone(),
            );
            reg.register(
                "replica_moves_finished",
                "Replica moves finished since this master leads",
                m.moves_finished.clone(),
            );
            reg.register("decommissioning_nodes", "Nodes being decommissioned", m.decommissioning.clone());
            reg.register("leader", "1 on the master group's leader", m.leader.clone());
            reg.register(
                "partition_leaders",
                "Partitions each node reports leading (leader only): how evenly leaders are spread",
                m.partition_leaders.clone(),
            );
            reg.register(
                "leader_transfers",
                "Leadership handovers made to spread leaders since this master started",
                m.leader_transfers.clone(),
            );
            reg.register(
                "resource_fetches",
                "GetResources calls made to other instances (cache misses)",
                master.resources.fetches(),
            );
        }
        let m2 = m.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => m2.refresh(&master),
                }
            }
        });
        m
    }

    fn refresh(&self, master: &Master) {
        let leader = master.is_leader();
        let st = master.state.read().expect("state lock");
        let (mut alive, mut suspect, mut dead) = (0, 0, 0);
        if leader {
            for n in st.nodes.values() {
                match master.liveness.state(n.id).0 {
                    NodeState::Alive => alive += 1,
                    NodeState::Suspect => suspect += 1,
                    NodeState::Dead => dead += 1,
                }
            }
        }
        self.nodes.get_or_create(&label("state", "alive")).set(alive);
        self.nodes.get_or_create(&label("state", "suspect")).set(suspect);
        self.nodes.get_or_create(&label("state", "dead")).set(dead);
        self.volumes.set(st.volumes.values().filter(|v| v.state != VolumeState::Deleting).count() as i64);
        let meta = st.partitions.values().filter(|p| p.kind == PartitionKind::Meta).count() as i64;
        self.partitions.get_or_create(&label("kind", "meta")).set(meta);
        self.partitions.get_or_create(&label("kind", "data")).set(st.partitions.len() as i64 - meta);
        self.under_replicated.set(if leader { master.under_replicated(&st) as i64 } else { 0 });
        let (mut dead, mut decom) = (0, 0);
        for t in st.repairs.values() {
            match t.reason {
                RepairReason::DeadNode => dead += 1,
                RepairReason::Decommission => decom += 1,
            }
        }
        self.repairs.get_or_create(&label("reason", "dead_node")).set(dead);
        self.repairs.get_or_create(&label("reason", "decommission")).set(decom);
        self.decommissioning.set(st.decommissioning.len() as i64);
        let leaderless = if leader {
            let stats = master.liveness.partition_stats();
            st.partitions
                .values()
                .filter(|p| {
                    p.ready && !stats.get(&p.id).and_then(|s| s.leader).is_some_and(|l| p.replicas.contains(&l))
                })
                .count() as i64
        } else {
            0
        };
        self.leaderless.set(leaderless);
        self.bytes_rebuilt.set(master.repairs.bytes_rebuilt());
        self.moves_finished.set(master.repairs.finished());
        self.leader.set(leader as i64);
        self.leader_transfers.set(master.leader_transfers.get());
        let leads = if leader { master.leaders_per_node() } else { Default::default() };
        for n in st.nodes.values() {
            let count = leads.get(&n.id).copied().unwrap_or(0) as i64;
            self.partition_leaders.get_or_create(&label("node", &n.id.to_string())).set(count);
        }
    }
}
