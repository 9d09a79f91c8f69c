//! A replica receiving a snapshot from its leader does not start elections.
//!
//! openraft 0.9 refreshes a follower's election timer on AppendEntries and votes, not on snapshot
//! chunks, and the leader's heartbeats to that follower can queue behind the chunks on the shared
//! connection. A snapshot that takes longer than the election timeout to arrive (a data partition of a
//! few hundred MiB at the snapshot rate) made the receiver campaign with a higher term, which deposed
//! the leader and restarted the transfer from its first byte, again and again (seen with 256 MiB
//! partitions in `tests/tests/datanode_replication.rs`). So while a leader's chunks keep arriving the
//! replica's elections are off; they are back when the snapshot is installed or after `quiet` (the
//! longest election timeout) without a chunk, so a leader that dies mid-transfer is still replaced.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferrum_proto::GroupId;

/// When each group now receiving a snapshot got its latest chunk.
#[derive(Debug, Default)]
pub struct Receiving {
    last_chunk: Mutex<HashMap<GroupId, Instant>>,
}

impl Receiving {
    /// A chunk was accepted for `group`; `true` when the group was not receiving before (the caller
    /// then turns elections off and starts a [`Receiving::quiet_for`] watch).
    pub fn chunk(&self, group: GroupId) -> bool {
        self.last_chunk.lock().unwrap_or_else(|p| p.into_inner()).insert(group, Instant::now()).is_none()
    }

    /// The transfer ended (installed, or refused): `true` if the group was receiving.
    pub fn done(&self, group: GroupId) -> bool {
        self.last_chunk.lock().unwrap_or_else(|p| p.into_inner()).remove(&group).is_some()
    }

    /// How long to wait before asking again whether `group` went `quiet` without a chunk: `None` once
    /// it did (and it is no longer receiving) or ended.
    pub fn quiet_for(&self, group: GroupId, quiet: Duration) -> Option<Duration> {
        let mut m = self.last_chunk.lock().unwrap_or_else(|p| p.into_inner());
        let last = *m.get(&group)?;
        match quiet.checked_sub(last.elapsed()) {
            Some(left) if !left.is_zero() => Some(left),
            _ => {
                m.remove(&group);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transfer_ends_when_done_or_after_a_quiet_period() {
        let r = Receiving::default();
        let g = GroupId(7);
        assert!(r.chunk(g), "first chunk");
        assert!(!r.chunk(g), "later chunks");
        assert!(r.quiet_for(g, Duration::from_secs(60)).is_some(), "chunks still recent");
        assert_eq!(r.quiet_for(g, Duration::ZERO), None, "quiet: no longer receiving");
        assert!(r.chunk(g), "a new transfer");
        assert!(r.done(g));
        assert!(!r.done(g));
        assert_eq!(r.quiet_for(g, Duration::from_secs(60)), None);
    }
}
