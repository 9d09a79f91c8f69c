//! Real metanodes and datanodes without a master: 3 `ferrum-metanode` and 3 `ferrum-datanode`
//! processes with pinned node ids, partitions created on them the way the master would (the same
//! `CreatePartition` to every member), and a stand-in master in this process that answers only what a
//! client asks a master (`GetVolumeView`, `GetVolume`) with the fixed view. It puts the client's RPC
//! backends against the real services while the master's node registration is not available to every
//! service yet.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ferrum_proto::msg::master::{CreatePartition, GetVolume, GetVolumeView, VolumeInfo, VolumeState, VolumeViewReply};
use ferrum_proto::msg::topology::{
    DataPartitionView, InodeRange, MetaPartitionView, PartitionKind, Replica, VolumeView,
};
use ferrum_proto::msg::Rpc;
use ferrum_proto::rpc::{handler_fn, serve, ClientConfig, ConnPool, Incoming, Outgoing, ServerConfig};
use ferrum_proto::{ErrorCode, InodeId, NodeId, PartitionId, VolumeId};
use ferrum_raftstore::instance::Shutdown;
use ferrum_tests::harness::{binary, free_addr, wait_for_async, Proc, TestDir};

use super::cluster::Instance;

const T: Duration = Duration::from_secs(60);
/// Heartbeats well inside the election timeout even on a loaded CI box running debug builds; a killed
/// leader is still replaced within seconds.
const RAFT: &str = "[raft]\nheartbeat_ms = 200\nelection_timeout_min_ms = 2000\nelection_timeout_max_ms = 4000\n";
pub const VOLUME: &str = "vol";

pub struct StaticCluster {
    pub metanodes: Vec<Instance>,
    pub datanodes: Vec<Instance>,
    /// The stand-in master's RPC address.
    pub master: SocketAddr,
    pub view: VolumeView,
    stop: Shutdown,
}

impl Drop for StaticCluster {
    fn drop(&mut self) {
        self.stop.trigger();
    }
}

fn start(dir: &TestDir, role: &str, id: u64, config: &std::path::Path) -> Instance {
    let name = format!("{role}{id}");
    let (addr, metrics) = (free_addr(), free_addr());
    let args = [
        "--metrics-listen".to_string(),
        metrics.to_string(),
        "--node-id".to_string(),
        id.to_string(),
        "--listen".into(),
        addr.to_string(),
        "--data-dir".into(),
        dir.sub(&name).display().to_string(),
        "--config".into(),
        config.display().to_string(),
    ];
    let proc = Proc::spawn(&name, binary(&format!("ferrum-{role}")), args, dir.path());
    Instance { proc, name, addr, metrics: Some(metrics) }
}

impl StaticCluster {
    /// One meta partition holding every inode, `data_partitions` data partitions, all 3-replicated.
    pub async fn start(dir: &TestDir, data_partitions: u64) -> StaticCluster {
        let config = dir.join("node.toml");
        std::fs::write(&config, RAFT).unwrap();
        let metanodes: Vec<Instance> = (1..=3).map(|i| start(dir, "metanode", i, &config)).collect();
        let datanodes: Vec<Instance> = (1..=3).map(|i| start(dir, "datanode", i, &config)).collect();
        let pool = ConnPool::new(ClientConfig::default());
        for n in metanodes.iter().chain(&datanodes) {
            let a = n.addr.to_string();
            wait_for_async(&format!("{} accepts", n.name), T, || pool.get(&a)).await;
        }
        let replicas = |nodes: &[Instance]| {
            nodes
                .iter()
                .enumerate()
                .map(|(i, n)| Replica { node: NodeId(i as u64 + 1), addr: n.addr.to_string() })
                .collect::<Vec<_>>()
        };
        let (meta_replicas, data_replicas) = (replicas(&metanodes), replicas(&datanodes));
        let inodes = InodeRange { start: InodeId::ROOT, end: InodeId(u64::MAX) };
        let mut view = VolumeView {
            volume: VolumeId(1),
            name: VOLUME.into(),
            version: 1,
            meta_partitions: vec![MetaPartitionView {
                partition: PartitionId(1),
                inodes,
                replicas: meta_replicas.clone(),
                leader: None,
            }],
            data_partitions: Vec::new(),
        };
        let create = CreatePartition {
            partition: PartitionId(1),
            kind: PartitionKind::Meta,
            volume: VolumeId(1),
            members: meta_replicas,
            inodes: Some(inodes),
        };
        for n in &metanodes {
            pool.call(&n.addr.to_string(), &create)
                .await
                .unwrap_or_else(|e| panic!("meta partition on {}: {e}", n.name));
        }
        for p in 2..2 + data_partitions {
            let create = CreatePartition {
                partition: PartitionId(p),
                kind: PartitionKind::Data,
                volume: VolumeId(1),
                members: data_replicas.clone(),
                inodes: None,
            };
            for n in &datanodes {
                pool.call(&n.addr.to_string(), &create)
                    .await
                    .unwrap_or_else(|e| panic!("data partition on {}: {e}", n.name));
            }
            view.data_partitions.push(DataPartitionView {
                partition: PartitionId(p),
                replicas: data_replicas.clone(),
                leader: None,
                writable: true,
            });
        }
        let stop = Shutdown::new();
        let master = stand_in_master(view.clone(), &stop).await;
        StaticCluster { metanodes, datanodes, master, view, stop }
    }
}

/// Serves `GetVolumeView` and `GetVolume` for the one volume.
async fn stand_in_master(view: VolumeView, stop: &Shutdown) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let view = Arc::new(view);
    let handler = handler_fn(move |req: Incoming| {
        let view = view.clone();
        async move {
            if req.opcode == GetVolumeView::OPCODE {
                let q: GetVolumeView = req.decode()?;
                if q.name != view.name {
                    return Err(ErrorCode::VolumeNotFound(q.name));
                }
                let reply = if q.known_version == view.version {
                    VolumeViewReply::Unchanged { version: view.version }
                } else {
                    VolumeViewReply::Changed(view.as_ref().clone())
                };
                Ok(Outgoing::msg(&reply))
            } else if req.opcode == GetVolume::OPCODE {
                let info = VolumeInfo {
                    id: view.volume,
                    name: view.name.clone(),
                    replicas: 3,
                    capacity: 0,
                    owner: "test".into(),
                    state: VolumeState::Ready,
                    view_version: view.version,
                    meta_partitions: view.meta_partitions.len() as u64,
                    data_partitions: view.data_partitions.len() as u64,
                    created_unix_ms: 0,
                };
                Ok(Outgoing::msg(&info))
            } else {
                Err(ErrorCode::UnknownOpcode(req.opcode.0))
            }
        }
    });
    tokio::spawn(serve(listener, Arc::new(handler), ServerConfig::default(), stop.token()));
    addr
}
