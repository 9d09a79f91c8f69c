//! Handing a group's leadership to another replica, so leaders can be spread evenly over instances.
//!
//! openraft 0.9 has no leadership transfer, and a follower that heard from its leader within the
//! leader lease (`election_timeout_max`) refuses to vote, so simply asking the target to campaign fails.
//! The leader therefore goes quiet first: it stops its heartbeats and answers new writes and reads with
//! `NotLeader` naming the target (clients retry there), waits until the target holds its whole log and
//! the followers' leases have run out, and then asks the target to campaign. The target has every
//! entry, so the others vote for it, and the old leader steps down on seeing the higher term. Whatever
//! happens, the old leader resumes normal service when the handover ends (heartbeats on, requests
//! admitted), so a failed handover costs one lease of unavailability and nothing else.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use ferrum_proto::msg::raft::RaftHeader;
use ferrum_proto::{msg, ErrorCode, GroupId, LeaderHint, NodeId, Opcode};

use crate::router::MultiRaft;
use crate::types::Raft;

/// Waited past the lease before asking the target to campaign: the last append (the commit index)
/// may still have been on its way when the target was seen caught up.
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
        if !self.any.load(Ordering::Acquire) {
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
        self.any.store(true, Ordering::Release);
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
        h.raft.runtime_config().heartbeat(false);
        let lease = self.config().election_timeout_max;

        // Writes admitted just before the handover began may still be appended: wait until the target
        // holds everything and it stayed that way for a whole lease (bounded: a target that cannot
        // keep up, or a stream of late entries, ends the attempt).
        let deadline = tokio::time::Instant::now() + lease * 4;
        let mut last = None;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let caught_up = h
                .raft
                .wait(Some(left))
                .metrics(
                    |m| {
                        let matched = m.replication.as_ref().and_then(|r| r.get(&to.get()).cloned()).flatten();
                        m.current_leader == Some(me.get())
                            && m.last_log_index.is_some()
                            && matched.map(|l| l.index) == m.last_log_index
                            && m.last_applied.map(|l| l.index) == m.last_log_index
                    },
                    "handover target caught up",
                )
                .await
                .map_err(|e| ErrorCode::Unavailable(format!("group {group}: node {to} did not catch up: {e}")))?;
            if last.is_some() && last == caught_up.last_log_index {
                break;
            }
            last = caught_up.last_log_index;
            if tokio::time::Instant::now() + lease + LEASE_MARGIN > deadline {
                return Err(ErrorCode::Busy);
            }
            tokio::time::sleep(lease + LEASE_MARGIN).await;
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
