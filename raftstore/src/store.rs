//! The instance's one RocksDB and its key layout.
//!
//! Column families (names are persisted: never rename or reuse):
//! - `raft_log2`: `group(8 BE) | index(8 BE)` -> postcard [`crate::log_store::Stored`]: the entry, or
//!   where its bytes are in the group's segment files ([`crate::payload_log`]). Big-endian so a group's
//!   log is one contiguous, ordered key range.
//! - `raft_log`: the same keys -> postcard `Entry`, format 1; moved to `raft_log2` at open, then empty.
//! - `raft_meta`: `group(8 BE) | tag(1)` -> per-group records, tags below.
//! - `sm_data`:   `group(8 BE) | app key` -> the state machine data of the group's [`crate::App`].
//!
//! Every group lives under its own 8-byte prefix in each family, so creating a group is free and removing
//! one is three range deletions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ferrum_proto::GroupId;
use rocksdb::{BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, Options, WriteBatch, WriteOptions, DB};
use serde::{de::DeserializeOwned, Serialize};

use crate::durability::{self, LastStop};
use crate::error::RaftStoreError;
use crate::payload_log::{self, PayloadLog};

pub const CF_LOG: &str = "raft_log2";
/// The log family of format 1 (entries inline, no segment files); emptied into [`CF_LOG`] at open.
pub const CF_LOG_V1: &str = "raft_log";
pub const CF_META: &str = "raft_meta";
pub const CF_DATA: &str = "sm_data";

/// Tags of per-group records in [`CF_META`]. Persisted: never reuse a value.
pub mod tag {
    pub const VOTE: u8 = 1;
    pub const COMMITTED: u8 = 2;
    pub const LAST_PURGED: u8 = 3;
    pub const APPLIED: u8 = 4;
    pub const MEMBERSHIP: u8 = 5;
    pub const SNAPSHOT_META: u8 = 6;
    pub const GROUP_DESC: u8 = 7;
}

/// Format version of what this crate writes; stored under [`FORMAT_KEY`] in the default family.
pub const FORMAT_VERSION: u32 = 2;
const FORMAT_KEY: &[u8] = b"ferrum.raftstore.format";

/// How the RocksDB is opened (from the instance's config).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// One LRU block cache shared by every family, i.e. by all the instance's groups.
    pub block_cache_bytes: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { block_cache_bytes: (crate::instance::DEFAULT_BLOCK_CACHE_MIB << 20) as usize }
    }
}

/// Shared handle to the instance's RocksDB.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: DB,
    dir: PathBuf,
    last_stop: LastStop,
    payloads: Mutex<HashMap<GroupId, Arc<PayloadLog>>>,
}

impl Store {
    /// Opens (or creates) the RocksDB under `dir/rocksdb` with default options; snapshot files go to
    /// `dir/snapshots`.
    pub fn open(dir: &Path) -> Result<Store, RaftStoreError> {
        Store::open_with(dir, &StoreOptions::default())
    }

    pub fn open_with(dir: &Path, options: &StoreOptions) -> Result<Store, RaftStoreError> {
        let path = dir.join("rocksdb");
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        // Many small groups write concurrently; let RocksDB merge their synced WAL writes (group commit).
        opts.set_enable_pipelined_write(true);
        opts.set_max_background_jobs(2);
        let cache = Cache::new_lru_cache(options.block_cache_bytes);
        let cfs = [
            ColumnFamilyDescriptor::new(CF_LOG, log_options(&cache)),
            ColumnFamilyDescriptor::new(CF_LOG_V1, log_options(&cache)),
            ColumnFamilyDescriptor::new(CF_META, with_cache(Options::default(), &cache, false)),
            ColumnFamilyDescriptor::new(CF_DATA, with_cache(Options::default(), &cache, true)),
        ];
        let db = DB::open_cf_descriptors(&opts, &path, cfs)
            .map_err(|source| RaftStoreError::Open { path: path.clone(), source })?;
        match db.get(FORMAT_KEY)? {
            None => db.put(FORMAT_KEY, FORMAT_VERSION.to_be_bytes())?,
            Some(v) if v.as_slice() == FORMAT_VERSION.to_be_bytes() => {}
            Some(v) if v.as_slice() == 1u32.to_be_bytes() => {
                crate::log_store::migrate_v1(&db)?;
                let mut wo = WriteOptions::default();
                wo.set_sync(true);
                db.put_opt(FORMAT_KEY, FORMAT_VERSION.to_be_bytes(), &wo)?;
            }
            Some(v) => {
                return Err(RaftStoreError::Corrupt {
                    what: "format version",
                    detail: format!("{path:?} has format {v:?}, this build reads {FORMAT_VERSION}"),
                })
            }
        }
        let last_stop = durability::arm(dir).map_err(|source| RaftStoreError::Io { path: dir.join("BOOT"), source })?;
        let payloads = Mutex::new(HashMap::new());
        Ok(Store { inner: Arc::new(Inner { db, dir: dir.to_path_buf(), last_stop, payloads }) })
    }

