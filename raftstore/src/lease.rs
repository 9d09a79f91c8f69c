//! Read leases: a linearizable read on the leader without a quorum round trip each time.
//!
//! A read barrier (`MultiRaft::read_barrier`) that starts at `s` returns once a quorum acknowledged
//! heartbeats sent after `s` and this leader applied everything committed before. Each acknowledging
//! follower then refuses to vote for anyone else until `election_timeout_max` after it received the
//! heartbeat (openraft's leader lease), so no other leader can exist before `s + election_timeout_max`.
//! Until `s + election_timeout_min / 2` (well inside, leaving room for clock-rate differences) every
//! write acknowledged before a read began was applied here (by this leader before acknowledging it, or
//! before the barrier by an earlier one), so a local read is linearizable, provided this node is still
//! the leader in the same term. A committed write proposed at `s` by a node that led throughout in one
//! term proves the same (a quorum accepted entries sent after `s`, and everything before them is
//! applied once the write is), so it grants the same lease. A handover (see [`crate::handover`]) waits
//! out the followers' leases before the new leader campaigns, and no lease is used while one is under
//! way.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferrum_proto::GroupId;

#[derive(Clone, Copy, Debug)]
struct Lease {
    term: u64,
    until: Instant,
}

#[derive(Default)]
pub(crate) struct ReadLeases {
    map: Mutex<HashMap<GroupId, Lease>>,
}

impl ReadLeases {
    /// A barrier that started at `start` succeeded while this node led `group` in `term`.
    pub(crate) fn grant(&self, group: GroupId, term: u64, start: Instant, length: Duration) {
        self.map.lock().expect("leases lock").insert(group, Lease { term, until: start + length });
    }

    /// Whether a lease of `group` in `term` (the current term, with this node the leader) still holds.
    pub(crate) fn holds(&self, group: GroupId, term: u64) -> bool {
        let map = self.map.lock().expect("leases lock");
        map.get(&group).is_some_and(|l| l.term == term && Instant::now() < l.until)
    }

    pub(crate) fn drop_group(&self, group: GroupId) {
        self.map.lock().expect("leases lock").remove(&group);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_holds_in_its_term_until_it_ends() {
        let l = ReadLeases::default();
        let g = GroupId(3);
        assert!(!l.holds(g, 1));
        l.grant(g, 1, Instant::now(), Duration::from_secs(60));
        assert!(l.holds(g, 1));
        assert!(!l.holds(g, 2), "another term: another leader may have been elected");
        l.grant(g, 1, Instant::now() - Duration::from_secs(61), Duration::from_secs(60));
        assert!(!l.holds(g, 1), "expired");
        l.grant(g, 1, Instant::now(), Duration::from_secs(60));
        l.drop_group(g);
        assert!(!l.holds(g, 1));
    }
}
