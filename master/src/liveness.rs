//! Node liveness and the partition reports of their heartbeats.
//!
//! This is the leader's soft state, not replicated: heartbeats go to the leader only, and a new
//! leader starts with a clean slate in which every node gets a full grace period (its `baseline`),
//! so a failover never declares the whole cluster dead.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use ferrum_proto::msg::master::{Heartbeat, NodeState, PartitionReport};
use ferrum_proto::{NodeId, PartitionId};
use tokio::time::Instant;

#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Silent this long: suspect (no new partitions).
    pub suspect_after: Duration,
    /// Silent this long: dead (its replicas count as missing).
    pub dead_after: Duration,
}

#[derive(Clone, Debug)]
pub struct Seen {
    pub at: Instant,
    pub disk_total: u64,
    pub disk_free: u64,
    pub partitions: Vec<PartitionReport>,
}

/// What the replicas of one partition reported, combined.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionStat {
    pub leader: Option<NodeId>,
    pub used_bytes: u64,
    pub items: u64,
    /// Some replica refuses writes (disk full); of a meta partition: its inode range was ended (split).
    pub read_only: bool,
}

pub struct Liveness {
    timeouts: Timeouts,
    inner: Mutex<Inner>,
}

struct Inner {
    baseline: Instant,
    seen: HashMap<NodeId, Seen>,
}

impl Liveness {
    pub fn new(timeouts: Timeouts) -> Liveness {
        Liveness { timeouts, inner: Mutex::new(Inner { baseline: Instant::now(), seen: HashMap::new() }) }
    }

    /// This master just became the leader: what it knew from an earlier term is stale.
    pub fn reset(&self) {
        let mut inner = self.inner.lock().expect("liveness lock");
        inner.baseline = Instant::now();
        inner.seen.clear();
    }

    /// The node just registered: it is alive, whatever it reported before.
    pub fn touch(&self, node: NodeId) {
        let mut inner = self.inner.lock().expect("liveness lock");
        let now = Instant::now();
        inner.seen.entry(node).and_modify(|s| s.at = now).or_insert(Seen {
            at: now,
            disk_total: 0,
            disk_free: 0,
            partitions: Vec::new(),
        });
    }

    pub fn heartbeat(&self, hb: Heartbeat) {
        let seen =
            Seen { at: Instant::now(), disk_total: hb.disk_total, disk_free: hb.disk_free, partitions: hb.partitions };
        self.inner.lock().expect("liveness lock").seen.insert(hb.node, seen);
    }

    /// The node's state and how long ago it was last heard from (`None`: not since the baseline).
    pub fn state(&self, node: NodeId) -> (NodeState, Option<Duration>) {
        let inner = self.inner.lock().expect("liveness lock");
        let last = inner.seen.get(&node).map(|s| s.at);
        let silent = last.unwrap_or(inner.baseline).elapsed();
        let state = if silent >= self.timeouts.dead_after {
            NodeState::Dead
        } else if silent >= self.timeouts.suspect_after {
            NodeState::Suspect
        } else {
            NodeState::Alive
        };
        (state, last.map(|at| at.elapsed()))
    }

    /// How long the node has been silent (since the baseline if not heard from since).
    pub fn silent(&self, node: NodeId) -> Duration {
        let inner = self.inner.lock().expect("liveness lock");
        inner.seen.get(&node).map(|s| s.at).unwrap_or(inner.baseline).elapsed()
    }

    pub fn last_seen(&self, node: NodeId) -> Option<Seen> {
        self.inner.lock().expect("liveness lock").seen.get(&node).cloned()
    }

    /// Every partition's combined reports (of nodes not dead): the leader any replica claims, the
    /// largest usage.
    pub fn partition_stats(&self) -> HashMap<PartitionId, PartitionStat> {
        let inner = self.inner.lock().expect("liveness lock");
        let mut out: HashMap<PartitionId, PartitionStat> = HashMap::new();
        // A dead node's last report is stale: it would name it leader of groups that moved on.
        for (node, seen) in inner.seen.iter().filter(|(_, s)| s.at.elapsed() < self.timeouts.dead_after) {
            for r in &seen.partitions {
                let s = out.entry(r.partition).or_default();
                if r.is_leader {
                    s.leader = Some(*node);
                }
                s.used_bytes = s.used_bytes.max(r.used_bytes);
                s.items = s.items.max(r.items);
                s.read_only |= r.read_only;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrum_proto::msg::topology::PartitionKind;

    fn hb(node: u64, reports: Vec<PartitionReport>) -> Heartbeat {
        Heartbeat { node: NodeId(node), disk_total: 10, disk_free: 5, partitions: reports }
    }

    fn report(p: u64, leader: bool, used: u64) -> PartitionReport {
        PartitionReport {
            partition: PartitionId(p),
            kind: PartitionKind::Data,
            is_leader: leader,
            used_bytes: used,
            items: used / 10,
            read_only: false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn alive_suspect_dead_and_a_new_leaders_grace_period() {
        let l = Liveness::new(Timeouts { suspect_after: Duration::from_secs(5), dead_after: Duration::from_secs(30) });
        assert_eq!(l.state(NodeId(1)).0, NodeState::Alive, "grace period from the baseline");
        l.heartbeat(hb(1, vec![]));
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(l.state(NodeId(1)).0, NodeState::Suspect);
        l.heartbeat(hb(1, vec![]));
        assert_eq!(l.state(NodeId(1)).0, NodeState::Alive);
        tokio::time::advance(Duration::from_secs(31)).await;
        let (state, ago) = l.state(NodeId(1));
        assert_eq!(state, NodeState::Dead);
        assert_eq!(ago, Some(Duration::from_secs(31)));
        l.reset();
        assert_eq!(l.state(NodeId(1)), (NodeState::Alive, None));
    }

    #[test]
    fn partition_reports_combine() {
        let l = Liveness::new(Timeouts { suspect_after: Duration::from_secs(5), dead_after: Duration::from_secs(30) });
        l.heartbeat(hb(1, vec![report(7, false, 100), report(8, true, 5)]));
        l.heartbeat(hb(2, vec![report(7, true, 90)]));
        let stats = l.partition_stats();
        assert_eq!(
            stats[&PartitionId(7)],
            PartitionStat { leader: Some(NodeId(2)), used_bytes: 100, items: 10, read_only: false }
        );
        assert_eq!(stats[&PartitionId(8)].leader, Some(NodeId(1)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_nodes_last_report_is_ignored() {
        let l = Liveness::new(Timeouts { suspect_after: Duration::from_secs(5), dead_after: Duration::from_secs(30) });
        l.heartbeat(hb(1, vec![report(7, true, 100)]));
        tokio::time::advance(Duration::from_secs(31)).await;
        l.heartbeat(hb(2, vec![report(7, false, 90)]));
        let stats = l.partition_stats();
        assert_eq!(stats[&PartitionId(7)].leader, None, "node 1 is dead: its claim is stale");
        assert_eq!(stats[&PartitionId(7)].used_bytes, 90);
    }
}
