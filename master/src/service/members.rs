//! The master group's own membership: who the masters are, adding one to a running group, removing one.

use std::collections::BTreeSet;

use ferrum_proto::msg::master::{
    JoinMaster, JoinMasterResp, MasterInfo, PromoteMaster, RemoveMaster, RemoveMasterResp,
};
use ferrum_proto::{ErrorCode, GroupId, LeaderHint, NodeId};
use futures_util::future::join_all;
use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers};

use super::{unexpected, Master};
use crate::resources::Need;
use crate::state::{CmdReply, MasterCmd};

/// A member of the master group as this master's Raft sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: NodeId,
    pub addr: String,
    /// A voter in the committed membership, whatever the outcome of a change in progress. A newcomer
    /// only counts once the membership that makes it a voter is committed: before that, taking an old
    /// master down can leave the group without a quorum (a joint config still needs the old majority).
    pub voter: bool,
}

impl Master {
    /// Every master in the latest membership (learners being added too), with its committed voter status.
    pub fn members(&self) -> Vec<Member> {
        let Some(h) = self.raft.handle(GroupId::MASTER) else { return Vec::new() };
        let latest = h.raft.metrics().borrow().membership_config.clone();
        let voters = self.raft.committed_voters(GroupId::MASTER).unwrap_or_default();
        latest
            .membership()
            .nodes()
            .map(|(id, n)| Member { id: NodeId(*id), addr: n.addr.clone(), voter: voters.contains(&NodeId(*id)) })
            .collect()
    }

    /// Every master with its (cached) resources.
    pub(crate) async fn masters_info(&self) -> Vec<MasterInfo> {
        let members = self.members();
        let leader = self.raft.status(GroupId::MASTER).ok().and_then(|s| s.leader);
        let res = join_all(members.iter().map(|m| self.resources.get(&m.addr, Need::Facts))).await;
        members
            .into_iter()
            .zip(res)
            .map(|(m, r)| MasterInfo {
                leader: leader == Some(m.id),
                id: m.id,
                addr: m.addr,
                voter: m.voter,
                resources: r.ok(),
            })
            .collect()
    }

    /// Allocates the Raft id of a master about to join at `addr`.
    pub async fn join_master(&self, req: JoinMaster) -> Result<JoinMasterResp, ErrorCode> {
        self.lead().await?;
        let members = self.members();
        if let Some(m) = members.iter().find(|m| m.addr == req.addr) {
            return Ok(JoinMasterResp { id: m.id });
        }
        let min_id = NodeId(members.iter().map(|m| m.id.get()).max().unwrap_or(0) + 1);
        match self.propose(MasterCmd::AllocMasterId { addr: req.addr.clone(), min_id }).await? {
            CmdReply::Master(id) => {
                tracing::info!(master = %id, addr = %req.addr, "master id allocated for a joining master");
                Ok(JoinMasterResp { id })
            }
            other => Err(unexpected(other)),
        }
    }

    /// Replicates to a joining master until it has caught up, then makes it a voter.
    pub async fn promote_master(&self, req: PromoteMaster) -> Result<(), ErrorCode> {
        self.lead().await?;
        let allocated = self.state.read().expect("state lock").masters.get(&req.id).is_some_and(|m| m.addr == req.addr);
        if !allocated {
            return Err(ErrorCode::InvalidArgument(format!(
                "master {} at {} did not join through this cluster (JoinMaster)",
                req.id, req.addr
            )));
        }
        if self.members().iter().any(|m| m.id == req.id && m.voter) {
            return Ok(());
        }
        let h = self.raft.handle(GroupId::MASTER).ok_or(ErrorCode::GroupNotFound(GroupId::MASTER))?;
        h.raft.add_learner(req.id.get(), BasicNode { addr: req.addr.clone() }, true).await.map_err(write_error)?;
        let voters = ChangeMembers::AddVoterIds(BTreeSet::from([req.id.get()]));
        // Returns once the final (uniform) membership is committed and applied here.
        h.raft.change_membership(voters, false).await.map_err(write_error)?;
        // A change left half-done (joint) by an earlier leader is completed first, to its own goal.
        if !self.members().iter().any(|m| m.id == req.id && m.voter) {
            return Err(ErrorCode::Busy);
        }
        tracing::info!(master = %req.id, addr = %req.addr, "master joined the group as a voter");
        Ok(())
    }
}

impl Master {
    /// Takes a master out of the group: a voter through a joint consensus (a removed leader steps down
    /// once the change commits), a learner directly. Never the only voter.
    pub async fn remove_master(&self, req: RemoveMaster) -> Result<RemoveMasterResp, ErrorCode> {
        self.lead().await?;
        let h = self.raft.handle(GroupId::MASTER).ok_or(ErrorCode::GroupNotFound(GroupId::MASTER))?;
        let latest = h.raft.metrics().borrow().membership_config.clone();
        let id = req.id.get();
        let member = latest.membership().nodes().any(|(n, _)| *n == id);
        let voters: BTreeSet<u64> = latest.membership().voter_ids().collect();
        if member && voters.contains(&id) && voters.len() == 1 {
            return Err(ErrorCode::InvalidArgument(format!(
                "master {} is the only voter of the master group: add another master before removing it",
                req.id
            )));
        }
        // First, while this master surely still leads (it may be the one removed).
        self.propose(MasterCmd::ForgetMaster { id: req.id }).await?;
        if !member {
            return Ok(RemoveMasterResp { removed: false });
        }
        let change = if voters.contains(&id) {
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        // Returns once the membership without it is committed.
        h.raft.change_membership(change, false).await.map_err(write_error)?;
        tracing::info!(master = %req.id, "master removed from the group");
        Ok(RemoveMasterResp { removed: true })
    }
}

fn write_error(e: RaftError<u64, ClientWriteError<u64, BasicNode>>) -> ErrorCode {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => ErrorCode::NotLeader {
            leader: match (f.leader_id, f.leader_node) {
                (Some(id), Some(n)) => Some(LeaderHint { node: NodeId(id), addr: n.addr }),
                _ => None,
            },
        },
        RaftError::APIError(ClientWriteError::ChangeMembershipError(ChangeMembershipError::InProgress(_))) => {
            ErrorCode::Busy
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => ErrorCode::InvalidArgument(e.to_string()),
        RaftError::Fatal(e) => ErrorCode::Unavailable(e.to_string()),
    }
}