    /// The segment files holding `group`'s large log entries (opened on first use, then shared).
    pub fn payload_log(&self, group: GroupId) -> Result<Arc<PayloadLog>, RaftStoreError> {
        let mut map = self.inner.payloads.lock().expect("payload logs lock");
        if let Some(p) = map.get(&group) {
            return Ok(p.clone());
        }
        let dir = payload_log::group_dir(&self.inner.dir, group);
        let p = Arc::new(PayloadLog::open(dir.clone()).map_err(|source| RaftStoreError::Io { path: dir, source })?);
        map.insert(group, p.clone());
        Ok(p)
    }

    /// How the previous run stopped: whether this instance's log may miss entries it acknowledged.
    pub fn last_stop(&self) -> LastStop {
        self.inner.last_stop
    }

    /// Syncs the WAL and records a clean stop (at shutdown, after every group stopped).
    pub fn close_cleanly(&self) -> Result<(), RaftStoreError> {
        self.sync_wal()?;
        let dir = &self.inner.dir;
        durability::mark_clean(dir).map_err(|source| RaftStoreError::Io { path: dir.join("BOOT"), source })
    }

    pub fn db(&self) -> &DB {
        &self.inner.db
    }

    pub fn cf(&self, name: &str) -> &ColumnFamily {
        // The families are created at open; a missing one is a programming error.
        self.inner.db.cf_handle(name).expect("column family created at open")
    }

    pub fn snapshot_dir(&self, group: GroupId) -> PathBuf {
        self.inner.dir.join("snapshots").join(group.to_string())
    }

    /// Writes a batch and waits until it is on disk (fsync of the WAL). Concurrent synced writes of
    /// different groups are merged by RocksDB into one fsync.
    pub fn write_sync(&self, batch: WriteBatch) -> Result<(), rocksdb::Error> {
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.inner.db.write_opt(batch, &wo)
    }

    /// Writes a batch to the WAL without waiting for fsync; it becomes durable with the next synced
    /// write or [`Store::sync_wal`].
    pub fn write_nosync(&self, batch: WriteBatch) -> Result<(), rocksdb::Error> {
        self.inner.db.write(batch)
    }

    pub fn sync_wal(&self) -> Result<(), rocksdb::Error> {
        self.inner.db.flush_wal(true)
    }

    pub fn meta_get<T: DeserializeOwned>(&self, group: GroupId, tag: u8) -> Result<Option<T>, RaftStoreError> {
        match self.inner.db.get_cf(self.cf(CF_META), meta_key(group, tag))? {
            None => Ok(None),
            Some(v) => postcard::from_bytes(&v).map(Some).map_err(|e| RaftStoreError::Corrupt {
                what: "raft_meta",
                detail: format!("group {group} tag {tag}: {e}"),
            }),
        }
    }

    pub fn meta_put<T: Serialize>(&self, batch: &mut WriteBatch, group: GroupId, tag: u8, value: &T) {
        batch.put_cf(self.cf(CF_META), meta_key(group, tag), encode(value));
    }

    /// Group ids that have a [`tag::GROUP_DESC`] record, i.e. the groups hosted by this instance.
    pub fn hosted_groups(&self) -> Result<Vec<GroupId>, RaftStoreError> {
        let mut out = Vec::new();
        for item in self.inner.db.iterator_cf(self.cf(CF_META), rocksdb::IteratorMode::Start) {
            let (k, _) = item?;
            if k.len() == 9 && k[8] == tag::GROUP_DESC {
                out.push(GroupId::from(u64::from_be_bytes(k[..8].try_into().expect("8 bytes"))));
            }
        }
        Ok(out)
    }

    /// Deletes everything a group has in every family (used when a group is removed from this instance).
    pub fn purge_group(&self, group: GroupId) -> Result<(), RaftStoreError> {
        let (lo, hi) = group_range(group);
        let mut b = WriteBatch::default();
        for cf in [CF_LOG, CF_LOG_V1, CF_META, CF_DATA] {
            b.delete_range_cf(self.cf(cf), &lo, &hi);
        }
        self.write_sync(b)?;
        // After the references are gone: a crash in between leaves files that nothing points at.
        let payloads = self.payload_log(group)?;
        payloads.remove_all().map_err(|source| RaftStoreError::Io { path: payloads.dir().to_path_buf(), source })?;
        self.inner.payloads.lock().expect("payload logs lock").remove(&group);
        let dir = self.snapshot_dir(group);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(RaftStoreError::Io { path: dir, source }),
        }
    }
}

