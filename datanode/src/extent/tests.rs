//! Extent operations against an in-memory model, CRC checking, holes, truncation and repair.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use super::*;

const BS: u64 = BLOCK_SIZE;

fn new_extent(dir: &tempfile::TempDir) -> Extent {
    Extent::create(dir.path(), ExtentId(7)).unwrap()
}

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn read_all(e: &Extent) -> Vec<u8> {
    match e.read(0, e.size()).unwrap() {
        ReadResult::Data(b) => b.to_vec(),
        ReadResult::Corrupt(bad) => panic!("corrupt blocks {bad:?}"),
    }
}

fn assert_clean(e: &Extent) {
    let (bad, _, _) = e.scrub(0, u64::MAX / 2).unwrap();
    assert!(bad.is_empty(), "scrub found {bad:?}");
}

fn flip_byte(path: &Path, at: u64) {
    let f = OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).unwrap();
    b[0] ^= 0x5a;
    f.write_all_at(&b, at).unwrap();
}

#[test]
fn write_read_overwrite_across_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let e = new_extent(&dir);
    let a = pattern(1, (3 * BS + 100) as usize);
    e.write(1, 0, &a).unwrap();
    assert_eq!(e.size(), a.len() as u64);
    assert_eq!(read_all(&e), a);
    // Unaligned overwrite spanning a block boundary.
    let b = pattern(2, 5000);
    e.write(2, BS - 1000, &b).unwrap();
    let mut model = a.clone();
    model[(BS - 1000) as usize..(BS + 4000) as usize].copy_from_slice(&b);
    assert_eq!(read_all(&e), model);
    // Partial reads, a read past the end is short, a read at the end is empty.
    let ReadResult::Data(r) = e.read(BS - 10, 20).unwrap() else { panic!() };
    assert_eq!(&r[..], &model[(BS - 10) as usize..(BS + 10) as usize]);
    let ReadResult::Data(r) = e.read(e.size() - 5, 100).unwrap() else { panic!() };
    assert_eq!(r.len(), 5);
    let ReadResult::Data(r) = e.read(e.size(), 100).unwrap() else { panic!() };
    assert!(r.is_empty());
    assert_clean(&e);
}

#[test]
fn sparse_ranges_read_as_zeros_and_stay_holes() {
    let dir = tempfile::tempdir().unwrap();
    let e = new_extent(&dir);
    e.write(1, 10, b"head").unwrap();
    e.write(2, 10 * BS + 3, b"tail").unwrap();
    let all = read_all(&e);
    assert_eq!(all.len() as u64, 10 * BS + 7);
    assert_eq!(&all[10..14], b"head");
    assert!(all[14..(10 * BS + 3) as usize].iter().all(|&b| b == 0));
    // Blocks in the gap are holes in both files.
    let (_, blocks) = e.stored_blocks(0, 11).unwrap();
    assert!(!blocks[0].entry.is_hole());
    assert!(blocks[1..10].iter().all(|b| b.entry.is_hole()));
    let allocated = std::fs::metadata(data_file(dir.path(), ExtentId(7))).unwrap();
    assert!(std::os::unix::fs::MetadataExt::blocks(&allocated) * 512 < 4 * BS, "data file should be sparse");
    assert_clean(&e);
}

#[test]
fn truncate_shrinks_and_extends_with_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let e = new_extent(&dir);
    let a = pattern(3, (2 * BS + 500) as usize);
    e.write(1, 0, &a).unwrap();
    e.truncate(2, BS + 10).unwrap();
    assert_eq!(read_all(&e), a[..(BS + 10) as usize]);
    assert_clean(&e);
    e.truncate(3, 3 * BS).unwrap();
    let mut model = a[..(BS + 10) as usize].to_vec();
    model.resize((3 * BS) as usize, 0);
    assert_eq!(read_all(&e), model);
    assert_clean(&e);
    // A write past the end after a shrink: the old bytes do not come back.
    e.truncate(4, 5).unwrap();
    e.write(5, BS + 1, b"x").unwrap();
    let mut model = a[..5].to_vec();
    model.resize((BS + 2) as usize, 0);
    model[(BS + 1) as usize] = b'x';
    assert_eq!(read_all(&e), model);
    assert_clean(&e);
    e.truncate(6, 0).unwrap();
    assert_eq!(e.size(), 0);
    assert!(read_all(&e).is_empty());
}

