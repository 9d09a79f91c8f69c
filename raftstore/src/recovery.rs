//! Groups that restarted after a power loss and may miss entries they acknowledged (see
//! [`crate::durability`]). Such a group neither votes nor campaigns until a leader has matched its log
//! up to that leader's commit index of the leader's own term: by then it holds every entry ever
//! committed, so it can no longer help elect a leader that lacks one.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use ferrum_proto::GroupId;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse};

use crate::types::TypeConfig;

#[derive(Default)]
pub struct Recovering {
    groups: Mutex<HashSet<GroupId>>,
    /// Set while `groups` may be non-empty: every Raft message asks, and almost always none recovers.
    any: AtomicBool,
}

impl Recovering {
    pub fn add(&self, group: GroupId) {
        self.groups.lock().expect("recovering lock").insert(group);
        self.any.store(true, Ordering::Release);
    }

    pub fn contains(&self, group: GroupId) -> bool {
        self.any.load(Ordering::Acquire) && self.groups.lock().expect("recovering lock").contains(&group)
    }

    /// Removes `group`; true if it was recovering.
    pub fn remove(&self, group: GroupId) -> bool {
        self.groups.lock().expect("recovering lock").remove(&group)
    }

    /// Removes and returns every group still recovering.
    pub fn drain(&self) -> Vec<GroupId> {
        self.groups.lock().expect("recovering lock").drain().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.lock().expect("recovering lock").is_empty()
    }
}

/// What a successful append proves: the highest index up to which our log now equals the leader's,
/// and whether that covers the leader's commit index of its own term. `None` if it proves nothing.
pub fn catch_up_target(rpc: &AppendEntriesRequest<TypeConfig>) -> Option<bool> {
    let commit = rpc.leader_commit?;
    // A commit index from an earlier term may lag entries an earlier leader committed.
    if commit.leader_id.term != rpc.vote.leader_id().term {
        return None;
    }
    let matched = rpc.entries.last().map(|e| e.log_id).or(rpc.prev_log_id)?;
    Some(matched.index >= commit.index)
}

/// True when `rpc` (answered with `resp`) brought this replica up to the leader's commit index.
pub fn caught_up(target: Option<bool>, resp: &Result<AppendEntriesResponse<u64>, impl Sized>) -> bool {
    matches!((target, resp), (Some(true), Ok(AppendEntriesResponse::Success)))
}
