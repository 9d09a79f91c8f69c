//! Datanodes across processes: 3 `ferrum-datanode` instances on 3 loopback ports host 4 data partitions
//! (3 replicas each). Clients write 1 GiB across them in 1 MiB writes, many in flight per partition. In
//! the middle of the writes the datanode leading the most partitions is SIGKILLed; writes go on (its
//! partitions elect new leaders, acknowledged writes stay acknowledged); it is restarted on its data dir
//! and catches up (through snapshots that get the extents when sent: the others purge their logs every
//! ~40 entries). Then every extent's data and CRC files are byte-identical on all 3 instances, and
//! reads through the leaders return what was written.
//!
//! `FERRUM_DATANODE_TEST_MIB` shrinks or grows the amount written (default 1024).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrum_proto::msg::data::{CreateExtent, PartitionStatus, Read, StatExtent, Write};
use ferrum_proto::msg::master::CreatePartition;
use ferrum_proto::msg::topology::{PartitionKind, Replica};
use ferrum_proto::rpc::{ClientConfig, ConnPool, LeaderClient, RetryPolicy};
use ferrum_proto::{ClientId, ExtentId, NodeId, OpId, PartitionId, RequestId, VolumeId};
use ferrum_tests::harness::{binary, free_addr, wait_for_async, Proc, TestDir};

const PARTITIONS: u64 = 4;
const CHUNK: usize = 1 << 20;
/// Per extent; each partition gets `total / PARTITIONS / EXTENT` extents.
const EXTENT: usize = 64 << 20;
/// Writes in flight per partition.
const WINDOW: usize = 8;
const T: Duration = Duration::from_secs(120);
/// For the restarted replica to catch up: 1 GiB of snapshots through debug builds takes 60-80 s here.
const CATCH_UP: Duration = Duration::from_secs(240);

struct Node {
    addr: String,
    data: PathBuf,
    proc: Proc,
}

fn start_node(dir: &TestDir, id: u64, config: &Path) -> Node {
    let addr = free_addr().to_string();
    let data = dir.sub(&format!("n{id}"));
    let args = [
        "--node-id".to_string(),
        id.to_string(),
        "--listen".into(),
        addr.clone(),
        "--data-dir".into(),
        data.display().to_string(),
        "--config".into(),
        config.display().to_string(),
    ];
    let proc = Proc::spawn(&format!("datanode{id}"), binary("ferrum-datanode"), args, dir.path());
    Node { addr, data, proc }
}

/// The bytes written at `offset` of extent number `e` of partition `p`: cheap to make, different
/// everywhere (a misplaced or stale chunk is detected).
fn chunk(p: u64, e: u64, offset: u64) -> Bytes {
    let mut v = Vec::with_capacity(CHUNK);
    let mut x = (p << 56) ^ (e << 40) ^ offset ^ 0x9e37_79b9_7f4a_7c15;
    for _ in 0..CHUNK / 8 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    Bytes::from(v)
}

fn op(p: u64, n: u64) -> OpId {
    OpId::new(ClientId(p), RequestId(n))
}

/// Creates the partition's extents and writes them, `WINDOW` writes in flight. Every write is retried
/// (same op id) until acknowledged.
async fn write_partition(client: LeaderClient, p: u64, extents: u64, acked: Arc<AtomicU64>) -> Vec<ExtentId> {
    let partition = PartitionId(p);
    let mut ids = Vec::new();
    for e in 0..extents {
        let req = CreateExtent { partition, op: op(p, 1_000_000 + e) };
        ids.push(client.call(&req).await.unwrap_or_else(|err| panic!("create extent in {p}: {err}")).extent);
    }
    let jobs: Vec<(u64, ExtentId, u64)> = (0..extents)
        .flat_map(|e| (0..(EXTENT / CHUNK) as u64).map(move |c| (e, c * CHUNK as u64)))
        .map(|(e, off)| (e, ids[e as usize], off))
        .collect();
    let mut n = 0u64;
    let mut inflight = tokio::task::JoinSet::new();
    for (e, id, off) in jobs {
        if inflight.len() >= WINDOW {
            inflight.join_next().await.unwrap().unwrap();
        }
        n += 1;
        let (client, acked) = (client.clone(), acked.clone());
        let req = Write { partition, op: op(p, n), extent: id, offset: off };
        inflight.spawn(async move {
            client.call_with_data(&req, chunk(p, e, off)).await.unwrap_or_else(|err| panic!("write {req:?}: {err}"));
            acked.fetch_add(CHUNK as u64, Ordering::Relaxed);
        });
    }
    while let Some(r) = inflight.join_next().await {
        r.unwrap();
    }
    ids
}

