//! Handing a group's leadership to another replica, so leaders can be spread evenly over instances.
//!
//! openraft 0.9 has no leadership transfer, and a follower that heard from its leader within the
//! leader lease (`election_timeout_max`) refuses to vote, so simply asking the target to campaign fails.
//! The leader therefore goes quiet first: it answers new writes and reads with `NotLeader` naming the
//! target (clients retry there), waits until the target holds its whole log, stops its heartbeats until
//! the followers' leases have run out, and then asks the target to campaign. The target has every
//! entry, so the others vote for it, and the old leader steps down on seeing the higher term. Whatever
//! happens, the old leader resumes normal service when the handover ends (heartbeats on, requests
//! admitted), so a failed handover costs one lease of unavailability and nothing else.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrum_proto::msg::raft::RaftHeader;
use ferrum_proto::{msg, ErrorCode, GroupId, LeaderHint, NodeId, Opcode};

use crate::router::MultiRaft;
use crate::types::Raft;

/// Waited past the lease before asking the target to campaign: the last append (the commit index)
/// may still have been on its way when heartbeats stopped. Well below any `election_timeout_min`.
const LEASE_MARGIN: Duration = Duration::from_millis(200);

/// Groups whose leadership is being handed over, with the replica taking over.
#[derive(Default)]
pub(crate) struct Handovers {
    groups: Mutex<HashMap<GroupId, LeaderHint>>,
    /// Set while `groups` may be non-empty: every write asks, and almost always none is handing over.
    any: AtomicBool,
}

impl Handovers {
    /// The replica taking over `group`, if it is being handed over.
    pub(crate) fn target(&self, group: GroupId) -> Option<LeaderHint> {
        if !self.any.load(Ordering::SeqCst) {
            return None;
        }
        self.groups.lock().expect("handover lock").get(&group).cloned()
    }

    fn begin(&self, group: GroupId, to: LeaderHint) -> bool {
        let mut g = self.groups.lock().expect("handover lock");
        if g.contains_key(&group) {
            return false;
        }
        g.insert(group, to);
        self.any.store(true, Ordering::SeqCst);
        true
    }

    fn end(&self, group: GroupId) {
        let mut g = self.groups.lock().expect("handover lock");
        g.remove(&group);
        if g.is_empty() {
            self.any.store(false, Ordering::Release);
        }
    }
}

/// A write or read barrier in progress on a group, counted from before it checks for a handover until
/// it returns: a handover that began after the check waits for it, so nothing it sends renews the
/// followers' leases during the quiet period.
pub(crate) struct Admitted(Arc<AtomicUsize>);

impl Admitted {
    pub(crate) fn new(count: &Arc<AtomicUsize>) -> Admitted {
        count.fetch_add(1, Ordering::SeqCst);
        Admitted(count.clone())
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Ends a handover however `transfer_leader` returns: requests admitted again, heartbeats back on.
struct Resume<'a> {
    handovers: &'a Handovers,
    group: GroupId,
    raft: Raft,
}

impl Drop for Resume<'_> {
    fn drop(&mut self) {
        self.raft.runtime_config().heartbeat(true);
        self.handovers.end(self.group);
    }
}

