//! File data: buffering, durability, read-ahead, truncation, holes, concurrency with flushes.

use bytes::Bytes;
use std::time::Duration;

use ferrum_proto::{ErrorCode, InodeId};

use super::*;
use crate::backend::MetaBackend;
use crate::vfs::{FallocateMode, Whence};

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[tokio::test]
async fn write_read_flush_and_another_client_sees_it() {
    let (v, meta, data) = vfs();
    let (ino, fh) = create(&v, "f").await;
    let bytes = pattern(300_000, 1);
    assert_eq!(v.write(fh, 0, &bytes).await.unwrap(), 300_000);
    // Read-your-writes before anything left the client.
    assert_eq!(data.stats().writes, 0);
    assert_eq!(&v.read(fh, 1000, 5000).await.unwrap()[..], &bytes[1000..6000]);
    assert_eq!(v.getattr(ino).await.unwrap().size, 300_000);
    v.flush(fh).await.unwrap();
    assert_eq!(meta.extent_list(ino).await.unwrap().size, 300_000, "flush makes the size durable");
    let other = second_client(&meta, &data);
    let fh2 = other.open(ino, libc::O_RDONLY, &root()).await.unwrap();
    assert_eq!(&other.read(fh2, 0, 400_000).await.unwrap()[..], &bytes[..]);
    v.release(fh).await.unwrap();
    other.release(fh2).await.unwrap();
    assert_eq!(v.open_files(), 0);
}

#[tokio::test]
async fn small_writes_leave_as_few_large_extent_writes() {
    let (v, meta, data) = vfs();
    let (ino, fh) = create(&v, "log").await;
    // 32 MiB in 4 KiB writes: 8192 writes.
    let block = pattern(4096, 7);
    for i in 0..8192u64 {
        v.write(fh, i * 4096, &block).await.unwrap();
    }
    v.fsync(fh, false).await.unwrap();
    let stats = data.stats();
    // 32 MiB in chunks of at most io_chunk (1 MiB): 32 writes, plus one per background flush boundary.
    assert!(stats.writes <= 40, "{stats:?}: one RPC per 4 KiB write would be 8192");
    assert!(meta.extent_appends() <= 8, "{} extent appends", meta.extent_appends());
    assert_eq!(stats.creates, 1, "one append extent for a 32 MiB file");
    let list = meta.extent_list(ino).await.unwrap();
    assert_eq!(list.size, 32 << 20);
    let back = v.read(fh, (20 << 20) + 100, 4096).await.unwrap();
    assert_eq!(&back[..3996], &block[100..]);
    v.release(fh).await.unwrap();
}

#[tokio::test]
async fn overwrites_go_in_place_without_new_keys() {
    let (v, meta, data) = vfs();
    let (ino, fh) = create(&v, "f").await;
    v.write(fh, 0, &pattern(1 << 20, 1)).await.unwrap();
    v.flush(fh).await.unwrap();
    let appends = meta.extent_appends();
    let keys = meta.extent_list(ino).await.unwrap().extents.len();
    v.write(fh, 4096, &[9u8; 4096]).await.unwrap();
    v.write(fh, 500_000, &[8u8; 100]).await.unwrap();
    let mtime = v.getattr(ino).await.unwrap().mtime;
    v.flush(fh).await.unwrap();
    assert_eq!(meta.extent_appends(), appends + 1, "one metadata call records the write");
    assert_eq!(meta.extent_list(ino).await.unwrap().extents.len(), keys, "an in-place overwrite adds no keys");
    assert!(meta.get_attr(ino).await.unwrap().mtime >= mtime, "the overwrite moved mtime");
    assert_eq!(data.stats().creates, 1);
    let other = second_client(&meta, &data);
    let fh2 = other.open(ino, libc::O_RDONLY, &root()).await.unwrap();
    let got = other.read(fh2, 0, 1 << 20).await.unwrap();
    let mut want = pattern(1 << 20, 1);
    want[4096..8192].fill(9);
    want[500_000..500_100].fill(8);
    assert_eq!(&got[..], &want[..]);
}

