//! The external state of one data partition: its extents on disk, and what has been fsynced.
//!
//! What is fsynced when (the data path's durability argument):
//! 1. A write's bytes travel inside its Raft log entry, which the raftstore fsyncs (RocksDB WAL) on a
//!    majority of replicas before the write is acknowledged. That is what makes an acknowledged write
//!    survive the crash of any minority: the log can always rebuild it.
//! 2. Applying an entry writes the extent files **without** fsync (page cache), and marks them dirty.
//! 3. [`Partition::sync`] fsyncs the dirty extents (and the directory, after creates and deletes),
//!    then durably records the applied log index they cover in `SYNCED`. It runs before the raftstore
//!    purges a log prefix (`App::sync_external`), so no entry leaves the log before its effect is on
//!    disk, and every second or so in the background, to keep the next step short.
//! 4. The raftstore may persist a higher applied index than `SYNCED` (its RocksDB batch reaches disk
//!    with the next log fsync, the extent pages may not). After a power loss the datanode therefore
//!    re-applies the entries after `SYNCED` from the log when it opens the partition (`replay`).
//!
//! A SIGKILL loses nothing of 2 (the page cache survives the process); 3 and 4 cover power loss.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use ferrum_proto::{ExtentId, PartitionId};

use crate::extent::{self, Extent};
use crate::layout::{sync_dir, Layout};
use crate::snapshot::Staging;

pub struct Partition {
    id: PartitionId,
    layout: Layout,
    live: RwLock<Live>,
    /// Sum of the extents' sizes, kept up to date by every size change (heartbeats read it each second).
    used: AtomicU64,
    dirty: Mutex<Dirty>,
    /// Serialises syncs and generation swaps; holds the index last recorded in `SYNCED`.
    synced: Mutex<u64>,
    /// A snapshot being received, between `begin_restore` and `finish_restore`.
    staging: Mutex<Option<Staging>>,
}

struct Live {
    gen: u64,
    dir: PathBuf,
    extents: HashMap<ExtentId, Arc<Extent>>,
}

#[derive(Default)]
struct Dirty {
    extents: HashMap<ExtentId, Arc<Extent>>,
    /// Extents were created or deleted: the directory itself needs an fsync.
    dir: bool,
    /// Highest log index applied so far; everything it covers is written (maybe not synced).
    applied: u64,
}

/// What a partition reports to the master.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub used_bytes: u64,
    pub extents: u64,
}

impl Partition {
    /// The partition's directory (every generation and its extents live below it).
    pub fn root(&self) -> &std::path::Path {
        self.layout.root()
    }

    /// Opens (or creates) the partition under `root`. `applied` is the raftstore's applied index and
    /// `applied_marker` an encoding of its full log id, used to finish or discard a snapshot restore
    /// that a crash interrupted (see `snapshot`).
    pub fn open(id: PartitionId, root: PathBuf, applied: u64, applied_marker: &[u8]) -> io::Result<Partition> {
        let layout = Layout::new(root);
        let mut gen = layout.open_or_create()?;
        for g in layout.generations()? {
            if g > gen && Staging::completed_since(&layout, g, applied_marker)? {
                tracing::info!(partition = %id, gen = g, "finishing a snapshot restore interrupted by a crash");
                layout.set_synced(g, applied)?;
                layout.set_current(g)?;
                gen = g;
            }
        }
        for g in layout.generations()? {
            if g != gen {
                layout.remove_gen(g)?;
            }
        }
        let dir = layout.extents_dir(gen);
        let extents = load_extents(&dir)?;
        let synced = layout.synced(gen)?;
        Ok(Partition {
            id,
            layout,
            used: AtomicU64::new(extents.values().map(|e| e.size()).sum()),
            live: RwLock::new(Live { gen, dir, extents }),
            dirty: Mutex::new(Dirty { applied: synced, ..Default::default() }),
            synced: Mutex::new(synced),
            staging: Mutex::new(None),
        })
    }

    pub fn id(&self) -> PartitionId {
        self.id
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn live(&self) -> std::sync::RwLockReadGuard<'_, Live> {
        self.live.read().expect("partition lock poisoned (a panic aborts the process)")
    }