impl MultiRaft {
    /// Hands the leadership of `group` to its voter `to`. Call on the leader. Returns the leader
    /// afterwards (normally `to`); during the handover (about one election timeout) the group refuses
    /// new requests with `NotLeader` naming `to`.
    pub async fn transfer_leader(&self, group: GroupId, to: NodeId) -> Result<NodeId, ErrorCode> {
        let h = self.handle(group).ok_or(ErrorCode::GroupNotFound(group))?;
        let me = self.node_id();
        let m = h.raft.metrics().borrow().clone();
        if m.current_leader != Some(me.get()) {
            return Err(ErrorCode::NotLeader { leader: self.leader_hint(group) });
        }
        if to == me {
            return Ok(me);
        }
        let membership = m.membership_config.membership();
        if membership.get_joint_config().len() > 1 {
            return Err(ErrorCode::Busy);
        }
        let Some(node) =
            membership.voter_ids().any(|v| v == to.get()).then(|| membership.get_node(&to.get())).flatten()
        else {
            return Err(ErrorCode::InvalidArgument(format!("node {to} is not a voter of group {group}")));
        };
        let target = LeaderHint { node: to, addr: self.routes().resolve(to, &node.addr) };
        if !self.handovers.begin(group, target.clone()) {
            return Err(ErrorCode::Busy);
        }
        let _resume = Resume { handovers: &self.handovers, group, raft: h.raft.clone() };
        let lease = self.config().election_timeout_max;
        let caught_up = |m: &openraft::RaftMetrics<u64, openraft::BasicNode>| {
            m.current_leader == Some(me.get())
                && m.last_log_index.is_some()
                && crate::membership::matched_index(m, to.get()) == m.last_log_index
                && m.last_applied.map(|l| l.index) == m.last_log_index
        };
        // With heartbeats on (so no follower times out meanwhile), wait until the target holds the whole
        // log; then go quiet for a lease, after which no follower honours this leader's lease any more,
        // while each still waits at least `election_timeout_min` more before campaigning on its own. If
        // the log grew meanwhile (an append went out and renewed the leases), start over once.
        // Requests admitted before the handover began finish first (bounded).
        let drained = tokio::time::Instant::now() + lease * 3;
        while h.inflight.load(Ordering::SeqCst) > 0 {
            if tokio::time::Instant::now() > drained {
                return Err(ErrorCode::Unavailable(format!("group {group}: requests in flight did not finish")));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut attempts = 0;
        loop {
            attempts += 1;
            let m = h
                .raft
                .wait(Some(lease * 3))
                .metrics(|m| caught_up(m), "handover target caught up")
                .await
                .map_err(|e| ErrorCode::Unavailable(format!("group {group}: node {to} did not catch up: {e}")))?;
            h.raft.runtime_config().heartbeat(false);
            tokio::time::sleep(lease + LEASE_MARGIN).await;
            let now = h.raft.metrics().borrow().clone();
            if caught_up(&now) && now.last_log_index == m.last_log_index {
                break;
            }
            if attempts == 2 {
                return Err(ErrorCode::Unavailable(format!(
                    "group {group}: handover to node {to} gave up: leader {:?}, last log {:?} (was {:?})",
                    now.current_leader, now.last_log_index, m.last_log_index,
                )));
            }
            // Heartbeats again at once, before the followers' election timers run out.
            h.raft.runtime_config().heartbeat(true);
            let _ = h.raft.trigger().heartbeat().await;
        }

        let header = RaftHeader { group };
        let call = self.pool().call_raw(&target.addr, Opcode::RAFT_ELECT, msg::encode(&header), bytes::Bytes::new());
        match tokio::time::timeout(lease, call).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(ErrorCode::Unavailable(format!("asking node {to} to campaign: {e}"))),
            Err(_) => return Err(ErrorCode::Timeout),
        }
        let settled = h
            .raft
            .wait(Some(lease * 3))
            .metrics(|m| m.current_leader.is_some_and(|l| l != me.get()), "leadership moved")
            .await;
        let leader = match settled {
            Ok(m) => m.current_leader.map(NodeId::from).unwrap_or(me),
            Err(_) => me,
        };
        tracing::info!(%group, from = %me, to = %to, now = %leader, "leadership handover finished");
        Ok(leader)
    }

    /// Serves `RAFT_ELECT`: the leader is handing this replica the leadership.
    pub(crate) async fn campaign(&self, group: GroupId) -> Result<(), ErrorCode> {
        let h = self.handle(group).ok_or(ErrorCode::GroupNotFound(group))?;
        if self.is_recovering(group) {
            return Err(ErrorCode::Unavailable(format!(
                "group {group} is recovering after a power loss and does not campaign"
            )));
        }
        h.raft.trigger().elect().await.map_err(|e| ErrorCode::Unavailable(format!("group {group}: {e}")))
    }
}
