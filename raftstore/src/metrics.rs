//! Raft metrics of an instance, refreshed from the groups' own metrics once a second.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use tokio_util::sync::CancellationToken;

use crate::instance::Metrics;
use crate::router::MultiRaft;

#[derive(Clone, Default)]
pub struct RaftMetrics {
    groups: Gauge,
    leaders: Gauge,
    leaderless: Gauge,
    applied: Gauge<u64, AtomicU64>,
    snapshot_bytes: Gauge<u64, AtomicU64>,
}

impl RaftMetrics {
    /// Registers the series and starts the refresher, which stops with `stop`.
    pub fn register(metrics: &Metrics, raft: &Arc<MultiRaft>, stop: CancellationToken) -> RaftMetrics {
        let m = RaftMetrics::default();
        {
            let mut reg = metrics.registry_mut();
            reg.register("ferrum_raft_groups", "Raft groups hosted by this instance", m.groups.clone());
            reg.register("ferrum_raft_leader_groups", "Raft groups this instance leads", m.leaders.clone());
            reg.register(
                "ferrum_raft_leaderless_groups",
                "Raft groups hosted here that know no leader",
                m.leaderless.clone(),
            );
            reg.register(
                "ferrum_raft_applied_entries",
                "Sum of the applied log index over the groups hosted here",
                m.applied.clone(),
            );
            reg.register(
                "ferrum_raft_snapshot_bytes_sent",
                "Snapshot bytes sent to other replicas (replica rebuilds, lagging followers; throttled)",
                m.snapshot_bytes.clone(),
            );
        }
        let (m2, raft) = (m.clone(), Arc::downgrade(raft));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let Some(raft) = raft.upgrade() else { return };
                m2.refresh(&raft);
            }
        });
        m
    }

    fn refresh(&self, raft: &MultiRaft) {
        let (mut groups, mut leaders, mut leaderless, mut applied) = (0i64, 0i64, 0i64, 0u64);
        for g in raft.groups() {
            let Ok(s) = raft.status(g) else { continue };
            groups += 1;
            match s.leader {
                Some(l) if l == raft.node_id() => leaders += 1,
                Some(_) => {}
                None => leaderless += 1,
            }
            applied += s.last_applied.unwrap_or(0);
        }
        self.groups.set(groups);
        self.leaders.set(leaders);
        self.leaderless.set(leaderless);
        self.applied.set(applied);
        self.snapshot_bytes.set(raft.snapshot_bytes_sent());
    }
}