#[test]
fn punch_hole_zeroes_and_frees() {
    let dir = tempfile::tempdir().unwrap();
    let e = new_extent(&dir);
    let a = pattern(4, (4 * BS) as usize);
    e.write(1, 0, &a).unwrap();
    e.punch(2, BS / 2, 2 * BS).unwrap();
    let mut model = a.clone();
    model[(BS / 2) as usize..(BS / 2 + 2 * BS) as usize].fill(0);
    assert_eq!(read_all(&e), model);
    assert_eq!(e.size(), 4 * BS, "punching keeps the size");
    let (_, blocks) = e.stored_blocks(0, 4).unwrap();
    assert!(blocks[1].entry.is_hole(), "a fully punched block becomes a hole");
    assert!(!blocks[0].entry.is_hole() && !blocks[2].entry.is_hole());
    // Past the end: clipped, no growth.
    e.punch(3, 3 * BS, 10 * BS).unwrap();
    assert_eq!(e.size(), 4 * BS);
    model[(3 * BS) as usize..].fill(0);
    assert_eq!(read_all(&e), model);
    assert_clean(&e);
}

#[test]
fn flipped_data_byte_is_detected_and_repaired_from_a_good_copy() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (bad, good) = (new_extent(&d1), new_extent(&d2));
    let a = pattern(5, (3 * BS) as usize);
    for e in [&bad, &good] {
        e.write(9, 0, &a).unwrap();
    }
    flip_byte(&data_file(d1.path(), ExtentId(7)), BS + 77);
    let ReadResult::Corrupt(blocks) = bad.read(BS, 10).unwrap() else { panic!("corruption returned as data") };
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].block, 1);
    assert_eq!(blocks[0].entry.index, 9);
    // Other blocks still read fine.
    assert!(matches!(bad.read(0, BS).unwrap(), ReadResult::Data(_)));
    let (found, _, _) = bad.scrub(0, 10).unwrap();
    assert_eq!(found, blocks);
    // The corrupt replica does not offer its copy.
    let (_, mine) = bad.stored_blocks(1, 1).unwrap();
    assert!(mine[0].content.is_none());
    // A copy of another version is refused; the right one repairs.
    let (_, theirs) = good.stored_blocks(1, 1).unwrap();
    let copy = theirs[0].content.clone().unwrap();
    assert_eq!(
        bad.repair(1, blocks[0].entry, Some((&pattern(6, BS as usize), false))).unwrap(),
        RepairOutcome::Mismatch
    );
    assert_eq!(bad.repair(1, blocks[0].entry, Some((&copy, false))).unwrap(), RepairOutcome::Repaired);
    assert_eq!(read_all(&bad), a);
    assert_clean(&bad);
    // A caller with an outdated view is told so.
    let stale = BlockEntry { index: 1, ..blocks[0].entry };
    assert_eq!(bad.repair(1, stale, Some((&copy, false))).unwrap(), RepairOutcome::Stale);
}

#[test]
fn flipped_crc_record_is_detected_and_fixed_by_an_identical_copy() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (bad, good) = (new_extent(&d1), new_extent(&d2));
    let a = pattern(7, (2 * BS) as usize);
    for e in [&bad, &good] {
        e.write(3, 0, &a).unwrap();
    }
    flip_byte(&crc_file(d1.path(), ExtentId(7)), ENTRY_LEN as u64); // block 1's CRC
    let ReadResult::Corrupt(blocks) = bad.read(0, 2 * BS).unwrap() else { panic!() };
    assert_eq!(blocks[0].block, 1);
    let (_, theirs) = good.stored_blocks(1, 1).unwrap();
    let copy = theirs[0].content.clone().unwrap();
    assert_eq!(bad.repair(1, blocks[0].entry, Some((&copy, false))).unwrap(), RepairOutcome::Repaired);
    assert_eq!(read_all(&bad), a);
}

#[test]
fn corrupt_hole_is_repaired_locally() {
    let dir = tempfile::tempdir().unwrap();
    let e = new_extent(&dir);
    e.write(1, 2 * BS, b"end").unwrap();
    flip_byte(&data_file(dir.path(), ExtentId(7)), 5);
    let ReadResult::Corrupt(blocks) = e.read(0, 10).unwrap() else { panic!() };
    assert!(blocks[0].entry.is_hole());
    assert_eq!(e.repair(0, blocks[0].entry, None).unwrap(), RepairOutcome::Repaired);
    assert!(read_all(&e)[..(2 * BS) as usize].iter().all(|&b| b == 0));
}

