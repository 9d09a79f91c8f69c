//! In-process test fixtures: masters started through `ferrum_master::start` on temp dirs, and fake
//! metanodes/datanodes (RPC servers in this process) that register, heartbeat, count the master's
//! calls and record the partitions it asks them to host.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrum_master::{MasterConfig, MasterSection, RunningMaster};
use ferrum_proto::msg::master::{
    CreatePartition, DeletePartition, GetResources, Heartbeat, NodeRole, PartitionReport, RegisterNode,
    RegisterNodeResp, Resources, SplitMetaPartition, SplitMetaPartitionResp,
};
use ferrum_proto::msg::Rpc;
use ferrum_proto::rpc::{
    handler_fn, serve, ClientConfig, ConnPool, Incoming, LeaderClient, Outgoing, RetryPolicy, ServerConfig,
};
use ferrum_proto::{ErrorCode, InodeId, NodeId, Opcode, PartitionId};
use ferrum_raftstore::instance::{InstanceConfig, RaftConfig};
use tokio_util::sync::CancellationToken;

pub const T: Duration = Duration::from_secs(30);

/// A loopback address free right now and never handed out before in this process (tests run in
/// parallel threads and start servers some time after picking their ports).
pub fn free_addr() -> SocketAddr {
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let mut seen = HANDED_OUT.lock().unwrap();
        if !seen.contains(&addr.port()) {
            seen.push(addr.port());
            return addr;
        }
    }
}

pub fn fast_raft() -> RaftConfig {
    RaftConfig { heartbeat_ms: 100, election_timeout_min_ms: 500, election_timeout_max_ms: 1000, ..Default::default() }
}

pub fn master_config(dir: &Path, listen: SocketAddr, master: MasterSection) -> MasterConfig {
    MasterConfig {
        instance: InstanceConfig {
            listen,
            advertise: listen.to_string(),
            data_dir: dir.to_path_buf(),
            metrics_listen: None,
            log: "warn".into(),
            raft: fast_raft(),
            block_cache_mib: ferrum_raftstore::instance::DEFAULT_BLOCK_CACHE_MIB,
        },
        master,
    }
}

/// Quick timeouts so tests see state changes in seconds.
pub fn test_section() -> MasterSection {
    MasterSection {
        suspect_after_ms: 1_000,
        dead_after_ms: 3_000,
        reconcile_interval_ms: 200,
        node_rpc_timeout_ms: 3_000,
        min_free_bytes: 0,
        ..Default::default()
    }
}

pub async fn start_master(dir: &Path, listen: SocketAddr, section: MasterSection) -> RunningMaster {
    ferrum_master::start(master_config(dir, listen, section)).await.expect("master starts")
}

pub fn pool() -> ConnPool {
    ConnPool::new(ClientConfig { request_timeout: Duration::from_secs(20), ..Default::default() })
}

pub fn leader_client(masters: &[String], deadline: Duration) -> LeaderClient {
    LeaderClient::new(pool(), masters.to_vec(), RetryPolicy { deadline, ..RetryPolicy::default() })
}

/// Calls the master group's leader among `masters`.
pub async fn call<R: Rpc>(masters: &[String], req: R) -> Result<R::Response, ErrorCode> {
    leader_client(masters, T).call(&req).await.map_err(|e| e.code())
}

/// Polls `f` until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() >= until {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A metanode or datanode stand-in.
pub struct FakeNode {
    pub role: NodeRole,
    pub addr: String,
    pub host: String,
    pub uuid: String,
    pub id: Mutex<Option<NodeId>>,
    pub resource_calls: AtomicU64,
    pub created: Mutex<BTreeMap<PartitionId, CreatePartition>>,
    pub deleted: Mutex<Vec<PartitionId>>,
    /// Sent with every heartbeat.
    pub reports: Mutex<Vec<PartitionReport>>,
    /// Heartbeats stop while false (the node looks dead).
    pub beating: AtomicBool,
    pub disk_free: AtomicU64,
    stop: CancellationToken,
}

