//! openraft's `RaftStateMachine` for one group: applies committed entries through the group's [`App`],
//! builds and installs snapshot files.
//!
//! Durability: an applied entry's writes and the new applied index go into one RocksDB batch that is
//! written to the WAL without an fsync. After a crash the data and the applied index therefore agree,
//! and Raft replays the (fsynced) log from there. Before a log prefix is purged the WAL is synced
//! (see `LogStore::purge`), and an installed snapshot is written with an fsync.

use std::io::{BufReader, BufWriter, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ferrum_proto::GroupId;
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use rocksdb::{IteratorMode, ReadOptions, WriteBatch};

use crate::app::{App, GroupBatch, GroupView};
use crate::error::{sto_read, sto_write};
use crate::payload_log::MIN_PAYLOAD;
use crate::snapshot::{SnapshotReader, SnapshotWriter};
use crate::snapshot_policy::SnapshotSize;
use crate::snapshot_send::{section_key, SECTION_EXTERNAL, SECTION_EXTERNAL_AT_SEND, SECTION_KEYSPACE};
use crate::store::{group_range, meta_key, tag, Store, CF_DATA, CF_META};
use crate::types::{Entry, LogId, Reply, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig};

pub struct StateMachine {
    group: GroupId,
    store: Store,
    app: Arc<dyn App>,
    applied: Option<LogId>,
    membership: StoredMembership,
    /// Serialises "record this file as the current snapshot, delete the others" between a snapshot being
    /// built here and one being installed from the leader, so the record never names a deleted file.
    snap_lock: Arc<std::sync::Mutex<()>>,
    /// Keys of the latest snapshot, for [`crate::snapshot_policy`].
    size: Arc<SnapshotSize>,
}

impl StateMachine {
    pub fn open(group: GroupId, store: Store, app: Arc<dyn App>) -> Result<Self, StorageError> {
        // Stored as `Option<LogId>` (a snapshot of an empty group has none): decode that type exactly.
        let applied: Option<LogId> = store.meta_get::<Option<LogId>>(group, tag::APPLIED).map_err(sto_read)?.flatten();
        let membership: StoredMembership =
            store.meta_get(group, tag::MEMBERSHIP).map_err(sto_read)?.unwrap_or_default();
        app.on_reload(&GroupView::new(&store, group));
        Ok(StateMachine { group, store, app, applied, membership, snap_lock: Arc::default(), size: Arc::default() })
    }

    /// Keys of the group's latest snapshot, kept up to date by its builds and installs.
    pub fn snapshot_size(&self) -> Arc<SnapshotSize> {
        self.size.clone()
    }

    fn snapshot_path(&self, id: &str) -> PathBuf {
        self.store.snapshot_dir(self.group).join(format!("{id}.snap"))
    }

    /// Applies `entries` in order: the app's changes and the applied index in one RocksDB write each.
    fn apply_blocking(&mut self, entries: Vec<Entry>) -> Result<Vec<Reply>, StorageError> {
        let mut replies = Vec::with_capacity(entries.len());
        for entry in entries {
            let mut batch = GroupBatch::new(&self.store, self.group);
            let reply = match &entry.payload {
                EntryPayload::Blank => Reply::default(),
                // A sync marker (see `durability`): its work was done by the log store.
                EntryPayload::Normal(cmd) if cmd.0.is_empty() => Reply::default(),
                EntryPayload::Normal(cmd) => {
                    let view = GroupView::new(&self.store, self.group);
                    Reply(self.app.apply(&view, &mut batch, entry.log_id.index, &cmd.0))
                }
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                    Reply::default()
                }
            };
            let mut wb = batch.batch;
            self.store.meta_put(&mut wb, self.group, tag::APPLIED, &Some(entry.log_id));
            // Stored with the entry that changes it (and by a snapshot's install), so always current.
            if matches!(entry.payload, EntryPayload::Membership(_)) {
                self.store.meta_put(&mut wb, self.group, tag::MEMBERSHIP, &self.membership);
            }
            self.store.write_nosync(wb).map_err(sto_write)?;
            self.applied = Some(entry.log_id);
            replies.push(reply);
        }
        Ok(replies)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Reply>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        // Large commands (file data) make the app write files: see `crate::blocking`.
        let large = entries.iter().any(|e| matches!(&e.payload, EntryPayload::Normal(c) if c.0.len() >= MIN_PAYLOAD));
        if large {
            crate::blocking::io(|| self.apply_blocking(entries))
        } else {
            self.apply_blocking(entries)
        }
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            group: self.group,
            store: self.store.clone(),
            app: self.app.clone(),
            snap_lock: self.snap_lock.clone(),
            size: self.size.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let dir = self.store.snapshot_dir(self.group);
        std::fs::create_dir_all(&dir).map_err(sto_write)?;
        let path = dir.join(format!("recv-{}.part", unique()));
        let f = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path).map_err(sto_write)?;
        Ok(Box::new(tokio::fs::File::from_std(f)))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        let mut received = snapshot.into_std().await;
        let final_path = self.snapshot_path(&meta.snapshot_id);
        let store = self.store.clone();
        let group = self.group;
        let meta2 = meta.clone();
        let app = self.app.clone();
        let lock = self.snap_lock.clone();
        let keys = tokio::task::spawn_blocking(move || {
            install_blocking(&store, &*app, &lock, group, &meta2, &mut received, &final_path)
        })
        .await
        .map_err(sto_write)??;
        self.size.set(keys);
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.app.on_reload(&GroupView::new(&self.store, self.group));
        tracing::info!(group = %self.group, snapshot = %meta.snapshot_id, "installed snapshot from leader");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let Some(meta): Option<SnapshotMeta> = self.store.meta_get(self.group, tag::SNAPSHOT_META).map_err(sto_read)?
        else {
            return Ok(None);
        };
        let f = tokio::fs::File::open(self.snapshot_path(&meta.snapshot_id)).await.map_err(sto_read)?;
        Ok(Some(Snapshot { meta, snapshot: Box::new(f) }))
    }
}