#[test]
fn partial_write_onto_a_corrupt_block_is_suspect_until_a_peer_confirms() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (bad, good) = (new_extent(&d1), new_extent(&d2));
    let a = pattern(8, BS as usize);
    for e in [&bad, &good] {
        e.write(1, 0, &a).unwrap();
    }
    flip_byte(&data_file(d1.path(), ExtentId(7)), 100);
    for e in [&bad, &good] {
        e.write(2, 1000, b"partial").unwrap();
    }
    // The CRC over the merged bytes would bless the flipped byte: it is marked, never served.
    let ReadResult::Corrupt(blocks) = bad.read(0, 10).unwrap() else { panic!("suspect block served") };
    assert!(blocks[0].entry.is_suspect());
    assert_eq!(blocks[0].entry.index, 2);
    let (_, theirs) = good.stored_blocks(0, 1).unwrap();
    assert_eq!(theirs[0].entry.index, 2);
    let copy = theirs[0].content.clone().unwrap();
    // Another suspect copy that disagrees proves nothing; the peer's trusted copy repairs.
    let other = pattern(10, BS as usize);
    assert_eq!(bad.repair(0, blocks[0].entry, Some((&other, true))).unwrap(), RepairOutcome::Mismatch);
    assert_eq!(bad.repair(0, blocks[0].entry, Some((&copy, false))).unwrap(), RepairOutcome::Repaired);
    let mut model = a.clone();
    model[1000..1007].copy_from_slice(b"partial");
    assert_eq!(read_all(&bad), model);
}

#[test]
fn reopen_keeps_content_and_fixes_a_short_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let a = pattern(9, (2 * BS + 1) as usize);
    {
        let e = new_extent(&dir);
        e.write(1, 0, &a).unwrap();
        e.sync().unwrap();
    }
    let e = Extent::open(dir.path(), ExtentId(7)).unwrap();
    assert_eq!(read_all(&e), a);
    drop(e);
    // A crash between the data write and the record write: the last records are missing.
    let crc = OpenOptions::new().write(true).open(crc_file(dir.path(), ExtentId(7))).unwrap();
    crc.set_len(ENTRY_LEN as u64).unwrap();
    let e = Extent::open(dir.path(), ExtentId(7)).unwrap();
    let (bad, _, _) = e.scrub(0, 10).unwrap();
    assert_eq!(bad.iter().map(|b| b.block).collect::<Vec<_>>(), vec![1, 2], "detected, not served");
}

/// A deterministic random mix of operations, checked against a model after every step; then the
/// tail of the sequence is applied again on top of the result (what a replay after a crash, or a
/// snapshot that ran ahead, does) and must change nothing.
#[test]
fn random_operations_match_a_model_and_replays_are_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let e = new_extent(&dir);
    let mut model: Vec<u8> = Vec::new();
    let mut rng = pattern(42, 4000).into_iter();
    let mut next = move |n: u64| -> u64 {
        let v = u64::from_le_bytes(std::array::from_fn(|_| rng.next().unwrap()));
        v % n
    };
    #[derive(Debug, Clone)]
    enum Op {
        Write(u64, Vec<u8>),
        Truncate(u64),
        Punch(u64, u64),
    }
    let mut ops = Vec::new();
    for i in 0..120u64 {
        let max = 6 * BS;
        let op = match next(10) {
            0..=5 => {
                let off = next(max);
                let len = 1 + next(2 * BS);
                Op::Write(off, pattern(1000 + i, len as usize))
            }
            6 | 7 => Op::Truncate(next(max)),
            _ => Op::Punch(next(max), 1 + next(2 * BS)),
        };
        ops.push(op);
    }
    let apply = |e: &Extent, model: &mut Vec<u8>, index: u64, op: &Op| match op {
        Op::Write(off, d) => {
            e.write(index, *off, d).unwrap();
            let end = (*off as usize) + d.len();
            if model.len() < end {
                model.resize(end, 0);
            }
            model[*off as usize..end].copy_from_slice(d);
        }
        Op::Truncate(s) => {
            e.truncate(index, *s).unwrap();
            model.resize(*s as usize, 0);
        }
        Op::Punch(off, len) => {
            e.punch(index, *off, *len).unwrap();
            let end = (off + len).min(model.len() as u64) as usize;
            if (*off as usize) < end {
                model[*off as usize..end].fill(0);
            }
        }
    };
    for (i, op) in ops.iter().enumerate() {
        apply(&e, &mut model, i as u64 + 1, op);
        assert_eq!(e.size(), model.len() as u64, "after {op:?}");
        assert!(read_all(&e) == model, "content differs after op {i} {op:?}");
        assert_clean(&e);
    }
    let mut replayed = model.clone();
    for (i, op) in ops.iter().enumerate().skip(70) {
        apply(&e, &mut replayed, i as u64 + 1, op);
    }
    assert!(replayed == model);
    assert!(read_all(&e) == model, "replaying the tail changed the extent");
    assert_clean(&e);
}

