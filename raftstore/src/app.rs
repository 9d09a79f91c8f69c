//! What a service plugs into a Raft group: the deterministic application of committed commands.
//!
//! The raftstore owns ordering, replication, durability of the applied index and snapshots; an [`App`]
//! only turns one committed command into writes on its group's keyspace plus a reply. The writes of one
//! command and the new applied index are committed in one RocksDB batch, so after a crash a group's data
//! and its applied index always agree, and Raft replays exactly the commands that are missing.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use ferrum_proto::GroupId;
use rocksdb::{Direction, IteratorMode, ReadOptions, WriteBatch};

use crate::router::GroupDesc;
use crate::store::{data_key, group_range, Store, CF_DATA};

/// A service's state machine logic for one group.
pub trait App: Send + Sync + 'static {
    /// Applies one committed command. Must be deterministic: every replica applies the same commands in
    /// the same order and must reach the same state. Errors that the proposer should see belong in the
    /// reply bytes (an app-level result), not in a panic.
    fn apply(&self, view: &GroupView<'_>, batch: &mut GroupBatch<'_>, index: u64, cmd: &[u8]) -> Bytes;

    /// Called after the group's keyspace was replaced by a snapshot, and when the group is opened, so an
    /// app can rebuild in-memory caches. Most apps keep no cache.
    fn on_reload(&self, _view: &GroupView<'_>) {}

    /// The group was removed from this instance (its Raft log and keyspace are already deleted): delete
    /// whatever the app keeps elsewhere (e.g. the datanode's extent files). Not called at shutdown.
    fn on_remove(&self) {}

    /// What the partition holds, reported to the master in heartbeats (so it can add partitions
    /// before they fill). Called about once a second: keep it cheap (counters, not scans).
    fn usage(&self, _view: &GroupView<'_>) -> Usage {
        Usage::default()
    }

    // --- State outside the keyspace (the datanode's extent files). Apps that keep everything in the
    // --- keyspace leave these at their defaults.

    /// Makes external state written by `apply` durable. Called before Raft purges log entries, because
    /// after the purge those entries can no longer rebuild it.
    fn sync_external(&self) -> io::Result<()> {
        Ok(())
    }

    /// Whether the app keeps external state: its snapshots then get `dump_external`'s pairs when they
    /// are sent to a replica (see [`crate::snapshot_send`]).
    fn has_external(&self) -> bool {
        false
    }

    /// Streams external state into a snapshot being sent, as key/value pairs (values up to a few MiB).
    /// It runs concurrently with `apply`, after the snapshot's keyspace was taken, so it may include
    /// effects of entries after the snapshot's index; that is sound only when re-applying those entries
    /// is idempotent (e.g. writes at offsets).
    fn dump_external(&self, _sink: &mut dyn FnMut(&[u8], &[u8]) -> io::Result<()>) -> io::Result<()> {
        Ok(())
    }

    /// A snapshot from the leader is about to replace this replica's state: prepare to receive external
    /// pairs (e.g. into a staging dir).
    fn begin_restore(&self) -> io::Result<()> {
        Ok(())
    }

    /// One external pair of the snapshot being installed, in the order `dump_external` produced them.
    fn restore_external(&self, _key: &[u8], _value: &[u8]) -> io::Result<()> {
        Err(io::Error::new(io::ErrorKind::InvalidData, "snapshot has external state but this app keeps none"))
    }

    /// The keyspace was replaced (durably); switch to the restored external state.
    fn finish_restore(&self) -> io::Result<()> {
        Ok(())
    }
}

/// A partition's size, as its app counts it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub used_bytes: u64,
    /// Inodes (meta partitions) or extents (data partitions).
    pub items: u64,
    /// The partition refuses writes (e.g. its disk is full); reported so the master stops using it.
    pub read_only: bool,
}

/// Builds the [`App`] of a group from its persisted description (called at group creation and when an
/// instance restarts and reopens its groups).
pub type AppFactory = Arc<dyn Fn(GroupId, &GroupDesc) -> Arc<dyn App> + Send + Sync>;

/// Read access to one group's keyspace; keys are app keys (the group prefix is added here).
pub struct GroupView<'a> {
    pub(crate) store: &'a Store,
    pub(crate) group: GroupId,
}

impl<'a> GroupView<'a> {
    pub fn new(store: &'a Store, group: GroupId) -> Self {
        GroupView { store, group }
    }

    pub fn group(&self) -> GroupId {
        self.group
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, rocksdb::Error> {
        self.store.db().get_cf(self.store.cf(CF_DATA), data_key(self.group, key))
    }

    /// Key/value pairs with `start <= key` in order, within the group, stopping after `limit` pairs or
    /// when `key` no longer starts with `prefix`.
    pub fn scan(&self, prefix: &[u8], start: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>, rocksdb::Error> {
        let from = data_key(self.group, start.max(prefix));
        let mut ro = ReadOptions::default();
        // Bounded by the prefix, not the group: otherwise an empty prefix makes RocksDB walk on to the
        // next live key, over every deleted key in between (e.g. a drained queue's tombstones).
        ro.set_iterate_upper_bound(match prefix_end(prefix) {
            Some(end) => data_key(self.group, &end),
            None => group_range(self.group).1,
        });
        let it =
            self.store.db().iterator_cf_opt(self.store.cf(CF_DATA), ro, IteratorMode::From(&from, Direction::Forward));
        let mut out = Vec::new();
        for item in it {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item?;
            let app_key = &k[8..];
            if !app_key.starts_with(prefix) {
                break;
            }
            out.push((app_key.to_vec(), v.to_vec()));
        }
        Ok(out)
    }
}

/// The writes of one applied command; committed atomically with the applied index.
pub struct GroupBatch<'a> {
    pub(crate) store: &'a Store,
    pub(crate) group: GroupId,
    pub(crate) batch: WriteBatch,
}

impl<'a> GroupBatch<'a> {
    pub(crate) fn new(store: &'a Store, group: GroupId) -> Self {
        GroupBatch { store, group, batch: WriteBatch::default() }
    }

    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        self.batch.put_cf(self.store.cf(CF_DATA), data_key(self.group, key), value);
    }

    pub fn delete(&mut self, key: &[u8]) {
        self.batch.delete_cf(self.store.cf(CF_DATA), data_key(self.group, key));
    }

    /// Deletes app keys in `[from, to)`.
    pub fn delete_range(&mut self, from: &[u8], to: &[u8]) {
        self.batch.delete_range_cf(self.store.cf(CF_DATA), data_key(self.group, from), data_key(self.group, to));
    }
}

/// The first key after every key that starts with `prefix`; `None` when there is none (empty or all 0xff).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod prefix_tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_is_the_next_prefix() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }
}