/// The files of the live generation of a partition on one node, by name.
/// Bytes of all the Raft snapshot files (`*.snap`) under a node's data dir.
fn snapshot_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap().map(|e| e.unwrap()) {
        let meta = e.metadata().unwrap();
        if meta.is_dir() {
            total += snapshot_bytes(&e.path());
        } else if e.path().extension().is_some_and(|x| x == "snap") {
            total += meta.len();
        }
    }
    total
}

fn extent_files(data: &Path, p: u64) -> BTreeMap<String, PathBuf> {
    let root = data.join("partitions").join(p.to_string());
    let gen = std::fs::read_to_string(root.join("CURRENT")).unwrap();
    let dir = root.join(gen.trim()).join("extents");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().into_string().unwrap(), e.path()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_datanodes_one_gib_kill_one_restart_identical_replicas() {
    let total_mib: u64 = std::env::var("FERRUM_DATANODE_TEST_MIB").ok().and_then(|s| s.parse().ok()).unwrap_or(1024);
    let extents_per_partition = (total_mib << 20) / PARTITIONS / EXTENT as u64;
    assert!(extents_per_partition > 0, "FERRUM_DATANODE_TEST_MIB too small");
    let dir = TestDir::named("datanode_replication");
    let config = dir.join("datanode.toml");
    std::fs::write(
        &config,
        "[raft]\nheartbeat_ms = 300\nelection_timeout_min_ms = 1500\nelection_timeout_max_ms = 3000\nmax_payload_entries = 4\n\
         snapshot_after_logs = 40\nkeep_logs_after_snapshot = 8\n\
         [datanode]\nreserve_bytes = 0\nscrub_bytes_per_sec = 0\nsync_interval_ms = 500\n",
    )
    .unwrap();
    let mut nodes: Vec<Node> = (1..=3).map(|i| start_node(&dir, i, &config)).collect();
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    let pool = ConnPool::new(ClientConfig { request_timeout: Duration::from_secs(20), ..Default::default() });
    for a in &addrs {
        wait_for_async(&format!("{a} accepts"), T, || pool.get(a)).await;
    }
    let members: Vec<Replica> =
        addrs.iter().enumerate().map(|(i, a)| Replica { node: NodeId(i as u64 + 1), addr: a.clone() }).collect();
    for p in 1..=PARTITIONS {
        let req = CreatePartition {
            partition: PartitionId(p),
            kind: PartitionKind::Data,
            volume: VolumeId(1),
            members: members.clone(),
            inodes: None,
        };
        for a in &addrs {
            pool.call(a, &req).await.unwrap_or_else(|e| panic!("create partition {p} on {a}: {e}"));
        }
    }

    let started = Instant::now();
    let acked = Arc::new(AtomicU64::new(0));
    let policy = RetryPolicy { deadline: T, ..Default::default() };
    let writers: Vec<_> = (1..=PARTITIONS)
        .map(|p| {
            let client = LeaderClient::new(pool.clone(), addrs.clone(), policy.clone());
            tokio::spawn(write_partition(client, p, extents_per_partition, acked.clone()))
        })
        .collect();
    let total = total_mib << 20;
    let at = |frac: f64| (total as f64 * frac) as u64;
    wait_for_async("40% written", T, || async { (acked.load(Ordering::Relaxed) >= at(0.4)).then_some(()) }).await;

    // Kill the instance that leads the most partitions, with writes in flight.
    let mut leads = [0usize; 3];
    for p in 1..=PARTITIONS {
        let s = pool.call(&addrs[0], &PartitionStatus { partition: PartitionId(p) }).await.unwrap();
        if let Some(l) = s.leader {
            leads[l.get() as usize - 1] += 1;
        }
    }
    let victim = (0..3).max_by_key(|&i| leads[i]).unwrap();
    nodes[victim].proc.sigkill();
    eprintln!("killed datanode{} (leader of {} partitions) at {:?}", victim + 1, leads[victim], started.elapsed());

    wait_for_async("70% written", T, || async { (acked.load(Ordering::Relaxed) >= at(0.7)).then_some(()) }).await;
    nodes[victim].proc.restart();
    eprintln!("restarted datanode{} at {:?}", victim + 1, started.elapsed());
    let mut extents = BTreeMap::new();
    for (p, w) in (1..=PARTITIONS).zip(writers) {
        extents.insert(p, w.await.unwrap());
    }
    assert_eq!(acked.load(Ordering::Relaxed), total);
    eprintln!("{total_mib} MiB acknowledged in {:?}", started.elapsed());

    // Every replica applies the same log up to the same index.
    for p in 1..=PARTITIONS {
        let req = PartitionStatus { partition: PartitionId(p) };
        wait_for_async(&format!("partition {p} converged on all 3"), CATCH_UP, || async {
            let mut applied = Vec::new();
            for a in &addrs {
                applied.push(pool.call(a, &req).await.map_err(|e| e.to_string())?.applied);
            }
            if applied.iter().all(|&x| x == applied[0]) {
                Ok(())
            } else {
                Err(format!("applied {applied:?}"))
            }
        })
        .await;
    }
    eprintln!("converged at {:?}", started.elapsed());

    // Byte-identical replicas: every data and CRC file, on disk.
    for p in 1..=PARTITIONS {
        let files: Vec<_> = nodes.iter().map(|n| extent_files(&n.data, p)).collect();
        let names: Vec<_> = files[0].keys().cloned().collect();
        assert_eq!(names.len(), 2 * extents_per_partition as usize, "partition {p}: {names:?}");
        for f in &files[1..] {
            assert_eq!(f.keys().cloned().collect::<Vec<_>>(), names, "partition {p}: different extents");
        }
        for name in &names {
            let first = std::fs::read(&files[0][name]).unwrap();
            for (i, f) in files.iter().enumerate().skip(1) {
                let other = std::fs::read(&f[name]).unwrap();
                assert!(other == first, "partition {p} {name}: datanode{} differs from datanode1", i + 1);
            }
        }
    }

    // The survivors snapshotted and purged their logs while the victim was down (every ~40 of the ~256
    // entries per partition), so it caught up through snapshots, which got the extents when sent: the
    // byte-identical files above are their result. No replica keeps a copy of the extents in its
    // snapshot files (builds only mark where they go): a few KiB of keyspace, against 1 GiB of data.
    let log = nodes[victim].proc.run_log();
    assert!(log.contains("extents restored from a snapshot"), "expected a catch-up through a snapshot:\n{log}");
    for (i, n) in nodes.iter().enumerate() {
        let bytes = snapshot_bytes(&n.data);
        assert!(bytes < (1 << 20), "datanode{} keeps {bytes} bytes of snapshot files", i + 1);
    }

    // And the data is what was written: sizes, plus a sample of chunks read through the leaders.
    let client = LeaderClient::new(pool.clone(), addrs.clone(), policy);
    for (p, ids) in &extents {
        for (e, &id) in ids.iter().enumerate() {
            let size = client.call(&StatExtent { partition: PartitionId(*p), extent: id }).await.unwrap().size;
            assert_eq!(size, EXTENT as u64);
            for c in [0, 17, (EXTENT / CHUNK) as u64 - 1] {
                let off = c * CHUNK as u64;
                let req = Read { partition: PartitionId(*p), extent: id, offset: off, len: CHUNK as u32 };
                let (_, data) = client.call_with_data(&req, Bytes::new()).await.unwrap();
                assert!(data == chunk(*p, e as u64, off), "partition {p} extent {id} offset {off}");
            }
        }
    }
    eprintln!("verified at {:?}", started.elapsed());
}
