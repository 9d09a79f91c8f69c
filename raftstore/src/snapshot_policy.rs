//! When a group builds a snapshot (which lets its log be purged).
//!
//! A snapshot copies the group's whole keyspace, so building one every fixed number of entries makes an
//! entry's cost grow with the group: at 1,000,000 files the one meta partition of a volume copied about
//! 4 million keys every 5,000 creates, and creates ran at a third of their rate at 10,000 files. A group
//! therefore waits for `snapshot_after_logs` entries or for one entry per [`KEYS_PER_LOG`] keys of its
//! last snapshot, whichever is more: copying stays a few keys per entry, and the log kept between two
//! snapshots stays a fixed fraction of the group's size. A group with external state (a data
//! partition's extents, which a snapshot copies whole) also waits until it has logged as many bytes as
//! that state ([`bytes_due`]). openraft's own policy is off (`Never`); a task per group triggers the
//! builds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use ferrum_proto::GroupId;

use crate::router::MultiRaft;

/// Keys of the last snapshot per entry to wait for before the next one.
pub const KEYS_PER_LOG: u64 = 16;

/// How often a group's task looks at its applied index.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// A group's latest snapshot (built here or installed from the leader) and the log written since: keys
/// and external bytes (a data partition's extents) are 0 until the first snapshot since start-up, which
/// therefore comes after `snapshot_after_logs` entries.
#[derive(Debug, Default)]
pub struct SnapshotSize {
    keys: AtomicU64,
    external_bytes: AtomicU64,
    /// Bytes of entries this replica appended to its log since start-up (counted by the log store).
    log_bytes: AtomicU64,
}

impl SnapshotSize {
    /// Records a snapshot of `keys` keys and `external_bytes` of external state.
    pub fn set(&self, keys: u64, external_bytes: u64) {
        self.keys.store(keys, Ordering::Relaxed);
        self.external_bytes.store(external_bytes, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.keys.load(Ordering::Relaxed)
    }

    pub fn external_bytes(&self) -> u64 {
        self.external_bytes.load(Ordering::Relaxed)
    }

    pub fn add_log_bytes(&self, n: u64) {
        self.log_bytes.fetch_add(n, Ordering::Relaxed);
    }

    pub fn log_bytes(&self) -> u64 {
        self.log_bytes.load(Ordering::Relaxed)
    }
}

/// Whether enough was logged since the last snapshot to copy the external state again: a snapshot
/// copies all of it (every extent of a data partition), so a group waits until it has logged as many
/// bytes as that; copying then costs at most one more write per byte written. Random 4 KiB writes to a
/// 1 GiB file dumped the whole file every 5,000 entries (every few seconds) before this.
pub fn bytes_due(external_bytes: u64, logged_since: u64) -> bool {
    logged_since >= external_bytes
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
        // The snapshot index last seen, and the log bytes counted when it was first seen.
        let (mut seen, mut baseline) = (None, size.log_bytes());
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
            if snapshot != seen {
                (seen, baseline) = (snapshot, size.log_bytes());
            }
            let ready = due(floor, size.get(), applied, snapshot)
                && bytes_due(size.external_bytes(), size.log_bytes().saturating_sub(baseline));
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
    fn groups_with_external_state_wait_until_they_logged_as_much() {
        assert!(bytes_due(0, 0), "no external state: the entry count decides");
        assert!(!bytes_due(1 << 30, (1 << 30) - 1));
        assert!(bytes_due(1 << 30, 1 << 30));
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