    fn live_mut(&self) -> std::sync::RwLockWriteGuard<'_, Live> {
        self.live.write().expect("partition lock poisoned (a panic aborts the process)")
    }

    /// Taken after `synced` when both are needed, never before.
    fn dirty(&self) -> MutexGuard<'_, Dirty> {
        self.dirty.lock().expect("dirty lock poisoned (a panic aborts the process)")
    }

    /// The live generation's extents directory.
    pub fn extents_dir(&self) -> PathBuf {
        self.live().dir.clone()
    }

    pub fn extent(&self, id: ExtentId) -> Option<Arc<Extent>> {
        self.live().extents.get(&id).cloned()
    }

    /// Every extent, in id order.
    pub fn extents(&self) -> Vec<Arc<Extent>> {
        let mut v: Vec<_> = self.live().extents.values().cloned().collect();
        v.sort_by_key(|e| e.id());
        v
    }

    pub fn usage(&self) -> Usage {
        Usage { used_bytes: self.used.load(Ordering::Relaxed), extents: self.live().extents.len() as u64 }
    }

    /// Records that an extent's size went from `before` to `after`.
    pub fn resized(&self, before: u64, after: u64) {
        if after >= before {
            self.used.fetch_add(after - before, Ordering::Relaxed);
        } else {
            self.used.fetch_sub(before - after, Ordering::Relaxed);
        }
    }

    /// Creates the extent if it does not exist (a re-applied create keeps the existing one).
    pub fn create_extent(&self, id: ExtentId) -> io::Result<Arc<Extent>> {
        let mut live = self.live_mut();
        if let Some(e) = live.extents.get(&id) {
            return Ok(e.clone());
        }
        let e = Arc::new(Extent::create(&live.dir, id)?);
        live.extents.insert(id, e.clone());
        let mut dirty = self.dirty();
        dirty.dir = true;
        dirty.extents.insert(id, e.clone());
        Ok(e)
    }

    /// Deletes the extent's files; false if it did not exist.
    pub fn delete_extent(&self, id: ExtentId) -> io::Result<bool> {
        let mut live = self.live_mut();
        let Some(e) = live.extents.remove(&id) else { return Ok(false) };
        self.resized(e.size(), 0);
        for p in e.paths() {
            match fs::remove_file(p) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
                _ => {}
            }
        }
        let mut dirty = self.dirty();
        dirty.dir = true;
        dirty.extents.remove(&id);
        Ok(true)
    }

    /// Records that `e` was written and is not synced yet.
    pub fn mark_dirty(&self, e: &Arc<Extent>) {
        self.dirty().extents.entry(e.id()).or_insert_with(|| e.clone());
    }

    /// Records that the entry at `index` has been applied (its writes are in the page cache).
    pub fn note_applied(&self, index: u64) {
        let mut d = self.dirty();
        d.applied = d.applied.max(index);
    }

    /// The highest log index applied to the extents.
    pub fn applied(&self) -> u64 {
        self.dirty().applied
    }

    /// The log index up to which the extents are known to be on disk.
    pub fn synced_index(&self) -> u64 {
        *self.synced.lock().expect("sync lock poisoned")
    }

    /// True when something applied is not synced yet.
    pub fn needs_sync(&self) -> bool {
        // Lock order is `synced` before `dirty` (as `sync` and `swap_in` take them): never hold
        // `dirty` while waiting for `synced`.
        let synced = self.synced_index();
        let d = self.dirty();
        !d.extents.is_empty() || d.dir || d.applied > synced
    }

    /// fsyncs every extent written since the last sync, then records the applied index they cover.
    /// Returns that index.
    pub fn sync(&self) -> io::Result<u64> {
        let mut synced = self.synced.lock().expect("sync lock poisoned");
        // Taken together under the lock that `apply` marks under, so `applied` covers only writes
        // that are in the taken set (or in an earlier one).
        let (applied, extents, dir) = {
            let mut d = self.dirty();
            (d.applied, std::mem::take(&mut d.extents), std::mem::take(&mut d.dir))
        };
        let result = (|| {
            for e in extents.values() {
                e.sync()?;
            }
            if dir {
                sync_dir(&self.extents_dir())?;
            }
            if applied > *synced {
                self.layout.set_synced(self.live().gen, applied)?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            // Not synced after all: keep them for the next attempt.
            let mut d = self.dirty();
            for (id, x) in extents {
                d.extents.entry(id).or_insert(x);
            }
            d.dir |= dir;
            return Err(e);
        }
        *synced = (*synced).max(applied);
        Ok(*synced)
    }

    // --- snapshot restore (see `snapshot`) ------------------------------------------------------

    pub(crate) fn staging(&self) -> MutexGuard<'_, Option<Staging>> {
        self.staging.lock().expect("staging lock poisoned")
    }

    /// The next generation number (for a staging dir).
    pub(crate) fn next_gen(&self) -> u64 {
        self.live().gen + 1
    }

    /// Makes a fully written and synced staging generation live: its extents replace the current ones.
    /// `applied` is the log index the restored state covers.
    pub(crate) fn swap_in(&self, gen: u64, applied: u64) -> io::Result<()> {
        let mut synced = self.synced.lock().expect("sync lock poisoned");
        self.layout.set_synced(gen, applied)?;
        self.layout.set_current(gen)?;
        let dir = self.layout.extents_dir(gen);
        let extents = load_extents(&dir)?;
        self.used.store(extents.values().map(|e| e.size()).sum(), Ordering::Relaxed);
        let old = {
            let mut live = self.live_mut();
            let old = live.gen;
            *live = Live { gen, dir, extents };
            old
        };
        *self.dirty() = Dirty { applied, ..Default::default() };
        *synced = applied;
        // Readers still holding old extents keep their open files; the names go now.
        self.layout.remove_gen(old)
    }
}

fn load_extents(dir: &Path) -> io::Result<HashMap<ExtentId, Arc<Extent>>> {
    let mut out = HashMap::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let Some(id) = name.to_str().and_then(extent::parse_data_file) else { continue };
        out.insert(id, Arc::new(Extent::open(dir, id)?));
    }
    Ok(out)
}
