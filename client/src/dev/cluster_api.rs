//! What `ferrum dev up` asks the masters, over their RPC port (the same protocol nodes use): wait until
//! a leader serves and every metanode and datanode registered and heartbeats, then create the volume.

use std::time::{Duration, Instant};

use ferrum_proto::msg::master::{CreateVolume, ListNodes, NodeRole, NodeState};
use ferrum_proto::rpc::{ClientConfig, ConnPool, LeaderClient, RetryPolicy};
use ferrum_proto::{ClientId, ErrorCode, OpId, RequestId};

use super::state::Cluster;

fn masters(c: &Cluster, deadline: Instant) -> LeaderClient {
    let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(1));
    let policy = RetryPolicy { deadline: left, ..Default::default() };
    LeaderClient::new(ConnPool::new(ClientConfig::default()), c.master_rpc_addrs(), policy)
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())
}

pub fn wait_ready(c: &Cluster, metanodes: usize, datanodes: usize, deadline: Instant) -> Result<(), String> {
    let client = masters(c, deadline);
    runtime()?.block_on(async {
        loop {
            let last = match client.call(&ListNodes {}).await {
                Ok(nodes) => {
                    let alive = |role| nodes.iter().filter(|n| n.role == role && n.state == NodeState::Alive).count();
                    let (m, d) = (alive(NodeRole::Meta), alive(NodeRole::Data));
                    if m >= metanodes && d >= datanodes {
                        return Ok(());
                    }
                    format!("{m}/{metanodes} metanodes and {d}/{datanodes} datanodes alive")
                }
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                return Err(format!("the cluster did not become ready in time: {last}"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

pub fn create_volume(c: &Cluster, name: &str, replicas: u8, deadline: Instant) -> Result<(), String> {
    let client = masters(c, deadline);
    // One op id for every retry, so a retried create is not refused as a duplicate name.
    let op = OpId { client: ClientId(std::process::id() as u64), request: RequestId(1) };
    let req = CreateVolume { op, name: name.to_string(), replicas, capacity: 0, owner: "dev".into() };
    runtime()?.block_on(async {
        match client.call(&req).await {
            Ok(created) => {
                for w in created.warnings {
                    eprintln!("warning: {w}");
                }
                Ok(())
            }
            Err(e) if matches!(e.code(), ErrorCode::VolumeExists(_)) => Ok(()),
            Err(e) => Err(format!("creating volume {name:?}: {e}")),
        }
    })
}
