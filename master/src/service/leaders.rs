//! Spreading partition leaders: every `leader_balance_interval_ms` the master leader plans a few
//! leadership handovers (see [`super::leader_plan`]) and asks each partition's leader to make its
//! handover (`TransferLeader`). Leaders come from the nodes' heartbeats; the interval is kept well
//! above the heartbeat period so a pass never plans on the reports from before the previous one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ferrum_proto::msg::master::NodeState;
use ferrum_proto::msg::repair::TransferLeader;
use ferrum_proto::NodeId;
use futures_util::future::join_all;
use tokio_util::sync::CancellationToken;

use super::leader_plan::{plan, LeaderMove, Led};
use super::Master;

/// Handovers per pass. Each stalls its partition for about one election timeout, so a few at a time
/// (on distinct instances) re-spread a healed cluster quickly without a burst of stalls.
const MOVES_PER_PASS: usize = 4;

/// Handovers that finished on the chosen replica since this master started.
#[derive(Default)]
pub struct LeaderTransfers(AtomicU64);

impl LeaderTransfers {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Master {
    /// Runs until `stop`; does nothing when `leader_balance_interval_ms` is 0.
    pub async fn run_leader_balance(self: Arc<Self>, stop: CancellationToken) {
        let Some(every) = self.cfg.leader_balance_interval() else { return };
        self.while_leading(every, &stop, || async {
            self.balance_leaders_once().await;
        })
        .await
    }

    /// One pass: plans and makes the handovers; returns how many landed on the chosen replica.
    pub async fn balance_leaders_once(&self) -> usize {
        let (moves, addrs) = {
            let st = self.state.read().expect("state lock");
            let stats = self.liveness.partition_stats();
            let hosts: HashMap<NodeId, String> = st
                .nodes
                .values()
                .filter(|n| !st.decommissioning.contains_key(&n.id))
                .filter(|n| self.liveness.state(n.id).0 == NodeState::Alive)
                .map(|n| (n.id, n.host.clone()))
                .collect();
            // A partition whose replicas are being moved changes membership meanwhile: left alone.
            let parts: Vec<Led> = st
                .partitions
                .values()
                .filter(|p| p.ready && !st.repairs.contains_key(&p.id))
                .filter_map(|p| {
                    let leader = stats.get(&p.id)?.leader?;
                    Some(Led { partition: p.id, replicas: p.replicas.clone(), leader })
                })
                .collect();
            let moves = plan(&parts, &hosts, MOVES_PER_PASS);
            let addrs: HashMap<NodeId, String> = st.nodes.values().map(|n| (n.id, n.advertise.clone())).collect();
            (moves, addrs)
        };
        let calls = moves.iter().filter_map(|m| Some((m, addrs.get(&m.from)?.clone()))).map(|(m, addr)| async move {
            (m, self.call_node(&addr, &TransferLeader { partition: m.partition, to: m.to }).await)
        });
        let mut landed = 0;
        for (m, r) in join_all(calls).await {
            let LeaderMove { partition, from, to } = *m;
            match r {
                Ok(now) if now == to => {
                    landed += 1;
                    self.leader_transfers.0.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%partition, %from, %to, "partition leadership moved to spread leaders");
                }
                Ok(now) => tracing::info!(%partition, %from, %to, %now, "leadership handover went elsewhere"),
                Err(e) => tracing::debug!(%partition, %from, %to, error = %e, "leadership handover failed"),
            }
        }
        landed
    }

    /// Partitions each node reports leading (for `node list` and metrics).
    pub fn leaders_per_node(&self) -> HashMap<NodeId, u64> {
        let mut out = HashMap::new();
        for s in self.liveness.partition_stats().values() {
            if let Some(l) = s.leader {
                *out.entry(l).or_default() += 1;
            }
        }
        out
    }
}