#[test]
fn large_unaligned_writes_mix_direct_and_buffered_io_and_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let e = new_extent(&dir);
    let mut model = Vec::new();
    // An unaligned start, whole blocks in the middle (direct), a partial tail (buffered); then a small
    // buffered overwrite inside the direct part, and a large overwrite across the old end.
    let writes: [(u64, usize, u64); 4] = [(100, 300_000, 1), (4096 * 10 + 5, 10, 2), (200_000, 500_000, 3), (0, 3, 4)];
    for (i, (off, len, seed)) in writes.into_iter().enumerate() {
        let data = pattern(seed, len);
        e.write(i as u64 + 1, off, &data).unwrap();
        let end = off as usize + len;
        if model.len() < end {
            model.resize(end, 0);
        }
        model[off as usize..end].copy_from_slice(&data);
        assert_eq!(e.size(), model.len() as u64);
        assert_eq!(read_all(&e), model, "after write {i}");
    }
    assert!(e.direct.get().is_some_and(|d| d.is_some()), "the test dir's file system takes O_DIRECT");
    assert_clean(&e);
    drop(e);
    let e = Extent::open(dir.path(), ExtentId(7)).unwrap();
    assert_eq!(read_all(&e), model);
    assert_clean(&e);
}

/// Drops the file's cached pages (after writing them back), as memory pressure would.
fn evict_cached(path: &Path) {
    let f = OpenOptions::new().read(true).open(path).unwrap();
    f.sync_all().unwrap();
    // SAFETY: plain syscall on an open fd.
    assert_eq!(unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) }, 0);
}

#[test]
fn cached_reads_match_blocking_ones_and_a_disk_read_brings_in_its_window() {
    let dir = tempfile::tempdir().unwrap();
    let e = new_extent(&dir);
    let a = pattern(11, (3 * BS + 100) as usize);
    e.write(1, 0, &a).unwrap();
    let size = e.size();
    // Written through the page cache just now, so every range is there.
    for (off, len) in [(0, size), (BS - 10, 20), (size - 5, 100), (size, 100)] {
        let cached = e.read_cached(off, len).unwrap().expect("blocks written just now are cached");
        assert_eq!(format!("{cached:?}"), format!("{:?}", e.read(off, len).unwrap()), "read of {len} at {off}");
    }
    // A corrupt block is reported the same way.
    flip_byte(&data_file(dir.path(), ExtentId(7)), BS + 3);
    let Some(ReadResult::Corrupt(bad)) = e.read_cached(0, size).unwrap() else { panic!("corruption returned as data") };
    assert_eq!(bad.iter().map(|b| b.block).collect::<Vec<_>>(), vec![1]);
    // Not in the page cache: no answer (the caller reads on a blocking thread), except on tmpfs,
    // whose pages are the storage and stay.
    evict_cached(&data_file(dir.path(), ExtentId(7)));
    // SAFETY: statfs fills the zeroed struct.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    let path = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::statfs(path.as_ptr(), &mut fs) }, 0);
    let cached = e.read_cached(0, BS).unwrap();
    if fs.f_type == libc::TMPFS_MAGIC {
        assert!(matches!(cached, Some(ReadResult::Data(_))));
    } else {
        assert!(cached.is_none(), "evicted blocks answered from the cache: {cached:?}");
    }
    assert!(matches!(e.read(0, BS).unwrap(), ReadResult::Data(_)), "a blocking read still works");
    let around = e.read_cached(2 * BS, 10).unwrap();
    assert!(matches!(around, Some(ReadResult::Data(_))), "the disk read brought in its whole window: {around:?}");
}
