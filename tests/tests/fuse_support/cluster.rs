//! A real multi-process Ferrum cluster for the FUSE tests: masters, 3 metanodes and 3 datanodes, each
//! its own process on its own loopback ports with its own data dir, and a volume created through the
//! masters' RPC API (the same call `ferrum volume create` and `ferrum dev up` make).

use std::net::SocketAddr;
use std::time::Duration;

use ferrum_proto::msg::master::{CreateVolume, GetVolumeView, ListNodes, NodeState, VolumeViewReply};
use ferrum_proto::msg::topology::VolumeView;
use ferrum_proto::rpc::{ClientConfig, ConnPool, LeaderClient, RetryPolicy};
use ferrum_proto::{ClientId, InodeId, OpId, RequestId};
use ferrum_tests::harness::{binary, free_addr, wait_for_async, Proc, TestDir};

pub const T: Duration = Duration::from_secs(90);

/// Heartbeats well inside the election timeout even on a loaded CI box running debug builds; a killed
/// leader is still replaced within seconds.
const RAFT: &str = "[raft]\nheartbeat_ms = 200\nelection_timeout_min_ms = 2000\nelection_timeout_max_ms = 4000\n";

pub struct Instance {
    pub name: String,
    pub addr: SocketAddr,
    pub proc: Proc,
    /// Where its `/metrics` are served, when asked for.
    pub metrics: Option<SocketAddr>,
}

impl Instance {
    /// Raft groups this instance leads right now (from its metrics).
    pub fn leader_groups(&self) -> u64 {
        self.metric("ferrum_raft_leader_groups").unwrap_or(0)
    }

    /// The first series of `/metrics` whose line starts with `name` (`None`: not served or absent).
    pub fn metric(&self, name: &str) -> Option<u64> {
        let addr = self.metrics?;
        let resp = ferrum_tests::harness::http::get(addr, "/metrics", Duration::from_secs(5)).ok()?;
        resp.text()
            .lines()
            .find(|l| l.starts_with(name) && !l.starts_with('#'))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .map(|v| v as u64)
    }
}

/// The index of an instance among `nodes` that leads at least one group (instances killed by a test
/// have their `metrics` cleared and are never picked).
pub fn a_leader(nodes: &[Instance]) -> usize {
    ferrum_tests::harness::wait_for("a leader among the instances", T, || {
        nodes.iter().position(|n| n.leader_groups() > 0)
    })
}

/// How many instances of each role, and extra master settings.
pub struct Layout {
    pub masters: usize,
    pub metanodes: usize,
    pub datanodes: usize,
    /// Appended to the masters' `[master]` section.
    pub master_toml: String,
    /// Appended to the masters' command lines.
    pub master_args: Vec<String>,
}

impl Default for Layout {
    fn default() -> Self {
        Layout { masters: 1, metanodes: 3, datanodes: 3, master_toml: String::new(), master_args: Vec::new() }
    }
}

/// Starts metanode or datanode `i` (`role` is "metanode" or "datanode") on fresh ports, on its data dir
/// (kept across runs), registering with `peers`.
fn spawn_node(dir: &TestDir, role: &str, i: usize, peers: &str, run: usize) -> Instance {
    let name = format!("{role}{i}");
    let (addr, metrics) = (free_addr(), free_addr());
    let args = [
        "--metrics-listen".to_string(),
        metrics.to_string(),
        "--listen".to_string(),
        addr.to_string(),
        "--data-dir".into(),
        dir.sub(&name).display().to_string(),
        "--master".into(),
        peers.to_string(),
        "--config".into(),
        dir.join("cluster.toml").display().to_string(),
        "--heartbeat-ms".into(),
        "200".into(),
    ];
    let log_name = if run == 0 { name.clone() } else { format!("{name}.run{run}") };
    let proc = Proc::spawn(&log_name, binary(&format!("ferrum-{role}")), args, dir.path());
    Instance { proc, name, addr, metrics: Some(metrics) }
}

pub struct Cluster {
    pub masters: Vec<Instance>,
    pub metanodes: Vec<Instance>,
    pub datanodes: Vec<Instance>,
}