#[tokio::test]
async fn random_writes_match_a_model_through_background_flushes() {
    let cfg = VfsConfig { flush_threshold: 64 << 10, io_chunk: 16 << 10, ..VfsConfig::default() };
    let (v, meta, data) = vfs_with(cfg);
    let (ino, fh) = create(&v, "r").await;
    let mut model = vec![0u8; 1 << 20];
    let mut seed = 12345u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut max_end = 0;
    for i in 0..2000 {
        let off = (next() % ((1 << 20) - 9000)) as usize;
        let len = 1 + (next() % 8192) as usize;
        let buf = pattern(len, i as u8);
        v.write(fh, off as u64, &buf).await.unwrap();
        model[off..off + len].copy_from_slice(&buf);
        max_end = max_end.max(off + len);
        if i % 97 == 0 {
            let roff = (next() % (1 << 20)) as usize;
            let got = v.read(fh, roff as u64, 10_000).await.unwrap();
            let want = &model[roff.min(max_end)..(roff + 10_000).min(max_end)];
            assert_eq!(&got[..], want, "read at {roff} after {i} writes");
        }
    }
    v.release(fh).await.unwrap();
    let other = second_client(&meta, &data);
    let fh2 = other.open(ino, libc::O_RDONLY, &root()).await.unwrap();
    assert_eq!(&other.read(fh2, 0, 1 << 20).await.unwrap()[..], &model[..max_end]);
}

#[tokio::test]
async fn sequential_reads_are_served_by_read_ahead_blocks() {
    let (v, meta, data) = vfs();
    let (ino, fh) = create(&v, "big").await;
    let bytes = pattern(16 << 20, 3);
    v.write(fh, 0, &bytes).await.unwrap();
    v.release(fh).await.unwrap();
    let other = second_client(&meta, &data);
    let fh = other.open(ino, libc::O_RDONLY, &root()).await.unwrap();
    let before = data.stats().reads;
    for i in 0..128u64 {
        let got = other.read(fh, i * 131_072, 131_072).await.unwrap();
        assert_eq!(&got[..], &bytes[(i * 131_072) as usize..((i + 1) * 131_072) as usize]);
    }
    let reads = data.stats().reads - before;
    // 16 one-MiB blocks (the first 128 KiB read may be direct): far fewer than the 128 reads asked.
    assert!(reads <= 18, "{reads} datanode reads for 128 sequential 128 KiB reads");
}

#[tokio::test]
async fn truncate_drops_buffered_and_stored_bytes_and_growing_reads_zeros() {
    let (v, _meta, _data) = vfs();
    let (ino, fh) = create(&v, "t").await;
    v.write(fh, 0, &[1u8; 10_000]).await.unwrap();
    v.flush(fh).await.unwrap();
    v.write(fh, 10_000, &[2u8; 10_000]).await.unwrap();
    let set = crate::vfs::SetAttr { size: Some(5000), ..Default::default() };
    assert_eq!(v.setattr(ino, &set, Some(fh), &root()).await.unwrap().size, 5000);
    let set = crate::vfs::SetAttr { size: Some(30_000), ..Default::default() };
    assert_eq!(v.setattr(ino, &set, Some(fh), &root()).await.unwrap().size, 30_000);
    let got = v.read(fh, 0, 40_000).await.unwrap();
    assert_eq!(got.len(), 30_000);
    assert!(got[..5000].iter().all(|b| *b == 1));
    assert!(got[5000..].iter().all(|b| *b == 0), "bytes past a truncation read as zeros");
    assert_eq!(v.getattr(ino).await.unwrap().size, 30_000);
}

