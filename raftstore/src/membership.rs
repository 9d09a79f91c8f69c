//! Changing who replicates a group: the building blocks of repair and decommission. A new replica joins
//! as a learner, catches up (from the log, or a streamed snapshot if the log was purged), and only then
//! becomes a voter, so the group's fault tolerance never drops while it copies.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use ferrum_proto::msg::repair::ChangeProgress;
use ferrum_proto::{ErrorCode, GroupId, NodeId};
use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::raft::ClientWriteResponse;
use openraft::{BasicNode, ChangeMembers};

use crate::router::MultiRaft;
use crate::store::tag;
use crate::types::{Raft, StoredMembership, TypeConfig};

/// How long a membership change waits for a previous one to finish committing.
const CHANGE_WAIT: Duration = Duration::from_secs(10);

/// A learner this close to the leader's last log index counts as caught up: under a steady write load
/// it never reaches the very last entry, and the few left are copied within the joint phase.
const CAUGHT_UP_LAG: u64 = 64;

/// The log index the leader knows `node` holds (from its replication progress; `None` elsewhere).
pub(crate) fn matched_index(m: &openraft::RaftMetrics<u64, openraft::BasicNode>, node: u64) -> Option<u64> {
    m.replication.as_ref().and_then(|r| r.get(&node).cloned()).flatten().map(|l| l.index)
}

