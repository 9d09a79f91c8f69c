//! Data partitions replicated over 3 in-process datanodes: the write and read path, exactly-once
//! retries, CRC failures repaired from a replica (on read and by the scrubber), a full disk, and a
//! replica that catches up through a streamed snapshot.

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use bytes::Bytes;
use common::{pattern, wait_until, Cluster, Settings, T};
use ferrum_datanode::metrics;
use ferrum_datanode::DataConfig;
use ferrum_proto::{ErrorCode, PartitionId};

const MIB: usize = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_are_replicated_and_reads_see_them() {
    let c = Cluster::start(3, &Settings::default()).await;
    let p = PartitionId(1);
    c.create_partition(p).await;
    let client = c.client(p);
    let e = client.create_extent().await.unwrap();
    let data = pattern(1, 8 * MIB + 123);
    // Concurrent 1 MiB writes (pipelined through Raft), the last one short and unaligned.
    let writes =
        data.chunks(MIB).enumerate().map(|(i, chunk)| client.write(e, (i * MIB) as u64, Bytes::copy_from_slice(chunk)));
    for r in futures_join_all(writes).await {
        r.unwrap();
    }
    assert_eq!(client.size(e).await.unwrap(), data.len() as u64);
    let got = client.read(e, 0, data.len() as u32).await.unwrap();
    assert!(got == data, "read differs from what was written");
    let got = client.read(e, 3 * MIB as u64 - 7, 100).await.unwrap();
    assert_eq!(&got[..], &data[3 * MIB - 7..3 * MIB + 93]);

    // Truncate, punch, and a hole past the end.
    client.truncate(e, 5 * MIB as u64 + 1).await.unwrap();
    client.punch_hole(e, 1000, 70_000).await.unwrap();
    client.write(e, 6 * MIB as u64, Bytes::from_static(b"after the gap")).await.unwrap();
    let mut model = data[..5 * MIB + 1].to_vec();
    model[1000..71_000].fill(0);
    model.resize(6 * MIB, 0);
    model.extend_from_slice(b"after the gap");
    let got = client.read(e, 0, 16 * MIB as u32).await.unwrap();
    assert!(got == model, "content after truncate/punch/extend differs");

    // Every replica holds exactly the same bytes and records.
    c.wait_converged(p, &[0, 1, 2]).await;
    let leader_files = c.extent_files(0, p, e).unwrap();
    for i in 1..3 {
        assert!(c.extent_files(i, p, e).unwrap() == leader_files, "replica {i} differs");
    }
    let status = client.status_at(&c.nodes[1].addr).await.unwrap();
    assert_eq!((status.extents, status.used_bytes), (1, model.len() as u64));

    client.delete(e).await.unwrap();
    assert_eq!(client.read(e, 0, 10).await.unwrap_err(), ErrorCode::NotFound);
    c.wait_converged(p, &[0, 1, 2]).await;
    assert!((0..3).all(|i| c.extent_files(i, p, e).is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retried_write_is_applied_once() {
    let c = Cluster::start(3, &Settings::default()).await;
    let p = PartitionId(2);
    c.create_partition(p).await;
    let client = c.client(p);
    let e = client.create_extent().await.unwrap();
    let first = client.next_op();
    client.write_as(first, e, 0, Bytes::from_static(b"old")).await.unwrap();
    client.write(e, 0, Bytes::from_static(b"new")).await.unwrap();
    // The first write's reply was "lost" and the client retries it: it must not undo the newer write.
    client.write_as(first, e, 0, Bytes::from_static(b"old")).await.unwrap();
    assert_eq!(&client.read(e, 0, 3).await.unwrap()[..], b"new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn small_concurrent_writes_share_log_entries() {
    let c = Cluster::start(3, &Settings::default()).await;
    let p = PartitionId(7);
    c.create_partition(p).await;
    let client = c.client(p);
    let e = client.create_extent().await.unwrap();
    let l = c.leader_of(p).unwrap();
    let applied = || c.nodes[l].raft.status(p.get().into()).unwrap().last_applied.unwrap();
    let before = applied();
    let data = pattern(7, 256 * 4096);
    let writes = data
        .chunks(4096)
        .enumerate()
        .map(|(i, chunk)| client.write(e, (i * 4096) as u64, Bytes::copy_from_slice(chunk)));
    for r in futures_join_all(writes).await {
        r.unwrap();
    }
    let entries = applied() - before;
    assert!(entries < 128, "256 concurrent writes took {entries} log entries");
    assert!(client.read(e, 0, data.len() as u32).await.unwrap() == data);
    c.wait_converged(p, &[0, 1, 2]).await;
    let want = c.extent_files(0, p, e).unwrap();
    assert!((1..3).all(|i| c.extent_files(i, p, e).unwrap() == want));
}

fn flip_byte(path: &std::path::Path, at: u64) {
    let f = OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).unwrap();
    b[0] ^= 0xff;
    f.write_all_at(&b, at).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flipped_byte_on_disk_is_never_returned_and_is_repaired_from_a_replica() {
    let c = Cluster::start(3, &Settings::default()).await;
    let p = PartitionId(3);
    c.create_partition(p).await;
    let client = c.client(p);
    let e = client.create_extent().await.unwrap();
    let data = pattern(3, 2 * MIB);
    client.write(e, 0, Bytes::from(data.clone())).await.unwrap();
    c.wait_converged(p, &[0, 1, 2]).await;
    let l = c.leader_of(p).unwrap();
    let clean = c.extent_files(l, p, e).unwrap();

    // Corrupt the leader's copy on disk (the page cache holds the file, so the flip is what reads see).
    let ext = c.nodes[l].app(p).partition().extent(e).unwrap();
    flip_byte(ext.paths()[0], 200_000);
    let got = client.read(e, 190_000, 20_000).await.unwrap();
    assert_eq!(&got[..], &data[190_000..210_000], "the read fails over to a replica's copy");
    let labels = metrics::partition(p);
    let m = &c.nodes[l].ctx.metrics;
    assert_eq!(m.crc_failures.get_or_create(&labels).get(), 1);
    assert_eq!(m.crc_repaired.get_or_create(&labels).get(), 1);
    assert!(c.extent_files(l, p, e).unwrap() == clean, "the block was rewritten on disk");
    assert!(client.read(e, 0, 2 * MIB as u32).await.unwrap() == data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_scrubber_finds_and_repairs_a_flipped_byte() {
    let s = Settings {
        data: DataConfig {
            reserve_bytes: 0,
            scrub_bytes_per_sec: 1 << 30,
            scrub_interval_secs: 1,
            sync_interval_ms: 200,
            ..Default::default()
        },
        ..Default::default()
    };
    let c = Cluster::start(3, &s).await;
    let p = PartitionId(4);
    c.create_partition(p).await;
    let client = c.client(p);
    let e = client.create_extent().await.unwrap();
    client.write(e, 0, Bytes::from(pattern(4, 3 * MIB))).await.unwrap();
    c.wait_converged(p, &[0, 1, 2]).await;
    let follower = (c.leader_of(p).unwrap() + 1) % 3;
    let clean = c.extent_files(follower, p, e).unwrap();
    let ext = c.nodes[follower].app(p).partition().extent(e).unwrap();
    flip_byte(ext.paths()[0], 2 * MIB as u64 + 5);
    let m = c.nodes[follower].ctx.metrics.clone();
    let labels = metrics::partition(p);
    wait_until("the scrubber repairs the block", T, || async {
        (m.crc_repaired.get_or_create(&labels).get() == 1).then_some(()).ok_or(m.scrub_passes.get())
    })
    .await;
    assert!(c.extent_files(follower, p, e).unwrap() == clean);
    assert!(m.scrub_bytes.get() >= 3 * MIB as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_gives_no_space_and_read_only_but_reads_go_on() {
    let c = Cluster::start(3, &Settings::default()).await;
    let p = PartitionId(5);
    c.create_partition(p).await;
    let client = c.client(p);
    let e = client.create_extent().await.unwrap();
    client.write(e, 0, Bytes::from_static(b"kept")).await.unwrap();
    let l = c.leader_of(p).unwrap();
    let space = &c.nodes[l].ctx.space;
    // More reserve than the disk has: as good as a full disk for admission.
    space.set_reserve(u64::MAX / 4);
    assert_eq!(client.write(e, 4, Bytes::from_static(b"more")).await.unwrap_err(), ErrorCode::NoSpace);
    assert_eq!(client.create_extent().await.unwrap_err(), ErrorCode::NoSpace);
    let status = client.status_at(&c.nodes[l].addr).await.unwrap();
    assert!(status.read_only);
    assert!(c.nodes[l].app(p).usage().read_only);
    // Reads, and mutations that free space, still work.
    assert_eq!(&client.read(e, 0, 4).await.unwrap()[..], b"kept");
    client.truncate(e, 2).await.unwrap();
    // Space comes back: writable again.
    space.set_reserve(0);
    client.write(e, 2, Bytes::from_static(b"ok")).await.unwrap();
    assert_eq!(&client.read(e, 0, 10).await.unwrap()[..], b"keok");
    assert!(!client.status_at(&c.nodes[l].addr).await.unwrap().read_only);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_that_missed_everything_catches_up_through_a_snapshot() {
    let s = Settings { snapshot_after_logs: 20, keep_logs_after_snapshot: 2, ..Default::default() };
    let c = Cluster::start(3, &s).await;
    let p = PartitionId(6);
    // Node 3 is a member but does not host the partition yet: as if it were down.
    c.create_partition_on(p, &[0, 1]).await;
    let client = c.client(p);
    let mut extents = Vec::new();
    for i in 0..4u64 {
        let e = client.create_extent().await.unwrap();
        for j in 0..15u64 {
            let off = j * 300_000;
            client.write(e, off, Bytes::from(pattern(i * 100 + j, 200_000))).await.unwrap();
        }
        extents.push(e);
    }
    // Sparse: a far write leaves a large hole that the snapshot must not ship as bytes.
    client.write(extents[0], 1 << 30, Bytes::from_static(b"far")).await.unwrap();
    client.delete(extents[3]).await.unwrap();
    c.create_partition_on(p, &[2]).await;
    c.wait_converged(p, &[0, 1, 2]).await;
    for &e in &extents[..3] {
        let want = c.extent_files(0, p, e).unwrap();
        assert!(c.extent_files(2, p, e).unwrap() == want, "extent {e} differs on the caught-up replica");
    }
    assert!(c.extent_files(2, p, extents[3]).is_none());
    let usage = c.nodes[2].app(p).usage();
    assert_eq!(usage, c.nodes[0].app(p).usage());
    // It really came through a snapshot: the log it would have replayed is gone.
    let gen = std::fs::read_to_string(c.nodes[2].dir.path().join("partitions/6/CURRENT")).unwrap();
    assert_ne!(gen.trim(), "gen-1", "expected a restored generation");
    // And it serves: make it the only source by checking reads still work on the leader.
    assert_eq!(&client.read(extents[0], 1 << 30, 3).await.unwrap()[..], b"far");
    let _ = Duration::ZERO;
}

/// `join_all` without pulling in futures-util: spawn-free, runs the futures concurrently.
async fn futures_join_all<F: std::future::Future>(fs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in fs {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("ready")).collect()
}
