//! Deferring the commit-index round that openraft 0.9 sends after every commit.
//!
//! When an entry commits, openraft's replication stream to each follower sends an AppendEntries with no
//! entries at once, only to carry the new commit index (`ReplicationCore::process_event`,
//! `Replicate::Committed`). With one change at a time that is half of the leader's messages and a
//! wake-up of every follower per change. Every later AppendEntries (the next change, or the next
//! heartbeat) carries the commit index anyway, so the stream's client answers such a message itself:
//! nothing about the follower's log changes (it acknowledged exactly that log position moments ago), so
//! the answer it would give is `Success`, and the leader's view of it stays what it was.
//!
//! Only a message that changes nothing but the commit index is answered here, and only within `window`
//! of the follower's last real acknowledgement on this stream, so the follower still hears from the
//! leader at least every heartbeat interval (its election timer and openraft's leader lease do not
//! change) and learns a commit index no later than the next heartbeat. A follower applies later than it
//! would have (by at most that), which nothing reads: reads are served by the leader. The read
//! barriers' heartbeats (`ensure_linearizable`) go through fresh clients, so they are always sent.

use std::time::{Duration, Instant};

use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse};
use openraft::{LogId, Vote};

use crate::types::TypeConfig;

/// What the follower last acknowledged on this stream.
#[derive(Clone, Debug, PartialEq)]
struct Acked {
    vote: Vote<u64>,
    /// The last log id the follower confirmed it holds (the request's last entry, or its
    /// `prev_log_id` when it carried none).
    end: Option<LogId<u64>>,
    commit: Option<LogId<u64>>,
    at: Instant,
}

/// Per replication stream (one openraft client per follower): the last real acknowledgement.
#[derive(Default, Debug)]
pub(crate) struct CommitHints {
    acked: Option<Acked>,
}

/// A request about to be sent, remembered until its answer arrives.
pub(crate) struct Pending {
    acked: Acked,
}

impl CommitHints {
    /// Whether `rpc` only moves the follower's commit index past a log position it acknowledged less
    /// than `window` ago, so that it need not be sent (its answer is `Success`).
    pub(crate) fn may_defer(&self, rpc: &AppendEntriesRequest<TypeConfig>, now: Instant, window: Duration) -> bool {
        let Some(a) = &self.acked else { return false };
        rpc.entries.is_empty()
            && rpc.vote == a.vote
            && rpc.prev_log_id == a.end
            && rpc.leader_commit > a.commit
            && now.saturating_duration_since(a.at) < window
    }

    /// Call before sending `rpc` at `now`; pass the result to [`CommitHints::answered`].
    pub(crate) fn sending(rpc: &AppendEntriesRequest<TypeConfig>, now: Instant) -> Pending {
        let end = rpc.entries.last().map(|e| e.log_id).or(rpc.prev_log_id);
        Pending { acked: Acked { vote: rpc.vote, end, commit: rpc.leader_commit, at: now } }
    }

    /// Records the answer to a sent request: only a plain `Success` says the follower holds exactly
    /// what was sent; anything else (an error, a conflict, a higher vote, a partial success) forgets,
    /// so the next message goes out whatever it carries.
    pub(crate) fn answered<E>(&mut self, pending: Pending, res: &Result<AppendEntriesResponse<u64>, E>) {
        self.acked = match res {
            Ok(AppendEntriesResponse::Success) => Some(pending.acked),
            _ => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Cmd;
    use bytes::Bytes;
    use openraft::{CommittedLeaderId, Entry, EntryPayload};

    const WINDOW: Duration = Duration::from_millis(75);

    fn id(term: u64, index: u64) -> LogId<u64> {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn req(term: u64, prev: u64, entries: u64, commit: u64) -> AppendEntriesRequest<TypeConfig> {
        let entry = |i| Entry { log_id: id(term, i), payload: EntryPayload::Normal(Cmd(Bytes::from_static(b"x"))) };
        AppendEntriesRequest {
            vote: Vote::new_committed(term, 1),
            prev_log_id: Some(id(term, prev)),
            leader_commit: Some(id(term, commit)),
            entries: (prev + 1..=prev + entries).map(entry).collect(),
        }
    }

    fn acked(hints: &mut CommitHints, rpc: &AppendEntriesRequest<TypeConfig>, at: Instant) {
        let pending = CommitHints::sending(rpc, at);
        hints.answered::<()>(pending, &Ok(AppendEntriesResponse::Success));
    }

    #[test]
    fn only_a_commit_index_update_right_after_an_acknowledged_append_is_deferred() {
        let t0 = Instant::now();
        let mut hints = CommitHints::default();
        // Nothing acknowledged yet on this stream: everything goes.
        assert!(!hints.may_defer(&req(1, 5, 0, 6), t0, WINDOW));

        // Entries 6..=7 acknowledged with commit 5; then the commit of 7 alone: deferred.
        acked(&mut hints, &req(1, 5, 2, 5), t0);
        let commit_only = req(1, 7, 0, 7);
        assert!(hints.may_defer(&commit_only, t0 + Duration::from_millis(1), WINDOW));
        // ... but not once the window since the acknowledgement has passed (a heartbeat must reach it).
        assert!(!hints.may_defer(&commit_only, t0 + WINDOW, WINDOW));
        // A message with entries, a plain heartbeat (commit unchanged), a different log position or a
        // new vote always goes.
        assert!(!hints.may_defer(&req(1, 7, 1, 7), t0, WINDOW));
        assert!(!hints.may_defer(&req(1, 7, 0, 5), t0, WINDOW));
        assert!(!hints.may_defer(&req(1, 6, 0, 7), t0, WINDOW));
        let mut new_term = req(2, 7, 0, 7);
        new_term.prev_log_id = Some(id(1, 7));
        new_term.leader_commit = Some(id(2, 8));
        assert!(!hints.may_defer(&new_term, t0, WINDOW));

        // The heartbeat after the window is sent and acknowledged: the stream is current again.
        acked(&mut hints, &commit_only, t0 + WINDOW);
        assert!(!hints.may_defer(&commit_only, t0 + WINDOW, WINDOW), "that commit index was delivered");
    }

    #[test]
    fn any_answer_but_success_forgets_the_follower_state() {
        let t0 = Instant::now();
        let mut hints = CommitHints::default();
        acked(&mut hints, &req(1, 5, 2, 5), t0);
        let next = req(1, 7, 1, 7);
        let pending = CommitHints::sending(&next, t0);
        hints.answered(pending, &Err::<AppendEntriesResponse<u64>, _>("timeout"));
        assert!(!hints.may_defer(&req(1, 7, 0, 7), t0, WINDOW), "after an error nothing is assumed");

        acked(&mut hints, &req(1, 5, 2, 5), t0);
        let pending = CommitHints::sending(&next, t0);
        hints.answered::<()>(pending, &Ok(AppendEntriesResponse::Conflict));
        assert!(!hints.may_defer(&req(1, 7, 0, 7), t0, WINDOW), "after a conflict nothing is assumed");
    }
}