impl Cluster {
    /// Starts `masters` masters (one Raft group), 3 metanodes and 3 datanodes, and waits until every
    /// node is registered and alive.
    pub async fn start(dir: &TestDir, masters: usize) -> Cluster {
        Cluster::start_with(dir, Layout { masters, ..Layout::default() }).await
    }

    /// Starts the cluster `layout` describes, and waits until every node is registered and alive.
    pub async fn start_with(dir: &TestDir, layout: Layout) -> Cluster {
        let masters = layout.masters;
        let config = dir.join("cluster.toml");
        std::fs::write(&config, RAFT).unwrap();
        let master_config = dir.join("master.toml");
        std::fs::write(&master_config, format!("{RAFT}[master]\nmin_free_bytes = 0\n{}", layout.master_toml)).unwrap();
        let addrs: Vec<SocketAddr> = (0..masters).map(|_| free_addr()).collect();
        let peers = addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(",");
        let masters: Vec<Instance> = addrs
            .iter()
            .enumerate()
            .map(|(i, addr)| {
                let name = format!("master{i}");
                let metrics = free_addr();
                let args = [
                    "--listen".to_string(),
                    addr.to_string(),
                    "--data-dir".into(),
                    dir.sub(&name).display().to_string(),
                    "--config".into(),
                    master_config.display().to_string(),
                    "--peers".into(),
                    peers.clone(),
                    "--metrics-listen".into(),
                    metrics.to_string(),
                ];
                let args = args.into_iter().chain(layout.master_args.iter().cloned());
                Instance {
                    proc: Proc::spawn(&name, binary("ferrum-master"), args, dir.path()),
                    name,
                    addr: *addr,
                    metrics: Some(metrics),
                }
            })
            .collect();
        let metanodes = (0..layout.metanodes).map(|i| spawn_node(dir, "metanode", i, &peers, 0)).collect();
        let datanodes = (0..layout.datanodes).map(|i| spawn_node(dir, "datanode", i, &peers, 0)).collect();
        let c = Cluster { masters, metanodes, datanodes };
        let client = c.master_client();
        let want = layout.metanodes + layout.datanodes;
        wait_for_async("every metanode and datanode registered and alive", T, || async {
            let nodes = client.call(&ListNodes {}).await.map_err(|e| e.to_string())?;
            let alive = nodes.iter().filter(|n| n.state == NodeState::Alive).count();
            if alive == want {
                Ok(())
            } else {
                Err(format!("{alive}/{want} alive"))
            }
        })
        .await;
        c
    }

    /// Stops metanode or datanode `i` (SIGTERM) and starts it again on its data dir, on new ports.
    pub fn restart_on_new_port(&mut self, dir: &TestDir, role: &str, i: usize, run: usize) {
        let peers = self.master_addrs();
        let nodes = if role == "metanode" { &mut self.metanodes } else { &mut self.datanodes };
        nodes[i].proc.sigterm();
        nodes[i].proc.wait_exit(T).expect("the node stops on SIGTERM");
        nodes[i] = spawn_node(dir, role, i, &peers, run);
    }

    pub fn master_addrs(&self) -> String {
        self.masters.iter().map(|m| m.addr.to_string()).collect::<Vec<_>>().join(",")
    }

    pub fn master_client(&self) -> LeaderClient {
        let addrs = self.masters.iter().map(|m| m.addr.to_string()).collect();
        LeaderClient::new(ConnPool::new(ClientConfig::default()), addrs, RetryPolicy::default())
    }

    /// Creates a 3-replica volume and waits until its view lists the root's meta partition and
    /// writable data partitions.
    pub async fn create_volume(&self, name: &str) -> VolumeView {
        let client = self.master_client();
        let op = OpId::new(ClientId(0xF05E), RequestId(1));
        let req = CreateVolume { op, name: name.to_string(), replicas: 3, capacity: 0, owner: "test".into() };
        wait_for_async("the volume to be created", T, || client.call(&req)).await;
        wait_for_async("the volume view to be complete", T, || async {
            match client.call(&GetVolumeView { name: name.to_string(), known_version: 0 }).await {
                Ok(VolumeViewReply::Changed(v))
                    if v.meta_partition_of(InodeId::ROOT).is_some() && v.data_partitions.iter().any(|p| p.writable) =>
                {
                    Ok(v)
                }
                other => Err(format!("{other:?}")),
            }
        })
        .await
    }
}
