//! openraft's `RaftLogStorage` for one group, over the instance's shared RocksDB.
//!
//! Durability (the reasoning is in [`crate::durability`]): votes, truncations, membership entries and
//! sync markers are written with a synced WAL write before openraft is told they are persisted; other
//! entries with a plain WAL write (in the page cache, fsynced with the next synced write), unless the
//! instance asks for every entry to be synced. RocksDB merges concurrent synced writes of all groups
//! into one fsync (group commit). Entries of [`MIN_PAYLOAD`] bytes or more (file data) go to the group's
//! segment files, synced before their reference is written ([`crate::payload_log`]).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};

use ferrum_proto::GroupId;
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{EntryPayload, OptionalSend, RaftLogReader};
use rocksdb::{Direction, IteratorMode, ReadOptions, WriteBatch};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::error::{sto_read, sto_write, RaftStoreError};
use crate::payload_log::{PayloadLog, PayloadRef, MIN_PAYLOAD};
use crate::store::{self, encode, log_index_of, log_key, tag, Store, CF_LOG, CF_LOG_V1};
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

/// What the log family holds under an entry's key.
#[derive(Debug, Serialize, Deserialize)]
pub enum Stored {
    Entry(Entry),
    /// A large entry, encoded in the group's segment files.
    External {
        log_id: LogId,
        at: PayloadRef,
    },
}

impl Stored {
    fn log_id(&self) -> LogId {
        match self {
            Stored::Entry(e) => e.log_id,
            Stored::External { log_id, .. } => *log_id,
        }
    }
}

/// `Stored::Entry` of an already encoded entry: postcard writes an enum as its variant index (a varint,
/// one byte here) followed by the variant's fields.
fn inline_value(encoded: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(1 + encoded.len());
    v.push(0);
    v.extend_from_slice(encoded);
    v
}

/// Bytes of entries a group keeps in memory after appending them.
const RECENT_BYTES: usize = 32 << 20;
/// And at most this many entries (a follower further behind is served from RocksDB).
const RECENT_ENTRIES: usize = 4096;

/// Entries appended recently: replication to the followers and the apply read them right after the
/// append. From here such a read is a few clones instead of a RocksDB iterator (for a metadata change,
/// one on the leader per follower and one per replica for the apply); a large entry's bytes would
/// otherwise come from a segment, which is written past the page cache and would be read from disk.
#[derive(Default)]
struct Recent {
    entries: BTreeMap<u64, (Entry, usize)>,
    bytes: usize,
}

impl Recent {
    fn insert(&mut self, e: Entry, size: usize) {
        self.bytes += size;
        if let Some((_, old)) = self.entries.insert(e.log_id.index, (e, size)) {
            self.bytes -= old;
        }
        while self.bytes > RECENT_BYTES || self.entries.len() > RECENT_ENTRIES {
            let Some((_, (_, size))) = self.entries.pop_first() else { break };
            self.bytes -= size;
        }
    }

    fn get(&self, log_id: &LogId) -> Option<Entry> {
        self.entries.get(&log_id.index).filter(|(e, _)| e.log_id == *log_id).map(|(e, _)| e.clone())
    }

    /// The entries `start..end` if all of them are here.
    fn range(&self, start: u64, end: u64) -> Option<Vec<Entry>> {
        let want = usize::try_from(end.checked_sub(start)?).ok()?;
        // Indexes are unique keys, so `want` of them in `start..end` are all of them.
        let out: Vec<Entry> = self.entries.range(start..end).map(|(_, (e, _))| e.clone()).collect();
        (want > 0 && out.len() == want).then_some(out)
    }

    /// Forgets the entries from `index` on (truncated).
    fn truncate(&mut self, index: u64) {
        let gone = self.entries.split_off(&index);
        self.forget(gone);
    }

    /// Forgets the entries up to `index` (purged).
    fn purge(&mut self, index: u64) {
        let keep = self.entries.split_off(&index.saturating_add(1));
        let gone = std::mem::replace(&mut self.entries, keep);
        self.forget(gone);
    }

