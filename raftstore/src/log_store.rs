//! openraft's `RaftLogStorage` for one group, over the instance's shared RocksDB.
//!
//! Durability (the reasoning is in [`crate::durability`]): votes, truncations, membership entries and
//! sync markers are written with a synced WAL write before openraft is told they are persisted; other
//! entries with a plain WAL write (in the page cache, fsynced with the next synced write), unless the
//! instance asks for every entry to be synced. RocksDB merges concurrent synced writes of all groups
//! into one fsync (group commit).

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use ferrum_proto::GroupId;
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{EntryPayload, OptionalSend, RaftLogReader};
use rocksdb::{Direction, IteratorMode, ReadOptions, WriteBatch};

use crate::app::App;
use crate::error::{sto_read, sto_write};
use crate::store::{self, encode, log_index_of, log_key, tag, Store, CF_LOG};
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

#[derive(Clone)]
pub struct LogStore {
    group: GroupId,
    store: Store,
    app: Arc<dyn App>,
    sync_every_entry: bool,
    /// Restarted after a power loss (see `crate::recovery`): never resume leadership from the stored vote.
    recovering: bool,
}

impl LogStore {
    pub fn new(group: GroupId, store: Store, app: Arc<dyn App>) -> Self {
        LogStore { group, store, app, sync_every_entry: false, recovering: false }
    }

    /// The group restarts after a power loss. openraft resumes leadership at start-up when the stored
    /// vote is committed and ours; a leader that lost its log tail would then re-use indexes of its own
    /// term for new entries, which followers already hold with other contents. The vote is reported as
    /// not committed, so this replica starts as a follower (still bound by the vote it cast).
    pub fn recovering(mut self, yes: bool) -> Self {
        self.recovering = yes;
        self
    }

    /// fsync the WAL for every appended batch, not only for those that need it.
    pub fn sync_every_entry(mut self, yes: bool) -> Self {
        self.sync_every_entry = yes;
        self
    }

    fn last_log_id(&self) -> Result<Option<LogId>, StorageError> {
        let (lo, hi) = store::group_range(self.group);
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(lo);
        ro.set_iterate_upper_bound(hi);
        let mut it = self.store.db().iterator_cf_opt(self.store.cf(CF_LOG), ro, IteratorMode::End);
        match it.next() {
            None => Ok(None),
            Some(Err(e)) => Err(sto_read(e)),
            Some(Ok((_, v))) => {
                let e: Entry = postcard::from_bytes(&v).map_err(sto_read)?;
                Ok(Some(e.log_id))
            }
        }
    }

    fn meta<T: serde::de::DeserializeOwned>(&self, t: u8) -> Result<Option<T>, StorageError> {
        self.store.meta_get(self.group, t).map_err(sto_read)
    }
}

/// Membership changes (rare; a lost one could confuse who may vote) and sync markers go to disk at once.
fn needs_sync(e: &Entry) -> bool {
    match &e.payload {
        EntryPayload::Membership(_) => true,
        EntryPayload::Normal(cmd) => cmd.0.is_empty(),
        EntryPayload::Blank => false,
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => Some(i.saturating_add(1)),
            Bound::Excluded(i) => Some(*i),
            Bound::Unbounded => None,
        };
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(log_key(self.group, start).to_vec());
        ro.set_iterate_upper_bound(match end {
            Some(e) => log_key(self.group, e).to_vec(),
            None => store::group_range(self.group).1,
        });
        let it = self.store.db().iterator_cf_opt(
            self.store.cf(CF_LOG),
            ro,
            IteratorMode::From(&log_key(self.group, start), Direction::Forward),
        );
        let mut out = Vec::new();
        for item in it {
            let (k, v) = item.map_err(sto_read)?;
            let e: Entry = postcard::from_bytes(&v).map_err(sto_read)?;
            debug_assert_eq!(log_index_of(&k), e.log_id.index);
            out.push(e);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged: Option<LogId> = self.meta(tag::LAST_PURGED)?;
        let last = self.last_log_id()?.or(last_purged);
        Ok(LogState { last_purged_log_id: last_purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let mut b = WriteBatch::default();
        self.store.meta_put(&mut b, self.group, tag::VOTE, vote);
        self.store.write_sync(b).map_err(sto_write)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        let vote: Option<Vote> = self.meta(tag::VOTE)?;
        Ok(vote.map(|v| if self.recovering { Vote { committed: false, ..v } } else { v }))
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Only a hint that speeds up restart (re-apply up to it at once); no fsync needed.
        let mut b = WriteBatch::default();
        self.store.meta_put(&mut b, self.group, tag::COMMITTED, &committed);
        self.store.write_nosync(b).map_err(sto_write)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.meta::<Option<LogId>>(tag::COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let cf = self.store.cf(CF_LOG);
        let mut b = WriteBatch::default();
        let mut sync = self.sync_every_entry;
        for e in entries {
            sync |= needs_sync(&e);
            b.put_cf(cf, log_key(self.group, e.log_id.index), encode(&e));
        }
        // Written (and synced, when asked) before the callback: openraft counts this replica toward the
        // quorum only after it.
        let res = if sync { self.store.write_sync(b) } else { self.store.write_nosync(b) };
        match res {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(sto_write(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut b = WriteBatch::default();
        b.delete_range_cf(
            self.store.cf(CF_LOG),
            log_key(self.group, log_id.index).to_vec(),
            store::group_range(self.group).1,
        );
        self.store.write_sync(b).map_err(sto_write)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // State machine writes are not fsynced on apply (the log replays them after a crash). Before the
        // log that could replay them goes away, make them durable.
        self.store.sync_wal().map_err(sto_write)?;
        self.app.sync_external().map_err(sto_write)?;
        let mut b = WriteBatch::default();
        self.store.meta_put(&mut b, self.group, tag::LAST_PURGED, &log_id);
        b.delete_range_cf(self.store.cf(CF_LOG), log_key(self.group, 0), log_key(self.group, log_id.index + 1));
        self.store.write_sync(b).map_err(sto_write)
    }
}
