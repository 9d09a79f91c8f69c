//! An in-process cluster of datanodes on loopback ports: real RPC, real Raft, real RocksDB and
//! extent files, one temp dir per node. Faster to start than processes, and the tests can reach into
//! a node (its files, its metrics, its disk reserve).

#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ferrum_datanode::client::PartitionClient;
use ferrum_datanode::{background, data_app_factory, DataApp, DataConfig, DataContext, DataMetrics, DataService};
use ferrum_proto::msg::master::CreatePartition;
use ferrum_proto::msg::topology::{PartitionKind, Replica};
use ferrum_proto::rpc::{serve, ClientConfig, ConnPool, ServerConfig};
use ferrum_proto::{ClientId, ExtentId, NodeId, PartitionId, VolumeId};
use ferrum_raftstore::{MultiRaft, MultiRaftConfig, Store};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const T: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Settings {
    pub snapshot_after_logs: u64,
    pub keep_logs_after_snapshot: u64,
    pub data: DataConfig,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            snapshot_after_logs: 5000,
            keep_logs_after_snapshot: 1000,
            data: DataConfig { reserve_bytes: 0, scrub_bytes_per_sec: 0, sync_interval_ms: 200, ..Default::default() },
        }
    }
}

pub struct TestNode {
    pub id: NodeId,
    pub addr: String,
    pub ctx: Arc<DataContext>,
    pub svc: Arc<DataService>,
    pub raft: Arc<MultiRaft>,
    stop: CancellationToken,
    pub dir: tempfile::TempDir,
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl TestNode {
    pub async fn start(id: u64, s: &Settings) -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let store = Store::open(dir.path()).unwrap();
        let ctx = DataContext::new(dir.path().to_path_buf(), store.clone(), DataMetrics::default(), s.data.clone());
        let pool = ConnPool::new(ClientConfig::default());
        let cfg = MultiRaftConfig {
            node_id: NodeId(id),
            advertise: addr.clone(),
            // openraft 0.9 times an AppendEntries out after one heartbeat interval; MiB entries in a
            // debug build on a busy 2-core machine need room.
            heartbeat: Duration::from_millis(300),
            election_timeout_min: Duration::from_millis(1500),
            election_timeout_max: Duration::from_millis(3000),
            snapshot_after_logs: s.snapshot_after_logs,
            keep_logs_after_snapshot: s.keep_logs_after_snapshot,
            sync_every_entry: false,
            recovery_timeout: Duration::from_secs(60),
            max_payload_entries: 4,
            snapshot_rate_bytes_per_sec: 0,
        };
        let raft = MultiRaft::open(cfg, store, pool.clone(), data_app_factory(ctx.clone())).await.unwrap();
        let svc = DataService::new(raft.clone(), ctx.clone(), pool);
        let stop = CancellationToken::new();
        background::start(&svc, stop.clone());
        tokio::spawn(serve(listener, svc.clone(), ServerConfig::default(), stop.clone()));
        TestNode { id: NodeId(id), addr, ctx, svc, raft, stop, dir }
    }

    pub fn app(&self, p: PartitionId) -> Arc<DataApp> {
        self.ctx.partition(p).unwrap()
    }
}

pub struct Cluster {
    pub nodes: Vec<TestNode>,
    pub pool: ConnPool,
}

impl Cluster {
    pub async fn start(n: u64, s: &Settings) -> Cluster {
        init_logging();
        let mut nodes = Vec::new();
        for id in 1..=n {
            nodes.push(TestNode::start(id, s).await);
        }
        Cluster { nodes, pool: ConnPool::new(ClientConfig::default()) }
    }

    pub fn members(&self) -> Vec<Replica> {
        self.nodes.iter().map(|n| Replica { node: n.id, addr: n.addr.clone() }).collect()
    }

    /// Asks the nodes at `on` (indexes) to host partition `p` whose members are all the nodes.
    pub async fn create_partition_on(&self, p: PartitionId, on: &[usize]) {
        let req = CreatePartition {
            partition: p,
            kind: PartitionKind::Data,
            volume: VolumeId(1),
            members: self.members(),
            inodes: None,
        };
        for &i in on {
            self.pool.call(&self.nodes[i].addr, &req).await.unwrap();
        }
    }

    pub async fn create_partition(&self, p: PartitionId) {
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        self.create_partition_on(p, &all).await
    }

    pub fn client(&self, p: PartitionId) -> PartitionClient {
        let addrs = self.nodes.iter().map(|n| n.addr.clone()).collect();
        PartitionClient::new(self.pool.clone(), p, addrs, ClientId(99))
    }

    pub fn leader_of(&self, p: PartitionId) -> Option<usize> {
        let s = self.nodes[0].raft.status(p.get().into()).ok()?;
        let l = s.leader?;
        self.nodes.iter().position(|n| n.id == l)
    }

    /// Waits until the nodes at `on` all applied the same log index (the leader's).
    pub async fn wait_converged(&self, p: PartitionId, on: &[usize]) {
        wait_until(&format!("partition {p} converged"), T, || async {
            let applied: Vec<u64> = on
                .iter()
                .map(|&i| self.nodes[i].raft.status(p.get().into()).ok().and_then(|s| s.last_applied).unwrap_or(0))
                .collect();
            let leader = self.leader_of(p).map(|l| self.nodes[l].raft.status(p.get().into()).unwrap().last_log_index);
            (applied.iter().all(|a| Some(Some(*a)) == leader)).then_some(()).ok_or(format!("{applied:?} vs {leader:?}"))
        })
        .await
    }

    /// The raw bytes of an extent's data and CRC files on node `i` (None if it has no such extent).
    pub fn extent_files(&self, i: usize, p: PartitionId, e: ExtentId) -> Option<(Vec<u8>, Vec<u8>)> {
        let ext = self.nodes[i].app(p).partition().extent(e)?;
        let [d, c] = ext.paths();
        Some((std::fs::read(d).unwrap(), std::fs::read(c).unwrap()))
    }
}

/// Logs at `RUST_LOG` (default: info for Ferrum, warn for openraft) into the test's captured
/// output, which the test runner shows only for a failing test.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

pub async fn wait_until<T, E: std::fmt::Debug, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match f().await {
            Ok(v) => return v,
            Err(e) => e,
        };
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}; last: {last:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
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