#[tokio::test]
async fn holes_punching_and_seek_data_hole() {
    let (v, _meta, data) = vfs();
    let (ino, fh) = create(&v, "sparse").await;
    v.write(fh, 1 << 20, &[5u8; 65536]).await.unwrap();
    v.write(fh, 3 << 20, &[6u8; 65536]).await.unwrap();
    assert_eq!(v.lseek(fh, 0, Whence::Data).await.unwrap(), 1 << 20);
    assert_eq!(v.lseek(fh, (1 << 20) + 10, Whence::Hole).await.unwrap(), (1 << 20) + 65536);
    assert_eq!(v.lseek(fh, (2 << 20) + 10, Whence::Data).await.unwrap(), 3 << 20);
    let size = (3 << 20) + 65536;
    assert_eq!(v.lseek(fh, (3 << 20) + 5, Whence::Hole).await.unwrap(), size, "EOF is a hole");
    assert_errno(v.lseek(fh, size, Whence::Data).await, libc::ENXIO);
    // Punch the middle of the first run: zeros, same size.
    let mode = FallocateMode(libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE);
    v.fallocate(fh, (1 << 20) + 1000, 2000, mode).await.unwrap();
    assert!(data.stats().punches >= 1);
    let got = v.read(fh, 1 << 20, 4000).await.unwrap();
    assert!(
        got[..1000].iter().all(|b| *b == 5)
            && got[1000..3000].iter().all(|b| *b == 0)
            && got[3000..].iter().all(|b| *b == 5)
    );
    assert_eq!(v.getattr(ino).await.unwrap().size, size);
    // Plain allocation past the end grows the file; KEEP_SIZE does not.
    v.fallocate(fh, size, 1000, FallocateMode(libc::FALLOC_FL_KEEP_SIZE)).await.unwrap();
    assert_eq!(v.getattr(ino).await.unwrap().size, size);
    v.fallocate(fh, size, 1000, FallocateMode(0)).await.unwrap();
    assert_eq!(v.getattr(ino).await.unwrap().size, size + 1000);
    assert_errno(v.fallocate(fh, 0, 10, FallocateMode(libc::FALLOC_FL_COLLAPSE_RANGE)).await, libc::EOPNOTSUPP);
}