/// Verifies the received file completely, then replaces the group's keyspace with it in one synced
/// batch (so a crash leaves either the old state or the new one), and keeps its keyspace as the
/// current snapshot for serving other followers (marked like a built one when the app has external
/// state, which is dumped afresh when sent: see `crate::snapshot_send`). Returns the keys installed.
fn install_blocking(
    store: &Store,
    app: &dyn App,
    snap_lock: &std::sync::Mutex<()>,
    group: GroupId,
    meta: &SnapshotMeta,
    received: &mut std::fs::File,
    final_path: &Path,
) -> Result<u64, StorageError> {
    received.seek(SeekFrom::Start(0)).map_err(sto_read)?;
    let mut reader = SnapshotReader::new(BufReader::new(&mut *received)).map_err(sto_read)?;
    let cf = store.cf(CF_DATA);
    let (lo, hi) = group_range(group);
    let mut wb = WriteBatch::default();
    wb.delete_range_cf(cf, &lo, &hi);
    app.begin_restore().map_err(sto_write)?;
    // Our current snapshot from now on (the received file is a temp file that openraft drops).
    let tmp = final_path.with_extension("tmp");
    let mut kept =
        SnapshotWriter::new(BufWriter::new(std::fs::File::create(&tmp).map_err(sto_write)?)).map_err(sto_write)?;
    if app.has_external() {
        kept.put(&[SECTION_EXTERNAL_AT_SEND], &[]).map_err(sto_write)?;
    }
    let mut keys = 0;
    while let Some((k, v)) = reader.next_pair().map_err(sto_read)? {
        match k.first() {
            Some(&SECTION_KEYSPACE) => {
                keys += 1;
                kept.put(&k, &v).map_err(sto_write)?;
                wb.put_cf(cf, crate::store::data_key(group, &k[1..]), v)
            }
            Some(&SECTION_EXTERNAL) => app.restore_external(&k[1..], &v).map_err(sto_write)?,
            Some(&SECTION_EXTERNAL_AT_SEND) => {
                return Err(sto_read(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "snapshot sent without its external state",
                )))
            }
            _ => {
                return Err(sto_read(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "snapshot pair without section",
                )))
            }
        }
    }
    let (buf, _) = kept.finish().map_err(sto_write)?;
    let out = buf.into_inner().map_err(|e| sto_write(e.into_error()))?;
    out.sync_all().map_err(sto_write)?;
    drop(out);
    std::fs::rename(&tmp, final_path).map_err(sto_write)?;
    let _g = snap_lock.lock().unwrap_or_else(|p| p.into_inner());
    store.meta_put(&mut wb, group, tag::APPLIED, &meta.last_log_id);
    store.meta_put(&mut wb, group, tag::MEMBERSHIP, &meta.last_membership);
    store.meta_put(&mut wb, group, tag::SNAPSHOT_META, meta);
    store.write_sync(wb).map_err(sto_write)?;
    app.finish_restore().map_err(sto_write)?;
    remove_other_files(final_path);
    Ok(keys)
}

/// Deletes every snapshot file (and partial transfer) of the group except `keep`.
fn remove_other_files(keep: &Path) {
    let Some(dir) = keep.parent() else { return };
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        if e.path() != keep {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// A name part no other snapshot file of this instance has (time in nanoseconds, hex).
pub(crate) fn unique() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{nanos:x}")
}

pub struct SnapshotBuilder {
    group: GroupId,
    store: Store,
    app: Arc<dyn App>,
    snap_lock: Arc<std::sync::Mutex<()>>,
    size: Arc<SnapshotSize>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let store = self.store.clone();
        let group = self.group;
        let app = self.app.clone();
        let lock = self.snap_lock.clone();
        let (meta, path, keys) = tokio::task::spawn_blocking(move || build_blocking(&store, &*app, &lock, group))
            .await
            .map_err(sto_write)??;
        self.size.set(keys);
        let f = tokio::fs::File::open(&path).await.map_err(sto_read)?;
        Ok(Snapshot { meta, snapshot: Box::new(f) })
    }
}