    fn forget(&mut self, gone: BTreeMap<u64, (Entry, usize)>) {
        self.bytes -= gone.values().map(|(_, s)| s).sum::<usize>();
    }
}

/// Decodes a log family value into the entry, reading its bytes from `recent` or `payloads` if they are
/// there.
fn resolve(v: &[u8], payloads: &PayloadLog, recent: Option<&Mutex<Recent>>) -> Result<Entry, StorageError> {
    match postcard::from_bytes::<Stored>(v).map_err(sto_read)? {
        Stored::Entry(e) => Ok(e),
        Stored::External { log_id, at } => {
            if let Some(e) = recent.and_then(|r| r.lock().expect("recent entries lock").get(&log_id)) {
                return Ok(e);
            }
            let bytes = bytes::Bytes::from(payloads.read(&at).map_err(sto_read)?);
            let e: Entry = crate::types::decode_shared(&bytes).map_err(sto_read)?;
            if e.log_id != log_id {
                return Err(sto_read(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("segment entry {} where the log expects {log_id}", e.log_id),
                )));
            }
            Ok(e)
        }
    }
}

/// Reads the entries `from..to` of `group`'s log (the app's replay after a restart; openraft reads
/// through [`LogStore`]).
pub fn read_entries(store: &Store, group: GroupId, from: u64, to: u64) -> Result<Vec<Entry>, StorageError> {
    let payloads = store.payload_log(group).map_err(sto_read)?;
    read_range(store, group, &payloads, None, from, Some(to))
}

fn read_range(
    store: &Store,
    group: GroupId,
    payloads: &PayloadLog,
    recent: Option<&Mutex<Recent>>,
    start: u64,
    end: Option<u64>,
) -> Result<Vec<Entry>, StorageError> {
    if let (Some(recent), Some(end)) = (recent, end) {
        if let Some(entries) = recent.lock().expect("recent entries lock").range(start, end) {
            return Ok(entries);
        }
    }
    let mut ro = ReadOptions::default();
    ro.set_iterate_lower_bound(log_key(group, start).to_vec());
    ro.set_iterate_upper_bound(match end {
        Some(e) => log_key(group, e).to_vec(),
        None => store::group_range(group).1,
    });
    let it = store.db().iterator_cf_opt(
        store.cf(CF_LOG),
        ro,
        IteratorMode::From(&log_key(group, start), Direction::Forward),
    );
    let mut out = Vec::new();
    for item in it {
        let (k, v) = item.map_err(sto_read)?;
        let e = resolve(&v, payloads, recent)?;
        debug_assert_eq!(log_index_of(&k), e.log_id.index);
        out.push(e);
    }
    Ok(out)
}

/// Moves a format-1 log (entries inline in [`CF_LOG_V1`]) into [`CF_LOG`], a bounded batch at a time;
/// each batch moves its keys atomically, so an interrupted migration resumes where it stopped.
pub(crate) fn migrate_v1(db: &rocksdb::DB) -> Result<(), RaftStoreError> {
    const BATCH_BYTES: usize = 64 << 20;
    let (old, new) = (db.cf_handle(CF_LOG_V1).expect("family"), db.cf_handle(CF_LOG).expect("family"));
    loop {
        let mut b = WriteBatch::default();
        let mut bytes = 0;
        for item in db.iterator_cf(old, IteratorMode::Start) {
            let (k, v) = item?;
            b.put_cf(new, &k, inline_value(&v));
            b.delete_cf(old, &k);
            bytes += v.len();
            if bytes >= BATCH_BYTES {
                break;
            }
        }
        if b.is_empty() {
            return Ok(());
        }
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        db.write_opt(b, &wo)?;
    }
}

#[derive(Clone)]
pub struct LogStore {
    group: GroupId,
    store: Store,
    payloads: Arc<PayloadLog>,
    recent: Arc<Mutex<Recent>>,
    app: Arc<dyn App>,
    /// Entries encoded to at least this many bytes go to `payloads`.
    min_payload: usize,
    sync_every_entry: bool,
    /// Restarted after a power loss (see `crate::recovery`): never resume leadership from the stored vote.
    recovering: bool,
    /// The commit index openraft last reported and that is not stored yet (see `save_committed`).
    unsaved_committed: Option<Option<LogId>>,
}