#[tokio::test]
async fn unlinked_open_file_lives_until_release() {
    let (v, meta, _data) = vfs();
    let (ino, fh) = create(&v, "tmp").await;
    v.write(fh, 0, b"still here").await.unwrap();
    v.unlink(InodeId::ROOT, &name("tmp"), &root()).await.unwrap();
    assert_errno(v.lookup(InodeId::ROOT, &name("tmp"), &root()).await, libc::ENOENT);
    assert_eq!(&v.read(fh, 0, 100).await.unwrap()[..], b"still here");
    assert!(meta.has_inode(ino));
    v.release(fh).await.unwrap();
    // Eviction runs in the background.
    for _ in 0..1000 {
        if !meta.has_inode(ino) {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("inode {ino} not evicted after its last release");
}

#[tokio::test]
async fn write_back_failure_is_reported_as_enospc() {
    let (meta, data) = (MemMeta::new(), MemData::new(100_000));
    let v = Vfs::new(meta, data, VfsConfig::default());
    let (_, fh) = create(&v, "big").await;
    v.write(fh, 0, &vec![1u8; 200_000]).await.unwrap();
    assert_errno(v.flush(fh).await, libc::ENOSPC);
    // Reported once; the handle still works.
    v.flush(fh).await.unwrap();
    assert_errno(v.read(99, 0, 1).await, libc::EBADF);
}

#[tokio::test]
async fn o_sync_writes_are_durable_on_return() {
    let (v, meta, _data) = vfs();
    let (attr, _) = v.create(InodeId::ROOT, &name("s"), 0o644, libc::O_RDWR, &root()).await.unwrap();
    let fh = v.open(attr.inode, libc::O_WRONLY | libc::O_SYNC, &root()).await.unwrap();
    v.write(fh, 0, b"durable").await.unwrap();
    assert_eq!(meta.extent_list(attr.inode).await.unwrap().size, 7);
}

#[tokio::test]
async fn setattr_times_apply_after_buffered_writes() {
    let (v, _meta, _data) = vfs();
    let (ino, fh) = create(&v, "cp-p").await;
    v.write(fh, 0, b"data").await.unwrap();
    let when = ferrum_proto::msg::attr::Time { secs: 1_000_000, nanos: 5 };
    let set = crate::vfs::SetAttr { mtime: Some(ferrum_proto::msg::attr::SetTime::At(when)), ..Default::default() };
    v.setattr(ino, &set, Some(fh), &root()).await.unwrap();
    v.release(fh).await.unwrap();
    assert_eq!(v.getattr(ino).await.unwrap().mtime, when, "close must not move an mtime set after the writes");
}

#[tokio::test]
async fn concurrent_writers_on_distinct_ranges() {
    let cfg = VfsConfig { flush_threshold: 256 << 10, ..VfsConfig::default() };
    let (v, meta, data) = vfs_with(cfg);
    let (ino, fh) = create(&v, "shared").await;
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let v = v.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..64u64 {
                let off = (i * 8 + t) * 4096;
                v.write(fh, off, &[t as u8 + 1; 4096]).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    v.release(fh).await.unwrap();
    let other = second_client(&meta, &data);
    let fh = other.open(ino, libc::O_RDONLY, &root()).await.unwrap();
    let got = other.read(fh, 0, 64 * 8 * 4096).await.unwrap();
    for (blk, chunk) in got.chunks(4096).enumerate() {
        assert!(chunk.iter().all(|b| *b == (blk % 8) as u8 + 1), "block {blk}");
    }
    let _ = Bytes::new();
}

#[tokio::test]
async fn a_transient_write_back_failure_is_retried_and_nothing_is_lost() {
    let cfg = VfsConfig { op_timeout: Duration::from_secs(30), inline_max: 0, ..VfsConfig::default() };
    let (v, _meta, data) = vfs_with(cfg);
    let (ino, fh) = create(&v, "retried").await;
    v.write(fh, 0, b"must survive").await.unwrap();
    data.fail_writes(3, ErrorCode::Unavailable("no majority".into()));
    v.fsync(fh, false).await.unwrap();
    assert_eq!(data.stats().writes, 4, "three failures, then stored");
    let fresh = v.open(ino, libc::O_RDONLY, &root()).await.unwrap();
    assert_eq!(&v.read(fresh, 0, 100).await.unwrap()[..], b"must survive");
}

#[tokio::test]
async fn a_write_back_failing_for_the_whole_op_timeout_is_reported_once() {
    let op_timeout = Duration::from_millis(400);
    let (v, _meta, data) = vfs_with(VfsConfig { op_timeout, inline_max: 0, ..VfsConfig::default() });
    let (_, fh) = create(&v, "lost").await;
    v.write(fh, 0, b"dropped").await.unwrap();
    data.fail_writes(u64::MAX, ErrorCode::Timeout);
    let t = std::time::Instant::now();
    assert_errno(v.fsync(fh, false).await, libc::EIO);
    assert!(t.elapsed() >= op_timeout, "gave up before the op timeout: {:?}", t.elapsed());
    assert!(t.elapsed() < op_timeout * 5, "{:?}", t.elapsed());
    // Reported once; once the cluster answers again, new writes are stored.
    data.fail_writes(0, ErrorCode::Timeout);
    v.write(fh, 0, b"written again").await.unwrap();
    v.fsync(fh, false).await.unwrap();
    assert_eq!(&v.read(fh, 0, 100).await.unwrap()[..], b"written again");
}

#[tokio::test]
async fn a_failure_found_while_waiting_to_flush_is_reported_without_another_attempt() {
    let op_timeout = Duration::from_millis(300);
    let cfg = VfsConfig { op_timeout, flush_threshold: 1024, inline_max: 0, ..VfsConfig::default() };
    let (v, _meta, data) = vfs_with(cfg);
    let (ino, fh) = create(&v, "background").await;
    data.fail_writes(u64::MAX, ErrorCode::Unavailable("no majority".into()));
    // Past the threshold: a background write-back starts and keeps failing.
    v.write(fh, 0, &[1u8; 2048]).await.unwrap();
    let t = std::time::Instant::now();
    assert_errno(v.flush(fh).await, libc::EIO);
    assert!(t.elapsed() < op_timeout * 2, "one op timeout, not two: {:?}", t.elapsed());
    // What was written after that write-back started stays buffered and goes out with the next flush.
    data.fail_writes(0, ErrorCode::Timeout);
    v.write(fh, 4096, b"later").await.unwrap();
    v.release(fh).await.unwrap();
    let fresh = v.open(ino, libc::O_RDONLY, &root()).await.unwrap();
    assert_eq!(&v.read(fresh, 4096, 100).await.unwrap()[..], b"later");
}

#[tokio::test]
async fn refusals_are_not_retried() {
    let cfg = VfsConfig { op_timeout: Duration::from_secs(60), inline_max: 0, ..VfsConfig::default() };
    let (v, _meta, data) = vfs_with(cfg);
    let (_, fh) = create(&v, "refused").await;
    v.write(fh, 0, b"x").await.unwrap();
    data.fail_writes(u64::MAX, ErrorCode::ReadOnly);
    let t = std::time::Instant::now();
    assert_errno(v.flush(fh).await, libc::EROFS);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(data.stats().writes, 1);
}
