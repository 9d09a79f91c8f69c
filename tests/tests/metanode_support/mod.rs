//! Shared by the metanode multi-process tests: a cluster of `ferrum-metanode` processes with pinned
//! node ids (no master), meta partitions created on every member the way the master would, and a
//! client that reaches each partition's leader.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferrum_proto::msg::master::CreatePartition;
use ferrum_proto::msg::meta::MetaRoute;
use ferrum_proto::msg::topology::{InodeRange, PartitionKind, Replica};
use ferrum_proto::msg::Rpc;
use ferrum_proto::rpc::{ClientConfig, ConnPool, LeaderClient, RetryPolicy};
use ferrum_proto::{ClientId, ErrorCode, InodeId, NodeId, OpId, PartitionId, RequestId, VolumeId};
use ferrum_tests::harness::{binary, free_addr, wait_for_async, Proc, TestDir};

pub const T: Duration = Duration::from_secs(60);

pub const RAFT: &str = "[raft]\nheartbeat_ms = 100\nelection_timeout_min_ms = 500\nelection_timeout_max_ms = 1000\n";

pub struct Metanode {
    pub id: u64,
    pub addr: SocketAddr,
    pub proc: Proc,
}

/// Starts `n` metanodes (ids 1..=n) with `config` as their config file and `env` set.
pub fn start(dir: &TestDir, n: u64, config: &str, env: &[(&str, String)]) -> Vec<Metanode> {
    let path = dir.join("metanode.toml");
    std::fs::write(&path, config).unwrap();
    (1..=n)
        .map(|id| {
            let addr = free_addr();
            let mut b = Proc::builder(&format!("metanode{id}"), binary("ferrum-metanode"), dir.path()).args([
                "--node-id".to_string(),
                id.to_string(),
                "--listen".into(),
                addr.to_string(),
                "--data-dir".into(),
                dir.sub(&format!("meta{id}")).display().to_string(),
                "--config".into(),
                path.display().to_string(),
            ]);
            for (k, v) in env {
                b = b.env(k, v);
            }
            Metanode { id, addr, proc: b.spawn() }
        })
        .collect()
}

pub fn pool() -> ConnPool {
    ConnPool::new(ClientConfig { request_timeout: Duration::from_secs(20), ..Default::default() })
}

/// Creates partitions `(id, first inode, end)` replicated on every node, as the master does: the same
/// `CreatePartition` to each member.
pub async fn create_partitions(pool: &ConnPool, nodes: &[Metanode], parts: &[(u64, u64, u64)]) -> Vec<MetaRoute> {
    for n in nodes {
        let a = n.addr.to_string();
        wait_for_async(&format!("{a} accepts"), T, || pool.get(&a)).await;
    }
    let members: Vec<Replica> =
        nodes.iter().map(|n| Replica { node: NodeId(n.id), addr: n.addr.to_string() }).collect();
    let mut routes = Vec::new();
    for &(id, start, end) in parts {
        let range = InodeRange { start: InodeId(start), end: InodeId(end) };
        let cp = CreatePartition {
            partition: PartitionId(id),
            kind: PartitionKind::Meta,
            volume: VolumeId(1),
            members: members.clone(),
            inodes: Some(range),
        };
        for n in nodes {
            pool.call(&n.addr.to_string(), &cp)
                .await
                .unwrap_or_else(|e| panic!("create partition {id} on {}: {e}", n.addr));
        }
        routes.push(MetaRoute {
            partition: PartitionId(id),
            inodes: range,
            replicas: members.iter().map(|r| r.addr.clone()).collect(),
        });
    }
    routes
}

/// A client of a volume's meta partitions: finds leaders, retries, numbers its requests.
#[derive(Clone)]
pub struct MetaClient {
    pub routes: Vec<MetaRoute>,
    leaders: Vec<LeaderClient>,
    client: ClientId,
    next: Arc<AtomicU64>,
}

impl MetaClient {
    pub fn new(pool: &ConnPool, routes: Vec<MetaRoute>, client: u64) -> MetaClient {
        let policy = RetryPolicy { deadline: Duration::from_secs(30), ..Default::default() };
        let leaders =
            routes.iter().map(|r| LeaderClient::new(pool.clone(), r.replicas.clone(), policy.clone())).collect();
        MetaClient { routes, leaders, client: ClientId(client), next: Arc::new(AtomicU64::new(1)) }
    }

    pub fn op(&self) -> OpId {
        OpId::new(self.client, RequestId(self.next.fetch_add(1, Ordering::Relaxed)))
    }

    fn index(&self, p: PartitionId) -> usize {
        self.routes.iter().position(|r| r.partition == p).expect("known partition")
    }

    pub fn partition_of(&self, ino: InodeId) -> PartitionId {
        self.routes.iter().find(|r| r.inodes.contains(ino)).expect("a partition holds it").partition
    }

    pub async fn call<R: Rpc>(&self, p: PartitionId, req: &R) -> Result<R::Response, ErrorCode> {
        self.leaders[self.index(p)].call(req).await.map_err(|e| e.code())
    }

    /// The address that last answered for `p` as leader.
    pub fn leader(&self, p: PartitionId) -> Option<String> {
        self.leaders[self.index(p)].leader()
    }
}
