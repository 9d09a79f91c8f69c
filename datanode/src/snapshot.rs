//! A partition's extents in a Raft snapshot: streamed out as key/value pairs by `dump_external` when
//! the raftstore sends a snapshot to a replica (never when it builds one: see
//! `ferrum_raftstore::snapshot_send`), received into a staging generation by `restore_external`, made
//! live by `finish_restore`.
//!
//! Pairs, in order (the raftstore's snapshot file CRC-checks each in a block of its own, uncompressed):
//! ```text
//! "V"                      -> format u32 | block size u32           first
//! "X" id                   -> ()                                    an extent begins
//! "D" id first_block       -> n u32 | n records | bytes             a chunk of up to 16 blocks (1 MiB)
//!                                                                   read under the extent's lock; bytes
//!                                                                   of its non-hole blocks only, so
//!                                                                   holes are never shipped
//! "S" id                   -> size u64                              the extent's final size
//! "END"                    -> ()                                    last
//! ```
//! The dump runs after the snapshot's keyspace was taken and while entries keep being applied, so it
//! may hold effects of entries after the snapshot's index. Re-applying those entries on the restored state gives the same result, because
//! every mutation sets bytes or a size to given values (extent ids are log indexes, never counters).
//!
//! Crash safety of a restore: the staging generation `gen-<n+1>` gets `BASE` (the applied log id
//! before the restore) when it starts, and `COMPLETE` once every pair is written and fsynced, which
//! the raftstore guarantees happens before it commits the snapshot's applied index. At open, a
//! complete staging generation whose BASE differs from the applied log id was committed: it is made
//! live. Any other staging generation is discarded.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use ferrum_proto::ExtentId;

use crate::block::{BlockEntry, BLOCK_SIZE, ENTRY_LEN};
use crate::extent::Extent;
use crate::layout::{sync_dir, write_atomic, Layout, FORMAT_VERSION};
use crate::partition::Partition;

/// Blocks per dumped chunk: 1 MiB (a pair, and a block of the snapshot file, each).
const CHUNK_BLOCKS: u64 = (1 << 20) / BLOCK_SIZE;
const BASE: &str = "BASE";
const COMPLETE: &str = "COMPLETE";

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("partition snapshot: {msg}"))
}

fn key(tag: u8, id: ExtentId, more: Option<u64>) -> Vec<u8> {
    let mut k = vec![tag];
    k.extend_from_slice(&id.get().to_be_bytes());
    if let Some(m) = more {
        k.extend_from_slice(&m.to_be_bytes());
    }
    k
}

fn u64_at(b: &[u8], at: usize) -> io::Result<u64> {
    b.get(at..at + 8).map(|s| u64::from_be_bytes(s.try_into().expect("8"))).ok_or_else(|| invalid("short key".into()))
}

/// Where `dump` puts its pairs (the raftstore's snapshot writer).
pub type Sink<'a> = dyn FnMut(&[u8], &[u8]) -> io::Result<()> + 'a;

/// Streams every extent of `p` into `sink`.
pub fn dump(p: &Partition, sink: &mut Sink<'_>) -> io::Result<()> {
    let mut v = FORMAT_VERSION.to_be_bytes().to_vec();
    v.extend_from_slice(&(BLOCK_SIZE as u32).to_be_bytes());
    sink(b"V", &v)?;
    for e in p.extents() {
        sink(&key(b'X', e.id(), None), &[])?;
        let mut first = 0;
        while let Some((entries, bytes)) = e.chunk(first, CHUNK_BLOCKS)? {
            if entries.iter().any(|e| !e.is_hole()) {
                let mut val = Vec::with_capacity(4 + entries.len() * ENTRY_LEN + bytes.len());
                val.extend_from_slice(&(entries.len() as u32).to_be_bytes());
                for en in &entries {
                    val.extend_from_slice(&en.encode());
                }
                val.extend_from_slice(&bytes);
                sink(&key(b'D', e.id(), Some(first)), &val)?;
            }
            first += CHUNK_BLOCKS;
        }
        sink(&key(b'S', e.id(), None), &e.size().to_be_bytes())?;
    }
    sink(b"END", &[])
}

/// A snapshot being written into a new generation dir.
pub struct Staging {
    gen: u64,
    dir: PathBuf,
    extents: HashMap<ExtentId, Arc<Extent>>,
    complete: bool,
}