impl MultiRaft {
    /// Makes `node` (reachable at `addr`) a voting replica of `group`. Call on the leader. The node must
    /// already host the group, created with the current members (not including itself), so it waits
    /// for the leader instead of electing itself.
    pub async fn add_member(&self, group: GroupId, node: NodeId, addr: String) -> Result<(), ErrorCode> {
        // `blocking`: returns once the learner has caught up with the leader's log.
        self.change(group, |r| {
            let addr = addr.clone();
            async move { r.add_learner(node.get(), BasicNode { addr }, true).await }
        })
        .await?;
        self.change(group, |r| async move {
            r.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([node.get()])), false).await
        })
        .await
    }

    /// Removes `node` from `group` (voter or learner). Call on the leader. The removed replica's local
    /// copy stays until its instance is told to delete the partition.
    pub async fn remove_member(&self, group: GroupId, node: NodeId) -> Result<(), ErrorCode> {
        let h = self.handle(group).ok_or(ErrorCode::GroupNotFound(group))?;
        let m = h.raft.metrics().borrow().membership_config.clone();
        let is_voter = m.membership().voter_ids().any(|v| v == node.get());
        let change = if is_voter {
            ChangeMembers::RemoveVoters(BTreeSet::from([node.get()]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([node.get()]))
        };
        self.change(group, |r| {
            let change = change.clone();
            async move { r.change_membership(change, false).await }
        })
        .await
    }

    /// Runs one membership change, waiting (bounded) while a previous change is still being committed:
    /// openraft answers a change once its joint config commits, before the final config does.
    async fn change<F, Fut>(&self, group: GroupId, f: F) -> Result<(), ErrorCode>
    where
        F: Fn(Raft) -> Fut,
        Fut: Future<Output = Result<ClientWriteResponse<TypeConfig>, RaftError<u64, ClientWriteError<u64, BasicNode>>>>,
    {
        let h = self.handle(group).ok_or(ErrorCode::GroupNotFound(group))?;
        let deadline = tokio::time::Instant::now() + CHANGE_WAIT;
        loop {
            match f(h.raft.clone()).await {
                Ok(_) => return Ok(()),
                Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
                    ChangeMembershipError::InProgress(_),
                ))) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(self.write_error(group, e)),
            }
        }
    }

    /// One step of replacing voter `remove` by `add` (reachable at `addr`), for the master's repair and
    /// decommission (see `ferrum_proto::msg::repair::ChangeReplicas`). Call on the leader; `add` must
    /// already host the group. Never blocks on the copy itself: the master calls again until `done`.
    pub async fn change_replicas(
        &self,
        group: GroupId,
        remove: NodeId,
        add: NodeId,
        addr: String,
    ) -> Result<ChangeProgress, ErrorCode> {
        let h = self.handle(group).ok_or(ErrorCode::GroupNotFound(group))?;
        let m = h.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership().clone();
        if m.current_leader != Some(self.node_id().get()) {
            return Err(ErrorCode::NotLeader { leader: self.leader_hint(group) });
        }
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let mut target = voters.clone();
        target.remove(&remove.get());
        target.insert(add.get());
        let last = m.last_log_index.unwrap_or(0);
        let matched_of = |n: u64| matched_index(&m, n).unwrap_or(0);
        let joint = membership.get_joint_config().len() > 1;
        if voters == target && !joint {
            // Left over as a learner by an older openraft step: drop it too.
            if membership.learner_ids().any(|l| l == remove.get()) {
                self.change(group, |r| async move {
                    r.change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([remove.get()])), false).await
                })
                .await?;
            }
            return Ok(ChangeProgress { done: true, matched: last, last });
        }
        if joint {
            // The swap is being committed: wait for its final config.
            return Ok(ChangeProgress { done: false, matched: matched_of(add.get()), last });
        }
        if !membership.nodes().any(|(id, _)| *id == add.get()) {
            // Learners of an earlier attempt whose target died are dropped, or the leader keeps
            // replicating to them forever.
            let stray: BTreeSet<u64> =
                membership.learner_ids().filter(|l| *l != add.get() && !voters.contains(l)).collect();
            if !stray.is_empty() {
                tracing::info!(group = %group, stray = ?stray, "removing stray learners");
                self.change(group, |r| {
                    let stray = stray.clone();
                    async move { r.change_membership(ChangeMembers::RemoveNodes(stray), false).await }
                })
                .await?;
            }
            tracing::info!(group = %group, node = %add, addr = %addr, "adding a learner");
            self.change(group, |r| {
                let addr = addr.clone();
                async move { r.add_learner(add.get(), BasicNode { addr }, false).await }
            })
            .await?;
            return Ok(ChangeProgress { done: false, matched: 0, last });
        }
        let matched = matched_of(add.get());
        if matched + CAUGHT_UP_LAG < last {
            return Ok(ChangeProgress { done: false, matched, last });
        }
        tracing::info!(group = %group, remove = %remove, add = %add, "learner caught up: swapping voters");
        self.change(group, |r| {
            let target = target.clone();
            async move { r.change_membership(ChangeMembers::ReplaceAllVoters(target), false).await }
        })
        .await?;
        let voters_now: BTreeSet<u64> = h.raft.metrics().borrow().membership_config.membership().voter_ids().collect();
        Ok(ChangeProgress { done: voters_now == target, matched, last })
    }

    /// The group's membership as of the last entry this replica applied, i.e. a committed one. openraft's
    /// metrics show the latest membership in the log instead, which may be uncommitted (and joint):
    /// acting on that one (taking a member down because a newcomer "is a voter") can leave the group
    /// without a quorum.
    pub fn committed_membership(&self, group: GroupId) -> Result<StoredMembership, ErrorCode> {
        self.handle(group).ok_or(ErrorCode::GroupNotFound(group))?;
        Ok(self.store().meta_get(group, tag::MEMBERSHIP).map_err(|e| e.code())?.unwrap_or_default())
    }

    /// The voters of the committed membership that stay voters whatever the outcome of a change in
    /// progress (in every config of a joint one): those whose votes the group can count on.
    pub fn committed_voters(&self, group: GroupId) -> Result<BTreeSet<NodeId>, ErrorCode> {
        let m = self.committed_membership(group)?;
        let configs = m.membership().get_joint_config();
        let Some(first) = configs.first() else { return Ok(BTreeSet::new()) };
        Ok(first.iter().filter(|id| configs.iter().all(|c| c.contains(id))).map(|id| NodeId::from(*id)).collect())
    }

    /// The group's voters, as this replica knows them (the latest membership, possibly uncommitted).
    pub fn voters(&self, group: GroupId) -> Result<Vec<NodeId>, ErrorCode> {
        let h = self.handle(group).ok_or(ErrorCode::GroupNotFound(group))?;
        let m = h.raft.metrics().borrow().membership_config.clone();
        Ok(m.membership().voter_ids().map(NodeId::from).collect())
    }
}