impl FakeNode {
    /// Starts serving and heartbeating to `masters` (registering first).
    pub async fn start(role: NodeRole, host: &str, masters: Vec<String>) -> Arc<FakeNode> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let node = Arc::new(FakeNode {
            role,
            uuid: format!("uuid-{addr}"),
            addr,
            host: host.into(),
            id: Mutex::new(None),
            resource_calls: AtomicU64::new(0),
            created: Mutex::new(BTreeMap::new()),
            deleted: Mutex::new(Vec::new()),
            reports: Mutex::new(Vec::new()),
            beating: AtomicBool::new(true),
            disk_free: AtomicU64::new(100 << 30),
            stop: CancellationToken::new(),
        });
        let n = node.clone();
        let handler = handler_fn(move |req: Incoming| {
            let n = n.clone();
            async move { n.handle(req) }
        });
        tokio::spawn(serve(listener, Arc::new(handler), ServerConfig::default(), node.stop.clone()));
        tokio::spawn(node.clone().heartbeats(masters));
        node
    }

    fn handle(&self, req: Incoming) -> Result<Outgoing, ErrorCode> {
        match req.opcode {
            Opcode::MASTER_GET_RESOURCES => {
                let _: GetResources = req.decode()?;
                self.resource_calls.fetch_add(1, Ordering::SeqCst);
                Ok(Outgoing::msg(&Resources {
                    disk_total: 200 << 30,
                    disk_free: self.disk_free.load(Ordering::SeqCst),
                    mem_total: 1 << 30,
                    cores: 2,
                    version: "fake".into(),
                    features: ferrum_raftstore::node::FEATURES.iter().map(|f| f.to_string()).collect(),
                }))
            }
            Opcode::MASTER_CREATE_PARTITION => {
                let c: CreatePartition = req.decode()?;
                let mut created = self.created.lock().unwrap();
                if let Some(prev) = created.get(&c.partition) {
                    if *prev != c {
                        return Err(ErrorCode::InvalidArgument("partition exists with another description".into()));
                    }
                }
                created.insert(c.partition, c);
                Ok(Outgoing::msg(&()))
            }
            Opcode::MASTER_DELETE_PARTITION => {
                let d: DeletePartition = req.decode()?;
                self.deleted.lock().unwrap().push(d.partition);
                match self.created.lock().unwrap().remove(&d.partition) {
                    Some(_) => Ok(Outgoing::msg(&())),
                    None => Err(ErrorCode::PartitionNotFound(d.partition)),
                }
            }
            Opcode::MASTER_SPLIT_META_PARTITION => {
                let s: SplitMetaPartition = req.decode()?;
                let items =
                    self.reports.lock().unwrap().iter().find(|r| r.partition == s.partition).map_or(0, |r| r.items);
                Ok(Outgoing::msg(&SplitMetaPartitionResp { end: InodeId(items + 1 + s.step) }))
            }
            other => Err(ErrorCode::UnknownOpcode(other.0)),
        }
    }

    async fn heartbeats(self: Arc<Self>, masters: Vec<String>) {
        let master = leader_client(&masters, Duration::from_secs(5));
        loop {
            if self.stop.is_cancelled() {
                return;
            }
            if self.beating.load(Ordering::SeqCst) {
                let id = *self.id.lock().unwrap();
                match id {
                    None => {
                        let req = RegisterNode {
                            role: self.role,
                            advertise: self.addr.clone(),
                            host: self.host.clone(),
                            instance_uuid: self.uuid.clone(),
                        };
                        if let Ok(RegisterNodeResp { node_id }) = master.call(&req).await {
                            *self.id.lock().unwrap() = Some(node_id);
                        }
                    }
                    Some(node) => {
                        let hb = Heartbeat {
                            node,
                            disk_total: 200 << 30,
                            disk_free: self.disk_free.load(Ordering::SeqCst),
                            partitions: self.reports.lock().unwrap().clone(),
                        };
                        if master.call(&hb).await.is_err_and(|e| e.code() == ErrorCode::NotFound) {
                            *self.id.lock().unwrap() = None;
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn id(&self) -> Option<NodeId> {
        *self.id.lock().unwrap()
    }

    pub fn hosts(&self, p: PartitionId) -> bool {
        self.created.lock().unwrap().contains_key(&p)
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// `n` fake nodes of `role`, each on host `host(i)`, registered.
pub async fn nodes(role: NodeRole, n: usize, host: impl Fn(usize) -> String, masters: &[String]) -> Vec<Arc<FakeNode>> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(FakeNode::start(role, &host(i), masters.to_vec()).await);
    }
    for node in &out {
        wait_for("fake node registered", T, || async { node.id() }).await;
    }
    out
}