/// Dumps the group's keyspace from one RocksDB snapshot, so the data and the applied index it is
/// labelled with are consistent even while new entries are applied concurrently. Also returns how many
/// keys the keyspace had. External state is only marked (see `crate::snapshot_send`).
fn build_blocking(
    store: &Store,
    app: &dyn App,
    snap_lock: &std::sync::Mutex<()>,
    group: GroupId,
) -> Result<(SnapshotMeta, PathBuf, u64), StorageError> {
    let db = store.db();
    let snap = db.snapshot();
    let decode = |tag: u8| -> Result<Option<Vec<u8>>, StorageError> {
        snap.get_cf(store.cf(CF_META), meta_key(group, tag)).map_err(sto_read)
    };
    let applied: Option<LogId> = match decode(tag::APPLIED)? {
        Some(v) => postcard::from_bytes(&v).map_err(sto_read)?,
        None => None,
    };
    let membership: StoredMembership = match decode(tag::MEMBERSHIP)? {
        Some(v) => postcard::from_bytes(&v).map_err(sto_read)?,
        None => StoredMembership::default(),
    };
    let id = match applied {
        Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, unique()),
        None => format!("0-0-{}", unique()),
    };
    let dir = store.snapshot_dir(group);
    std::fs::create_dir_all(&dir).map_err(sto_write)?;
    let path = dir.join(format!("{id}.snap"));
    let tmp = path.with_extension("tmp");
    let file = std::fs::File::create(&tmp).map_err(sto_write)?;
    let mut w = SnapshotWriter::new(BufWriter::new(file)).map_err(sto_write)?;
    if app.has_external() {
        w.put(&[SECTION_EXTERNAL_AT_SEND], &[]).map_err(sto_write)?;
    }
    let (lo, hi) = group_range(group);
    let mut ro = ReadOptions::default();
    ro.set_iterate_lower_bound(lo);
    ro.set_iterate_upper_bound(hi);
    ro.set_snapshot(&snap);
    // A one-off scan of the whole group: keep it from evicting the blocks reads need.
    ro.fill_cache(false);
    let mut keys = 0;
    for item in db.iterator_cf_opt(store.cf(CF_DATA), ro, IteratorMode::Start) {
        let (k, v) = item.map_err(sto_read)?;
        w.put(&section_key(SECTION_KEYSPACE, &k[8..]), &v).map_err(sto_write)?;
        keys += 1;
    }
    drop(snap);
    let (buf, _pairs) = w.finish().map_err(sto_write)?;
    let file = buf.into_inner().map_err(|e| sto_write(e.into_error()))?;
    file.sync_all().map_err(sto_write)?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(sto_write)?;
    let meta = SnapshotMeta { last_log_id: applied, last_membership: membership, snapshot_id: id };
    let _g = snap_lock.lock().unwrap_or_else(|p| p.into_inner());
    // A snapshot installed from the leader meanwhile may be newer than ours: never go back to an older one.
    if let Some(current) = store.meta_get::<SnapshotMeta>(group, tag::SNAPSHOT_META).map_err(sto_read)? {
        if current.last_log_id >= meta.last_log_id {
            let _ = std::fs::remove_file(&path);
            let current_path = dir.join(format!("{}.snap", current.snapshot_id));
            return Ok((current, current_path, keys));
        }
    }
    let mut wb = WriteBatch::default();
    store.meta_put(&mut wb, group, tag::SNAPSHOT_META, &meta);
    store.write_sync(wb).map_err(sto_write)?;
    remove_other_files(&path);
    Ok((meta, path, keys))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::KvApp;
    use openraft::{CommittedLeaderId, Entry as RaftEntry, EntryPayload, Membership};

    fn log_id(term: u64, node: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, node), index)
    }

    /// What a restart reads back must be exactly what apply stored: a wrong applied index makes a
    /// restarted replica re-apply (or skip) entries.
    #[tokio::test]
    async fn applied_state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let group = GroupId::from(3);
        let mut sm = StateMachine::open(group, store.clone(), Arc::new(KvApp)).unwrap();
        let members = Membership::new(vec![std::collections::BTreeSet::from([1u64, 2, 3])], None);
        let entries = vec![
            RaftEntry { log_id: log_id(1, 3, 1), payload: EntryPayload::Membership(members) },
            RaftEntry { log_id: log_id(7, 3, 31), payload: EntryPayload::Blank },
        ];
        sm.apply(entries).await.unwrap();
        let before = sm.applied_state().await.unwrap();
        drop(sm);
        let mut reopened = StateMachine::open(group, store, Arc::new(KvApp)).unwrap();
        let after = reopened.applied_state().await.unwrap();
        assert_eq!(after, before);
        assert_eq!(after.0, Some(log_id(7, 3, 31)));
    }
}
