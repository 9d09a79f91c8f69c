//! Large log entries (a data partition's file bytes) kept out of RocksDB, in a group's own segment files.
//!
//! In RocksDB an entry of 1 MiB was copied three times per replica (WAL, memtable, blob file at flush)
//! and checksummed twice with the portable software CRC32C of Debian's `librocksdb` — a quarter of the
//! CPU of a sequential write. Here an entry's bytes are written once, with a hardware CRC32
//! (`crc32fast`), to `<data dir>/raftlog/<group>/<segment>.seg`, and the log family keeps a small
//! [`PayloadRef`] under the entry's key.
//!
//! Segments are written with `O_DIRECT` (each record starts on a 4 KiB boundary), from one reused
//! buffer: on the VMs this was measured on, copying into freshly allocated page-cache pages made a
//! buffered write about five times slower than a direct one (`dd` 1 GiB: 0.5 vs 2.4 GB/s), and the log
//! is read back rarely (the log store keeps recent entries in memory). Where `O_DIRECT` is refused
//! (tmpfs), segments are written through the page cache. Reads go through a separate buffered handle.
//!
//! Durability: [`PayloadLog::append_encoded`] fdatasyncs the segment before it returns, and the caller writes the
//! reference to RocksDB only after that. A reference that reached the disk therefore always points at
//! bytes on the disk, so everything the RocksDB-only log promised still holds (the WAL orders the
//! reference before the state machine's changes that depend on it). A crash between the two leaves
//! unreferenced bytes at the end of a segment; segments are never appended to after a restart.
//! A reference whose bytes fail their CRC is reported as corruption, never returned.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ferrum_proto::GroupId;
use serde::{Deserialize, Serialize};

/// Entries whose encoding is at least this long go to segment files; smaller ones stay in RocksDB,
/// where a write costs less than an fdatasync.
pub const MIN_PAYLOAD: usize = 128 << 10;

/// A segment takes no more appends once it is this long.
const SEGMENT_BYTES: u64 = 64 << 20;

/// Records start at multiples of this (`O_DIRECT` needs offsets, lengths and memory aligned to the
/// device's logical block; 4 KiB covers the common ones).
const ALIGN: usize = 4096;

/// Where an entry's bytes are: stored in the log family instead of the entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadRef {
    pub segment: u64,
    pub offset: u64,
    pub len: u32,
    pub crc: u32,
}

/// One group's segment files.
pub struct PayloadLog {
    dir: PathBuf,
    inner: Mutex<Inner>,
    /// The aligned buffer appends are assembled in (appends of one group never run concurrently).
    buf: Mutex<Vec<u8>>,
}

struct Inner {
    /// Buffered read handles of the segments by id; the last one takes appends if `writer` is set.
    files: BTreeMap<u64, Arc<File>>,
    /// The handle appends go through and the last segment's length, when that segment is this run's
    /// (earlier runs' segments are never appended to).
    writer: Option<(Arc<File>, u64)>,
    next_id: u64,
}

fn align_up(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// `len` bytes of `buf` starting at a multiple of `align` (a power of two), for `O_DIRECT` I/O; grows
/// `buf` when it is too small, so a buffer kept between calls is allocated (and faulted in) once.
pub fn aligned(buf: &mut Vec<u8>, len: usize, align: usize) -> &mut [u8] {
    if buf.len() < len + align {
        *buf = vec![0u8; len + align];
    }
    let at = buf.as_ptr().align_offset(align);
    &mut buf[at..at + len]
}

/// Opens a new segment for appends, with `O_DIRECT` if the file system takes it.
fn create_segment(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let direct = OpenOptions::new().write(true).create_new(true).custom_flags(libc::O_DIRECT).open(path);
    match direct {
        Ok(f) => Ok(f),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let _ = fs::remove_file(path);
            OpenOptions::new().write(true).create_new(true).open(path)
        }
        Err(e) => Err(e),
    }
}

fn seg_name(id: u64) -> String {
    format!("{id:016x}.seg")
}

fn seg_id(name: &str) -> Option<u64> {
    u64::from_str_radix(name.strip_suffix(".seg")?, 16).ok()
}

