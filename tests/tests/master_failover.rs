//! Three `ferrum-master` processes on three loopback ports form one group. Acknowledged changes
//! (node registrations) are made; the leader is SIGKILLed; a new leader serves within seconds with
//! every acknowledged change. The killed master restarts on its data dir and catches up (through a
//! snapshot: the log it missed was purged meanwhile); after the second leader is killed too, the
//! restarted master and the last one still hold everything.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ferrum_proto::msg::master::{GetClusterStatus, ListNodes, NodeRole, RegisterNode};
use ferrum_proto::rpc::{ClientConfig, ConnPool, LeaderClient, RetryPolicy};
use ferrum_proto::{ErrorCode, NodeId};
use ferrum_tests::harness::http;
use ferrum_tests::harness::{binary, free_addr, wait_for, wait_for_async, Proc, TestDir};

const T: Duration = Duration::from_secs(60);
/// What "a new leader serves within a few seconds" means here (elections take ~1 s).
const FAILOVER: Duration = Duration::from_secs(5);

struct Master {
    addr: SocketAddr,
    admin: SocketAddr,
    metrics: SocketAddr,
    proc: Proc,
}

fn start_masters(dir: &TestDir, n: usize) -> Vec<Master> {
    let config = dir.join("master.toml");
    // Small snapshot threshold: a master that was down catches up from a snapshot.
    std::fs::write(
        &config,
        "[raft]\nheartbeat_ms = 100\nelection_timeout_min_ms = 500\nelection_timeout_max_ms = 1000\n\
         snapshot_after_logs = 20\nkeep_logs_after_snapshot = 5\n",
    )
    .unwrap();
    let addrs: Vec<SocketAddr> = (0..n).map(|_| free_addr()).collect();
    let peers = addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(",");
    addrs
        .iter()
        .enumerate()
        .map(|(i, addr)| {
            let (admin, metrics) = (free_addr(), free_addr());
            let args = [
                "--listen".to_string(),
                addr.to_string(),
                "--data-dir".into(),
                dir.sub(&format!("master{i}")).display().to_string(),
                "--peers".into(),
                peers.clone(),
                "--admin-listen".into(),
                admin.to_string(),
                "--metrics-listen".into(),
                metrics.to_string(),
                "--config".into(),
                config.display().to_string(),
            ];
            Master {
                addr: *addr,
                admin,
                metrics,
                proc: Proc::spawn(&format!("master{i}"), binary("ferrum-master"), args, dir.path()),
            }
        })
        .collect()
}

fn register(i: u64) -> RegisterNode {
    RegisterNode {
        role: if i.is_multiple_of(2) { NodeRole::Meta } else { NodeRole::Data },
        advertise: format!("127.0.0.1:{}", 30000 + i),
        host: format!("host{}", i % 3),
        instance_uuid: format!("instance-{i}"),
    }
}

fn client(addrs: &[String], deadline: Duration) -> LeaderClient {
    let pool = ConnPool::new(ClientConfig { request_timeout: Duration::from_secs(5), ..Default::default() });
    LeaderClient::new(pool, addrs.to_vec(), RetryPolicy { deadline, ..RetryPolicy::default() })
}

async fn leader_of(addrs: &[String]) -> String {
    let status = client(addrs, T).call(&GetClusterStatus {}).await.expect("a leader");
    status.leader.expect("status names the leader").addr
}

/// Every acknowledged registration is there, with its id, as seen by the leader among `addrs`.
async fn check_all(addrs: &[String], acked: &[(u64, NodeId)]) {
    let c = client(addrs, T);
    let nodes = c.call(&ListNodes {}).await.expect("list nodes");
    assert_eq!(nodes.len(), acked.len(), "registered nodes");
    for (i, id) in acked {
        let n = nodes.iter().find(|n| n.id == *id).unwrap_or_else(|| panic!("node {id} (registration {i}) lost"));
        assert_eq!(n.advertise, register(*i).advertise);
        // Registering again with the same identity returns the same id.
        assert_eq!(c.call(&register(*i)).await.unwrap().node_id, *id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_killed_new_leader_serves_nothing_lost() {
    let dir = TestDir::named("master_failover");
    let mut masters = start_masters(&dir, 3);
    let all: Vec<String> = masters.iter().map(|m| m.addr.to_string()).collect();
    let c = client(&all, T);
    let mut acked = Vec::new();
    for i in 0..30 {
        acked.push((i, c.call(&register(i)).await.expect("registration acknowledged").node_id));
    }
    let ids: std::collections::HashSet<_> = acked.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids.len(), 30, "distinct ids");

    // SIGKILL the leader.
    let first = leader_of(&all).await;
    let k = masters.iter().position(|m| m.addr.to_string() == first).unwrap();
    masters[k].proc.sigkill();
    let live: Vec<String> = all.iter().filter(|a| **a != first).cloned().collect();
    let killed_at = Instant::now();
    let quick = client(&live, FAILOVER);
    let id = quick.call(&register(100)).await.unwrap_or_else(|e| panic!("no new leader within {FAILOVER:?}: {e}"));
    let failover = killed_at.elapsed();
    println!("new leader served a write {failover:?} after the kill");
    assert!(failover < FAILOVER, "{failover:?}");
    acked.push((100, id.node_id));
    assert_ne!(leader_of(&live).await, first);
    check_all(&live, &acked).await;

    // Any master's admin API answers, forwarding to the leader.
    let now_leader = leader_of(&live).await;
    let follower_admin =
        masters.iter().find(|m| m.addr.to_string() != first && m.addr.to_string() != now_leader).unwrap().admin;
    let resp = http::get(follower_admin, "/api/v1/nodes", Duration::from_secs(20)).expect("admin API answers");
    assert_eq!(resp.status, 200, "{}", resp.text());
    let nodes: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(nodes.as_array().unwrap().len(), acked.len());

    // The leader says so on /metrics, with the cluster's counts.
    let leader_metrics = masters.iter().find(|m| m.addr.to_string() == now_leader).unwrap().metrics;
    // Refreshed once a second.
    wait_for("the leader's metrics say it leads", T, || {
        let text = http::get(leader_metrics, "/metrics", Duration::from_secs(5)).map(|r| r.text()).unwrap_or_default();
        let has = |series: &str| text.lines().any(|l| l.starts_with(series));
        has("ferrum_master_nodes{")
            && has("ferrum_master_under_replicated_partitions{")
            && text.lines().any(|l| l.starts_with("ferrum_master_leader{") && l.ends_with(" 1"))
    });

    // The killed master comes back on its data dir (no flags changed) and catches up; then the second
    // leader dies: the restarted master is needed for a quorum, so what is served proves it caught up.
    for i in 200..260 {
        acked.push((i, c.call(&register(i)).await.unwrap().node_id));
    }
    masters[k].proc.restart();
    let restarted = all[k].clone();
    wait_for_async("the restarted master follows the leader", T, || async {
        let s = ConnPool::new(ClientConfig::default()).call(&restarted, &ListNodes {}).await;
        match s {
            Err(e) if matches!(e.code(), ErrorCode::NotLeader { leader: Some(_) }) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let second = leader_of(&live).await;
    let j = masters.iter().position(|m| m.addr.to_string() == second).unwrap();
    masters[j].proc.sigkill();
    let rest: Vec<String> = all.iter().filter(|a| **a != second).cloned().collect();
    check_all(&rest, &acked).await;
    masters[k].proc.assert_running("after the second failover");
    let log = masters[k].proc.run_log();
    assert!(log.contains("installed snapshot from leader"), "expected a catch-up through a snapshot; log:\n{log}");
}
