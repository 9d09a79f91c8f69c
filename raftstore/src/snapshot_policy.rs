//! When a group builds a snapshot (which lets its log be purged).
//!
//! A snapshot copies the group's whole keyspace, so building one every fixed number of entries makes an
//! entry's cost grow with the group: at 1,000,000 files the one meta partition of a volume copied about
//! 4 million keys every 5,000 creates, and creates ran at a third of their rate at 10,000 files. A group
//! therefore waits for `snapshot_after_logs` entries or for one entry per [`KEYS_PER_LOG`] keys of its
//! last snapshot, whichever is more: copying stays a few keys per entry, and the log kept between two
//! snapshots stays a fixed fraction of the group's size. External state (a data partition's extents)
//! is not copied by a build (see [`crate::snapshot_send`]), so it does not count here. openraft's own
//! policy is off (`Never`); a task per group triggers the builds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use ferrum_proto::GroupId;

use crate::router::MultiRaft;

/// Keys of the last snapshot per entry to wait for before the next one.
pub const KEYS_PER_LOG: u64 = 16;

/// How often a group's task looks at its applied index.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// Keys of a group's latest snapshot (built here or installed from the leader); 0 until the first
/// snapshot since start-up, which therefore comes after `snapshot_after_logs` entries.
#[derive(Debug, Default)]
pub struct SnapshotSize(AtomicU64);

impl SnapshotSize {
    pub fn set(&self, keys: u64) {
        self.0.store(keys, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Entries to apply after a snapshot of `keys` keys before the next one; never fewer than `floor`.
pub fn logs_between(floor: u64, keys: u64) -> u64 {
    floor.max(keys / KEYS_PER_LOG)
}

/// Whether a group that applied up to `applied` and last snapshotted at `snapshot` should build one.
pub fn due(floor: u64, keys: u64, applied: Option<u64>, snapshot: Option<u64>) -> bool {
    let Some(applied) = applied else { return false };
    // Like openraft's `LogsSinceLast`: without a snapshot, count from the start of the log.
    let since = applied.saturating_sub(snapshot.unwrap_or(0)) + u64::from(snapshot.is_none());
    since >= logs_between(floor, keys)
}

/// Triggers the group's snapshots by [`due`] until it is removed or stopped. Holds the instance weakly
/// and the group's handle only while triggering, so that dropping them still stops the group.
pub(crate) fn spawn(group: GroupId, multi: Weak<MultiRaft>, floor: u64, size: Arc<SnapshotSize>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            let Some(raft) = multi.upgrade().and_then(|mr| mr.handle(group)).map(|h| h.raft) else { return };
            let (stopped, applied, snapshot) = {
                let m = raft.metrics();
                let m = m.borrow();
                (m.running_state.is_err(), m.last_applied.map(|l| l.index), m.snapshot.map(|l| l.index))
            };
            if stopped {
                return;
            }
            let ready = due(floor, size.get(), applied, snapshot);
            // A build already under way ignores the trigger; openraft answers an error only once stopped.
            if ready && raft.trigger().snapshot().await.is_err() {
                tracing::debug!(%group, "group stopped: no more snapshots");
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_groups_snapshot_after_the_floor() {
        assert_eq!(logs_between(5000, 0), 5000);
        assert_eq!(logs_between(5000, 5000 * KEYS_PER_LOG), 5000);
        assert!(!due(5000, 1000, Some(4998), None), "4,999 entries (index 0 counts)");
        assert!(due(5000, 1000, Some(4999), None));
        assert!(!due(5000, 1000, Some(14_999), Some(10_000)));
        assert!(due(5000, 1000, Some(15_000), Some(10_000)));
        assert!(!due(5000, 0, None, None), "nothing applied");
    }

    #[test]
    fn large_groups_wait_in_proportion_to_their_size() {
        let keys = 4_000_000;
        assert_eq!(logs_between(5000, keys), keys / KEYS_PER_LOG);
        let gap = keys / KEYS_PER_LOG;
        assert!(!due(5000, keys, Some(1_000_000 + gap - 1), Some(1_000_000)));
        assert!(due(5000, keys, Some(1_000_000 + gap), Some(1_000_000)));
    }
}