fn corrupt(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl PayloadLog {
    /// Opens `dir` (created on the first append), finding the segments earlier runs left.
    pub fn open(dir: PathBuf) -> io::Result<PayloadLog> {
        let mut files = BTreeMap::new();
        match fs::read_dir(&dir) {
            Ok(entries) => {
                for e in entries {
                    let e = e?;
                    if let Some(id) = e.file_name().to_str().and_then(seg_id) {
                        files.insert(id, Arc::new(File::open(e.path())?));
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let next_id = files.keys().next_back().map_or(1, |id| id + 1);
        let inner = Mutex::new(Inner { files, writer: None, next_id });
        Ok(PayloadLog { dir, inner, buf: Mutex::new(Vec::new()) })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the postcard encodings of `values` one after another in the current segment (each from a
    /// 4 KiB boundary), fdatasyncs it, and returns where each one is. Called by one group's log appends,
    /// which openraft never runs concurrently. The values are encoded straight into the segment buffer:
    /// a data partition's MiB entries are not copied through an intermediate `Vec` (which cost a copy
    /// and fresh pages per entry).
    pub fn append_encoded<T: Serialize>(&self, values: &[&T]) -> io::Result<Vec<PayloadRef>> {
        let lens = values.iter().map(postcard::experimental::serialized_size).collect::<Result<Vec<_>, _>>();
        let lens = lens.map_err(io::Error::other)?;
        self.append_with(&lens, |i, out| postcard::to_slice(values[i], out).map(|_| ()).map_err(io::Error::other))
    }

    /// Raw bytes instead of encodings (the tests read back exactly what they wrote).
    #[cfg(test)]
    fn append(&self, payloads: &[&[u8]]) -> io::Result<Vec<PayloadRef>> {
        let lens: Vec<usize> = payloads.iter().map(|p| p.len()).collect();
        self.append_with(&lens, |i, out| {
            out.copy_from_slice(payloads[i]);
            Ok(())
        })
    }

    /// Writes payloads of `lens` bytes, the `i`-th filled in by `fill(i, out)`.
    fn append_with(
        &self,
        lens: &[usize],
        mut fill: impl FnMut(usize, &mut [u8]) -> io::Result<()>,
    ) -> io::Result<Vec<PayloadRef>> {
        let total: usize = lens.iter().map(|&l| align_up(l)).sum();
        let mut buf = self.buf.lock().expect("payload buffer lock");
        let out = aligned(&mut buf, total, ALIGN);
        let mut refs = Vec::with_capacity(lens.len());
        let mut pos = 0;
        for (i, &l) in lens.iter().enumerate() {
            let len = u32::try_from(l).map_err(|_| io::Error::other("log entry over 4 GiB"))?;
            let payload = &mut out[pos..pos + l];
            fill(i, payload)?;
            let crc = crc32fast::hash(payload);
            let padded = align_up(l);
            out[pos + l..pos + padded].fill(0);
            refs.push((pos as u64, len, crc));
            pos += padded;
        }
        let (id, file, start) = self.reserve(total as u64)?;
        let res = file.write_all_at(out, start).and_then(|()| file.sync_data());
        if let Err(e) = res {
            // The segment's end is unknown now: the next append starts a new one.
            self.inner.lock().expect("payload log lock").writer = None;
            return Err(e);
        }
        Ok(refs.into_iter().map(|(at, len, crc)| PayloadRef { segment: id, offset: start + at, len, crc }).collect())
    }

    /// The segment to append `len` bytes to, its append handle and the offset to write at; opens a new
    /// segment when there is none of this run's or it is full.
    fn reserve(&self, len: u64) -> io::Result<(u64, Arc<File>, u64)> {
        let mut g = self.inner.lock().expect("payload log lock");
        let current = match (&g.writer, g.files.keys().next_back()) {
            (Some((w, end)), Some(id)) if *end < SEGMENT_BYTES => Some((*id, w.clone(), *end)),
            _ => None,
        };
        let (id, writer, start) = match current {
            Some(c) => c,
            None => {
                fs::create_dir_all(&self.dir)?;
                let id = g.next_id;
                let path = self.dir.join(seg_name(id));
                let writer = Arc::new(create_segment(&path)?);
                // The new file's name must survive a power loss before any reference to it can.
                File::open(&self.dir)?.sync_all()?;
                g.next_id += 1;
                g.files.insert(id, Arc::new(File::open(&path)?));
                (id, writer, 0)
            }
        };
        g.writer = Some((writer.clone(), start + len));
        Ok((id, writer, start))
    }

    /// The bytes `r` points at, checked against their CRC.
    pub fn read(&self, r: &PayloadRef) -> io::Result<Vec<u8>> {
        let file = self.inner.lock().expect("payload log lock").files.get(&r.segment).cloned();
        let file = file.ok_or_else(|| corrupt(format!("{}: no segment {:016x}", self.dir.display(), r.segment)))?;
        let mut buf = vec![0u8; r.len as usize];
        file.read_exact_at(&mut buf, r.offset).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                corrupt(format!("{}: segment {:016x} ends before {:?}", self.dir.display(), r.segment, r))
            } else {
                e
            }
        })?;
        if crc32fast::hash(&buf) != r.crc {
            return Err(corrupt(format!("{}: CRC mismatch at {:?}", self.dir.display(), r)));
        }
        Ok(buf)
    }

    /// Deletes the segments before `segment` (their entries were purged).
    pub fn remove_before(&self, segment: u64) -> io::Result<()> {
        let old: Vec<u64> = {
            let mut g = self.inner.lock().expect("payload log lock");
            let keep = g.files.split_off(&segment);
            let old = std::mem::replace(&mut g.files, keep).into_keys().collect();
            if g.files.is_empty() {
                g.writer = None;
            }
            old
        };
        for id in old {
            match fs::remove_file(self.dir.join(seg_name(id))) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether there are no segments (groups that never had a large entry).
    pub fn is_empty(&self) -> bool {
        self.inner.lock().expect("payload log lock").files.is_empty()
    }

    /// Deletes every segment (the group's whole log was purged or the group removed).
    pub fn remove_all(&self) -> io::Result<()> {
        self.remove_before(u64::MAX)
    }
}

/// Where a group's segments live under an instance's data dir.
pub fn group_dir(data_dir: &Path, group: GroupId) -> PathBuf {
    data_dir.join("raftlog").join(group.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let log = PayloadLog::open(dir.path().join("g")).unwrap();
        let a = vec![1u8; 100_000];
        let b = vec![2u8; 20_000];
        let refs = log.append(&[&a, &b]).unwrap();
        assert_eq!(log.read(&refs[0]).unwrap(), a);
        assert_eq!(log.read(&refs[1]).unwrap(), b);
        drop(log);
        let log = PayloadLog::open(dir.path().join("g")).unwrap();
        assert_eq!(log.read(&refs[1]).unwrap(), b);
        // A new run appends to a new segment.
        let c = log.append(&[&a]).unwrap();
        assert!(c[0].segment > refs[0].segment);
        assert_eq!(c[0].offset, 0);
    }

    #[test]
    fn a_damaged_payload_is_an_error_not_data() {
        let dir = tempfile::tempdir().unwrap();
        let log = PayloadLog::open(dir.path().join("g")).unwrap();
        let r = log.append(&[&[7u8; 5000]]).unwrap()[0];
        let path = dir.path().join("g").join(seg_name(r.segment));
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&[8], 10).unwrap();
        let e = log.read(&r).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        f.set_len(100).unwrap();
        assert_eq!(log.read(&r).unwrap_err().kind(), io::ErrorKind::InvalidData);
        let missing = PayloadRef { segment: 99, ..r };
        assert_eq!(log.read(&missing).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn purged_segments_are_deleted_and_full_ones_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let log = PayloadLog::open(dir.path().join("g")).unwrap();
        let big = vec![3u8; (SEGMENT_BYTES / 2 + 1) as usize];
        let r1 = log.append(&[&big]).unwrap()[0];
        let r2 = log.append(&[&big]).unwrap()[0];
        let r3 = log.append(&[&big]).unwrap()[0];
        assert_eq!(r1.segment, r2.segment);
        assert!(r3.segment > r2.segment, "a full segment takes no more appends");
        log.remove_before(r3.segment).unwrap();
        assert!(log.read(&r1).is_err());
        assert_eq!(log.read(&r3).unwrap().len(), big.len());
        assert_eq!(fs::read_dir(dir.path().join("g")).unwrap().count(), 1);
        log.remove_all().unwrap();
        assert_eq!(fs::read_dir(dir.path().join("g")).unwrap().count(), 0);
        let r4 = log.append(&[&big]).unwrap()[0];
        assert!(r4.segment > r3.segment, "ids are not reused within a run");
    }
}