impl LogStore {
    pub fn new(group: GroupId, store: Store, app: Arc<dyn App>) -> Result<Self, RaftStoreError> {
        let payloads = store.payload_log(group)?;
        Ok(LogStore {
            group,
            store,
            payloads,
            recent: Arc::default(),
            app,
            min_payload: MIN_PAYLOAD,
            sync_every_entry: false,
            recovering: false,
            unsaved_committed: None,
        })
    }

    /// Adds the commit index not yet stored to `b` (never ahead of the log: openraft commits only what
    /// this replica already holds).
    fn put_unsaved_committed(&mut self, b: &mut WriteBatch) {
        if let Some(committed) = self.unsaved_committed.take() {
            self.store.meta_put(b, self.group, tag::COMMITTED, &committed);
        }
    }

    /// The group restarts after a power loss. openraft resumes leadership at start-up when the stored
    /// vote is committed and ours; a leader that lost its log tail would then re-use indexes of its own
    /// term for new entries, which followers already hold with other contents. The vote is reported as
    /// not committed, so this replica starts as a follower (still bound by the vote it cast).
    pub fn recovering(mut self, yes: bool) -> Self {
        self.recovering = yes;
        self
    }

    /// Entries of at least `bytes` go to segment files ([`MIN_PAYLOAD`] unless changed; tests use 0).
    pub fn min_payload(mut self, bytes: usize) -> Self {
        self.min_payload = bytes;
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
            Some(Ok((_, v))) => Ok(Some(postcard::from_bytes::<Stored>(&v).map_err(sto_read)?.log_id())),
        }
    }

    /// The segment of the first entry after `index` that has its bytes in one. The log is appended in
    /// order (a truncated suffix is rewritten after the entries before it), so no later entry is in an
    /// earlier segment.
    fn first_segment_after(&self, index: u64) -> Result<Option<u64>, StorageError> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(store::group_range(self.group).1);
        let from = log_key(self.group, index + 1);
        let it =
            self.store.db().iterator_cf_opt(self.store.cf(CF_LOG), ro, IteratorMode::From(&from, Direction::Forward));
        for item in it {
            let (_, v) = item.map_err(sto_read)?;
            if let Stored::External { at, .. } = postcard::from_bytes::<Stored>(&v).map_err(sto_read)? {
                return Ok(Some(at.segment));
            }
        }
        Ok(None)
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
        read_range(&self.store, self.group, &self.payloads, Some(&self.recent), start, end)
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
        // Only a hint that speeds up a restart (openraft re-applies up to it at once), and a stale one
        // is harmless: it rides along with the next append or purge instead of costing a RocksDB write
        // of its own on every commit, on every replica, ahead of the apply.
        self.unsaved_committed = Some(committed);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.meta::<Option<LogId>>(tag::COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut b = WriteBatch::default();
        self.put_unsaved_committed(&mut b);
        let cf = self.store.cf(CF_LOG);
        let mut sync = self.sync_every_entry;
        // Every entry in log order with its encoded size (to `recent` once written), and which of them
        // are large (encoded straight into the segment buffer, see `PayloadLog::append_encoded`).
        let mut appended: Vec<(Entry, usize)> = Vec::new();
        let mut large: Vec<usize> = Vec::new();
        for e in entries {
            sync |= needs_sync(&e);
            // Like `store::encode`, postcard fails only on types it cannot express.
            let size = postcard::experimental::serialized_size(&e).expect("postcard sizes log entries");
            if size >= self.min_payload {
                large.push(appended.len());
            } else {
                b.put_cf(cf, log_key(self.group, e.log_id.index), inline_value(&encode(&e)));
            }
            appended.push((e, size));
        }
        let write = || {
            // The large entries' bytes are on disk before their references can be (see `payload_log`).
            if !large.is_empty() {
                let values: Vec<&Entry> = large.iter().map(|&i| &appended[i].0).collect();
                let refs = self.payloads.append_encoded(&values).map_err(|e| e.to_string())?;
                for (&i, at) in large.iter().zip(refs) {
                    let log_id = appended[i].0.log_id;
                    let stored = Stored::External { log_id, at };
                    b.put_cf(cf, log_key(self.group, log_id.index), encode(&stored));
                }
            }
            // Written (and synced, when asked) before the callback: openraft counts this replica toward
            // the quorum only after it.
            if sync { self.store.write_sync(b) } else { self.store.write_nosync(b) }.map_err(|e| e.to_string())
        };
        // A plain RocksDB write takes microseconds; segment writes and fsyncs take milliseconds.
        let res = if sync || !large.is_empty() { crate::blocking::io(write) } else { write() };
        match res {
            Ok(()) => {
                let mut recent = self.recent.lock().expect("recent entries lock");
                for (e, size) in appended {
                    recent.insert(e, size);
                }
                drop(recent);
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.clone())));
                Err(sto_write(std::io::Error::other(e)))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.recent.lock().expect("recent entries lock").truncate(log_id.index);
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
        self.put_unsaved_committed(&mut b);
        self.store.meta_put(&mut b, self.group, tag::LAST_PURGED, &log_id);
        b.delete_range_cf(self.store.cf(CF_LOG), log_key(self.group, 0), log_key(self.group, log_id.index + 1));
        self.store.write_sync(b).map_err(sto_write)?;
        self.recent.lock().expect("recent entries lock").purge(log_id.index);
        // Then the segments before the oldest one still referenced (all of them if none is).
        if !self.payloads.is_empty() {
            let keep = self.first_segment_after(log_id.index)?;
            self.payloads.remove_before(keep.unwrap_or(u64::MAX)).map_err(sto_write)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::KvApp;
    use crate::types::Cmd;
    use bytes::Bytes;
    use openraft::storage::RaftLogStorageExt;
    use openraft::CommittedLeaderId;

    fn entry(index: u64, len: usize) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(Cmd(Bytes::from(vec![index as u8; len]))),
        }
    }

    /// A log store for `g` over a fresh RocksDB (the directory lives as long as the first value).
    fn open_log(g: GroupId) -> (tempfile::TempDir, Store, LogStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let log = LogStore::new(g, store.clone(), Arc::new(KvApp)).unwrap();
        (dir, store, log)
    }

    fn segments(dir: &std::path::Path, group: GroupId) -> usize {
        std::fs::read_dir(crate::payload_log::group_dir(dir, group)).map_or(0, |d| d.count())
    }

    #[test]
    fn an_inline_value_is_the_encoding_of_stored_entry() {
        let e = entry(3, 10);
        let expected = encode(&Stored::Entry(e.clone()));
        assert_eq!(inline_value(&encode(&e)), expected);
    }

    #[tokio::test]
    async fn large_entries_live_in_segments_until_purged() {
        let g = GroupId::from(5);
        let (dir, store, mut log) = open_log(g);
        let entries: Vec<Entry> = (1..=6).map(|i| entry(i, if i % 2 == 0 { 100 } else { 200_000 })).collect();
        log.blocking_append(entries.clone()).await.unwrap();
        assert_eq!(segments(dir.path(), g), 1);
        assert_eq!(log.try_get_log_entries(1..7).await.unwrap(), entries);
        assert_eq!(read_entries(&store, g, 2, 5).unwrap(), entries[1..4].to_vec());
        // A value in RocksDB for a large entry is a reference, not the bytes.
        let raw = store.db().get_cf(store.cf(CF_LOG), log_key(g, 1)).unwrap().unwrap();
        assert!(raw.len() < 100, "{} bytes", raw.len());
        assert_eq!(log.get_log_state().await.unwrap().last_log_id, Some(entries[5].log_id));

        // After a restart, appends go to a new segment; purging up to an entry of the first one keeps it.
        drop(log);
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let mut log = LogStore::new(g, store.clone(), Arc::new(KvApp)).unwrap();
        log.blocking_append(vec![entry(7, 300_000)]).await.unwrap();
        assert_eq!(segments(dir.path(), g), 2);
        log.purge(entries[3].log_id).await.unwrap();
        assert_eq!(segments(dir.path(), g), 2, "entry 5 still needs the first segment");
        assert_eq!(log.try_get_log_entries(5..8).await.unwrap()[0], entries[4]);
        log.purge(entries[5].log_id).await.unwrap();
        assert_eq!(segments(dir.path(), g), 1);
        assert_eq!(log.try_get_log_entries(7..8).await.unwrap(), vec![entry(7, 300_000)]);
        log.purge(entry(7, 0).log_id).await.unwrap();
        assert_eq!(segments(dir.path(), g), 0);
        store.purge_group(g).unwrap();
    }

    #[tokio::test]
    async fn recent_entries_are_read_from_memory_until_truncated() {
        let g = GroupId::from(5);
        let (_dir, store, mut log) = open_log(g);
        let entries: Vec<Entry> = (1..=5).map(|i| entry(i, 100)).collect();
        log.blocking_append(entries.clone()).await.unwrap();
        // Behind the log store's back, RocksDB loses them: what answers now is the memory.
        let (lo, hi) = store::group_range(g);
        store.db().delete_range_cf(store.cf(CF_LOG), lo, hi).unwrap();
        assert_eq!(log.try_get_log_entries(2..5).await.unwrap(), entries[1..4].to_vec());
        // An open-ended range is not known to be complete in memory: RocksDB answers that.
        assert!(log.try_get_log_entries(2..).await.unwrap().is_empty());
        // A truncation drops the entries from there on from memory too.
        log.truncate(entries[3].log_id).await.unwrap();
        assert!(log.try_get_log_entries(2..5).await.unwrap().is_empty());
        assert_eq!(log.try_get_log_entries(1..4).await.unwrap(), entries[..3].to_vec());
    }

    #[test]
    fn recent_entries_are_bounded_in_number() {
        let mut recent = Recent::default();
        for i in 1..=RECENT_ENTRIES as u64 + 1 {
            recent.insert(entry(i, 10), 10);
        }
        let last = RECENT_ENTRIES as u64 + 2;
        assert!(recent.range(1, last).is_none(), "the oldest entry went");
        assert_eq!(recent.range(2, last).map(|v| v.len()), Some(RECENT_ENTRIES));
        assert!(recent.range(3, 3).is_none());
    }

    #[tokio::test]
    async fn a_damaged_segment_is_a_storage_error() {
        let g = GroupId::from(5);
        let (dir, store, log) = open_log(g);
        let mut log = log.min_payload(0);
        log.blocking_append(vec![entry(1, 5_000)]).await.unwrap();
        let seg = std::fs::read_dir(crate::payload_log::group_dir(dir.path(), g)).unwrap().next().unwrap().unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(seg.path()).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, b"x", 1000).unwrap();
        // This log store still holds the entry in memory; a restarted one reads the segment.
        assert_eq!(log.try_get_log_entries(1..2).await.unwrap(), vec![entry(1, 5_000)]);
        let mut log = LogStore::new(g, store.clone(), Arc::new(KvApp)).unwrap();
        assert!(log.try_get_log_entries(1..2).await.is_err());
    }

    #[test]
    fn a_format_1_log_is_moved_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let g = GroupId::from(9);
        let entries: Vec<Entry> = (1..=3).map(|i| entry(i, 1000 * i as usize)).collect();
        {
            let store = Store::open(dir.path()).unwrap();
            let db = store.db();
            for e in &entries {
                db.put_cf(store.cf(CF_LOG_V1), log_key(g, e.log_id.index), encode(e)).unwrap();
            }
            db.put(b"ferrum.raftstore.format", 1u32.to_be_bytes()).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(read_entries(&store, g, 1, 4).unwrap(), entries);
        assert!(store.db().iterator_cf(store.cf(CF_LOG_V1), IteratorMode::Start).next().is_none());
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(read_entries(&store, g, 1, 4).unwrap(), entries);
    }
}