/// The log family holds data partitions' file bytes (MiB entries) until a snapshot lets them go: large
/// entries go to blob files at flush, so compactions move only small references instead of rewriting
/// the bytes; nothing is compressed (file data rarely compresses, and the entries are short-lived).
fn log_options(cache: &Cache) -> Options {
    let mut o = with_cache(Options::default(), cache, false);
    o.set_compression_type(rocksdb::DBCompressionType::None);
    o.set_enable_blob_files(true);
    o.set_min_blob_size(16 << 10);
    o.set_blob_file_size(256 << 20);
    o.set_blob_compression_type(rocksdb::DBCompressionType::None);
    o.set_enable_blob_gc(true);
    o
}

/// Block-based tables reading through the instance's shared `cache`; with `bloom`, a 10-bit whole-key
/// filter per SST (about 1% false positives), so a point read, present or not, touches one data block
/// instead of one per level. Index and filter blocks stay outside the cache, held by the table readers
/// (a few MiB at 1,000,000 files; an attempt with them inside made the metanodes CPU-bound). No prefix
/// extractor, so iterators keep total order.
fn with_cache(mut o: Options, cache: &Cache, bloom: bool) -> Options {
    let mut t = BlockBasedOptions::default();
    t.set_block_cache(cache);
    if bloom {
        t.set_bloom_filter(10.0, false);
        t.set_whole_key_filtering(true);
    }
    o.set_block_based_table_factory(&t);
    o
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // postcard only fails on types it cannot express (e.g. unsized sequences): a programming error.
    postcard::to_stdvec(value).expect("postcard encodes our record types")
}

pub fn group_prefix(group: GroupId) -> [u8; 8] {
    group.get().to_be_bytes()
}

/// `[group prefix, next group prefix)`; the last group id uses an all-0xff 9-byte bound.
pub fn group_range(group: GroupId) -> (Vec<u8>, Vec<u8>) {
    let lo = group_prefix(group).to_vec();
    let hi = match group.get().checked_add(1) {
        Some(n) => n.to_be_bytes().to_vec(),
        None => vec![0xff; 9],
    };
    (lo, hi)
}

pub fn meta_key(group: GroupId, tag: u8) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[..8].copy_from_slice(&group_prefix(group));
    k[8] = tag;
    k
}

pub fn log_key(group: GroupId, index: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&group_prefix(group));
    k[8..].copy_from_slice(&index.to_be_bytes());
    k
}

pub fn log_index_of(key: &[u8]) -> u64 {
    u64::from_be_bytes(key[8..16].try_into().expect("log keys are 16 bytes"))
}

pub fn data_key(group: GroupId, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + key.len());
    k.extend_from_slice(&group_prefix(group));
    k.extend_from_slice(key);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The options RocksDB recorded for a family, from the newest OPTIONS file it wrote at open.
    fn recorded_options(dir: &Path, cf: &str) -> String {
        let db_dir = dir.join("rocksdb");
        let newest = std::fs::read_dir(&db_dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("OPTIONS-"))
            .max_by_key(|n| n[8..].parse::<u64>().unwrap_or(0))
            .expect("an OPTIONS file");
        let text = std::fs::read_to_string(db_dir.join(newest)).unwrap();
        let start = text.find(&format!("[TableOptions/BlockBasedTable \"{cf}\"]")).expect("family's table options");
        let rest = &text[start + 1..];
        rest[..rest.find("\n[").unwrap_or(rest.len())].to_string()
    }

    #[test]
    fn block_cache_and_bloom_filters_are_applied() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(dir.path(), &StoreOptions { block_cache_bytes: 3 << 20 }).unwrap();
        for cf in [CF_LOG, CF_META, CF_DATA] {
            let capacity = store.db().property_int_value_cf(store.cf(cf), "rocksdb.block-cache-capacity").unwrap();
            assert_eq!(capacity, Some(3 << 20), "{cf}");
        }
        let data = recorded_options(dir.path(), CF_DATA);
        assert!(data.contains("filter_policy=bloomfilter"), "{data}");
        assert!(data.contains("whole_key_filtering=true"), "{data}");
        assert!(data.contains("cache_index_and_filter_blocks=false"), "{data}");
        assert!(!recorded_options(dir.path(), CF_LOG).contains("filter_policy=bloomfilter"));
    }
}