impl Staging {
    /// Starts a restore into the partition's next generation; `base` encodes the applied log id now.
    pub fn begin(p: &Partition, base: &[u8]) -> io::Result<()> {
        let layout = p.layout();
        let gen = p.next_gen();
        layout.remove_gen(gen)?;
        let dir = layout.extents_dir(gen);
        fs::create_dir_all(&dir)?;
        write_atomic(&layout.gen_dir(gen).join(BASE), base)?;
        *p.staging() = Some(Staging { gen, dir, extents: HashMap::new(), complete: false });
        Ok(())
    }

    /// Whether staging generation `gen` is complete and was committed (the applied id moved on).
    pub fn completed_since(layout: &Layout, gen: u64, applied_marker: &[u8]) -> io::Result<bool> {
        let dir = layout.gen_dir(gen);
        if !dir.join(COMPLETE).exists() {
            return Ok(false);
        }
        match fs::read(dir.join(BASE)) {
            Ok(base) => Ok(base != applied_marker),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes one pair of a snapshot into the staging generation.
    pub fn put(p: &Partition, k: &[u8], v: &[u8]) -> io::Result<()> {
        let mut guard = p.staging();
        let s = guard.as_mut().ok_or_else(|| invalid("pair outside a restore".into()))?;
        match k.first() {
            Some(b'V') => {
                let bs = v.get(4..8).map(|b| u32::from_be_bytes(b.try_into().expect("4")));
                if bs != Some(BLOCK_SIZE as u32) {
                    return Err(invalid(format!("block size {bs:?}, this build uses {BLOCK_SIZE}")));
                }
            }
            Some(b'E') if k == b"END" => s.complete(p.layout())?,
            Some(b'X') => {
                let id = ExtentId::from(u64_at(k, 1)?);
                s.extents.insert(id, Arc::new(Extent::create(&s.dir, id)?));
            }
            Some(b'D') => {
                let (id, first) = (ExtentId::from(u64_at(k, 1)?), u64_at(k, 9)?);
                let n = v.get(..4).map(|b| u32::from_be_bytes(b.try_into().expect("4")) as usize);
                let n = n.ok_or_else(|| invalid("short chunk".into()))?;
                let bytes_at = 4 + n * ENTRY_LEN;
                if v.len() < bytes_at {
                    return Err(invalid("short chunk".into()));
                }
                let entries: Vec<_> = v[4..bytes_at].chunks_exact(ENTRY_LEN).map(BlockEntry::decode).collect();
                s.extent(id)?.put_chunk(first, &entries, &v[bytes_at..])?;
            }
            Some(b'S') => {
                let id = ExtentId::from(u64_at(k, 1)?);
                s.extent(id)?.set_size(u64_at(v, 0)?)?;
            }
            _ => return Err(invalid(format!("unknown key {k:?}"))),
        }
        Ok(())
    }

    /// Makes the staged generation live; `applied` is the snapshot's log index.
    pub fn finish(p: &Partition, applied: u64) -> io::Result<()> {
        let s = p.staging().take().ok_or_else(|| invalid("finish without a restore".into()))?;
        if !s.complete {
            return Err(invalid("snapshot ended without its END pair".into()));
        }
        drop(s.extents);
        p.swap_in(s.gen, applied)
    }

    fn extent(&self, id: ExtentId) -> io::Result<&Arc<Extent>> {
        self.extents.get(&id).ok_or_else(|| invalid(format!("chunk of extent {id} before its start")))
    }

    /// Every pair is written: make it all durable, then say so.
    fn complete(&mut self, layout: &Layout) -> io::Result<()> {
        for e in self.extents.values() {
            e.sync()?;
        }
        sync_dir(&self.dir)?;
        sync_dir(&layout.gen_dir(self.gen))?;
        write_atomic(&layout.gen_dir(self.gen).join(COMPLETE), b"")?;
        self.complete = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrum_proto::PartitionId;

    fn partition(root: &std::path::Path, marker: &[u8]) -> Partition {
        Partition::open(PartitionId(1), root.to_path_buf(), 10, marker).unwrap()
    }

    fn dump_pairs(p: &Partition) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut pairs = Vec::new();
        dump(p, &mut |k, v| {
            pairs.push((k.to_vec(), v.to_vec()));
            Ok(())
        })
        .unwrap();
        pairs
    }

    fn content(p: &Partition) -> Vec<(ExtentId, Vec<u8>)> {
        p.extents()
            .iter()
            .map(|e| match e.read(0, e.size()).unwrap() {
                crate::extent::ReadResult::Data(b) => (e.id(), b.to_vec()),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// A leader-side partition with a few extents, one of them sparse.
    fn source(dir: &std::path::Path) -> Partition {
        let src = partition(dir, b"x");
        let a = src.create_extent(ExtentId(3)).unwrap();
        a.write(3, 0, &vec![5u8; 3 * BLOCK_SIZE as usize + 17]).unwrap();
        let b = src.create_extent(ExtentId(4)).unwrap();
        b.write(4, 40 * BLOCK_SIZE, b"far out").unwrap();
        src.create_extent(ExtentId(5)).unwrap();
        src
    }

    #[test]
    fn dump_and_restore_round_trip_without_shipping_holes() {
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let src = source(d1.path());
        let pairs = dump_pairs(&src);
        let shipped: usize = pairs.iter().map(|(_, v)| v.len()).sum();
        assert!(shipped < 5 * BLOCK_SIZE as usize, "holes were shipped: {shipped} bytes");
        assert_eq!(pairs.last().unwrap().0, b"END");

        let dst = partition(d2.path(), b"old");
        dst.create_extent(ExtentId(1)).unwrap().write(1, 0, b"stale").unwrap();
        Staging::begin(&dst, b"old").unwrap();
        for (k, v) in &pairs {
            Staging::put(&dst, k, v).unwrap();
        }
        Staging::finish(&dst, 10).unwrap();
        assert_eq!(content(&dst), content(&src));
        assert_eq!(dst.synced_index(), 10);
        let used = content(&src).iter().map(|(_, b)| b.len() as u64).sum();
        assert_eq!(dst.usage(), crate::partition::Usage { used_bytes: used, extents: 3 });
        // Reopening finds the restored generation.
        drop(dst);
        assert_eq!(content(&partition(d2.path(), b"new")), content(&src));
    }

    /// The background sync loop asks `needs_sync` while a snapshot is restored: the two took the
    /// partition's `dirty` and `synced` locks in opposite orders and could deadlock, leaving a replica
    /// that never finished installing its snapshot.
    #[test]
    fn restoring_while_the_sync_loop_polls_does_not_deadlock() {
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let pairs = dump_pairs(&source(d1.path()));
        let dst = std::sync::Arc::new(partition(d2.path(), b"m"));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let poller = {
            let (dst, stop) = (dst.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::black_box(dst.needs_sync());
                }
            })
        };
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let restorer = {
            let dst = dst.clone();
            std::thread::spawn(move || {
                for round in 0..200u64 {
                    Staging::begin(&dst, b"m").unwrap();
                    for (k, v) in &pairs {
                        Staging::put(&dst, k, v).unwrap();
                    }
                    Staging::finish(&dst, 10 + round).unwrap();
                }
                done_tx.send(()).unwrap();
            })
        };
        let finished = done_rx.recv_timeout(std::time::Duration::from_secs(120));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(finished.is_ok(), "restores stopped making progress (deadlock)");
        restorer.join().unwrap();
        poller.join().unwrap();
        assert_eq!(dst.synced_index(), 209);
    }

    #[test]
    fn a_restore_interrupted_by_a_crash_is_finished_or_discarded_at_open() {
        let d1 = tempfile::tempdir().unwrap();
        let src = source(d1.path());
        let pairs = dump_pairs(&src);
        for (committed, complete) in [(true, true), (false, true), (true, false)] {
            let d2 = tempfile::tempdir().unwrap();
            let dst = partition(d2.path(), b"before");
            dst.create_extent(ExtentId(1)).unwrap().write(1, 0, b"old state").unwrap();
            let old = content(&dst);
            Staging::begin(&dst, b"before").unwrap();
            let n = if complete { pairs.len() } else { pairs.len() - 1 };
            for (k, v) in &pairs[..n] {
                Staging::put(&dst, k, v).unwrap();
            }
            // Crash before finish_restore; the raftstore committed the snapshot's index or not.
            drop(dst);
            let marker: &[u8] = if committed { b"after" } else { b"before" };
            let reopened = partition(d2.path(), marker);
            let want = if committed && complete { content(&src) } else { old };
            assert_eq!(content(&reopened), want, "committed={committed} complete={complete}");
            assert_eq!(reopened.layout().generations().unwrap().len(), 1, "leftover generation");
        }
    }
}
