//! Multi-Raft across processes: 3 `ferrum-kvnode` instances on 3 loopback ports host 10 groups; every
//! group takes writes; one instance is SIGKILLed, writes go on (elections where it led), it restarts on
//! its existing RocksDB and catches up (through a snapshot where its log was purged away), and every
//! acknowledged write is then on all 3 instances.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use ferrum_proto::rpc::{ClientConfig, ConnPool, RpcError};
use ferrum_proto::{ErrorCode, GroupId, NodeId};
use ferrum_raftstore::kv::{Get, GroupCreate, GroupList, GroupStatusReq, Put};
use ferrum_tests::harness::{binary, free_addr, wait_for_async, Proc, TestDir};

const GROUPS: u64 = 10;
const T: Duration = Duration::from_secs(60);

struct Node {
    id: NodeId,
    addr: SocketAddr,
    proc: Proc,
}

fn start_node(dir: &TestDir, id: u64, config: &std::path::Path) -> Node {
    let addr = free_addr();
    let data = dir.sub(&format!("n{id}"));
    let proc = Proc::spawn(
        &format!("kvnode{id}"),
        binary("ferrum-kvnode"),
        [
            "--node-id".to_string(),
            id.to_string(),
            "--listen".into(),
            addr.to_string(),
            "--data-dir".into(),
            data.display().to_string(),
            "--config".into(),
            config.display().to_string(),
        ],
        dir.path(),
    );
    Node { id: NodeId::from(id), addr, proc }
}

/// Writes one key, following NotLeader hints and retrying while groups elect leaders. Returns once the
/// write is acknowledged (committed by a majority and applied on the leader).
async fn put(pool: &ConnPool, nodes: &[String], group: GroupId, key: &str, value: &str) {
    let req = Put { group, key: key.as_bytes().to_vec(), value: Some(value.as_bytes().to_vec()) };
    let mut target = 0usize;
    let mut last = None;
    let deadline = tokio::time::Instant::now() + T;
    while tokio::time::Instant::now() < deadline {
        match pool.call(&nodes[target % nodes.len()], &req).await {
            Ok(()) => return,
            Err(RpcError::Remote(ErrorCode::NotLeader { leader: Some(h) })) => {
                target = nodes.iter().position(|a| *a == h.addr).unwrap_or(target + 1);
                continue;
            }
            Err(e) => {
                last = Some(e.to_string());
                target += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    panic!("put {group}/{key} not acknowledged within {T:?}: {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_ten_groups_kill_and_restart() {
    let dir = TestDir::named("multi_raft");
    // Small snapshot threshold: the restarted instance must catch up through a streamed snapshot.
    let config = dir.path().join("raft.toml");
    std::fs::write(
        &config,
        "[raft]\nheartbeat_ms = 100\nelection_timeout_min_ms = 500\nelection_timeout_max_ms = 1000\n\
         snapshot_after_logs = 40\nkeep_logs_after_snapshot = 10\n",
    )
    .unwrap();
    let mut nodes: Vec<Node> = (1..=3).map(|i| start_node(&dir, i, &config)).collect();
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.to_string()).collect();
    let pool = ConnPool::new(ClientConfig { request_timeout: Duration::from_secs(10), ..Default::default() });
    for a in &addrs {
        wait_for_async(&format!("{a} accepts"), T, || pool.get(a)).await;
    }

    let members: Vec<(NodeId, String)> = nodes.iter().map(|n| (n.id, n.addr.to_string())).collect();
    for g in 1..=GROUPS {
        for a in &addrs {
            let req = GroupCreate { group: GroupId::from(g), members: members.clone() };
            pool.call(a, &req).await.unwrap_or_else(|e| panic!("create group {g} on {a}: {e}"));
        }
    }

    let mut acked: BTreeMap<(u64, String), String> = BTreeMap::new();
    for round in 0..20 {
        for g in 1..=GROUPS {
            let (k, v) = (format!("k{round}"), format!("g{g}-v{round}"));
            put(&pool, &addrs, GroupId::from(g), &k, &v).await;
            acked.insert((g, k), v);
        }
    }

    // Kill instance 3 without warning; keep writing well past the snapshot threshold, and overwrite some
    // keys so a stale replica is detectable.
    nodes[2].proc.sigkill();
    let live = addrs[..2].to_vec();
    for round in 10..120 {
        for g in 1..=GROUPS {
            let (k, v) = (format!("k{round}"), format!("g{g}-v{round}-after-kill"));
            put(&pool, &live, GroupId::from(g), &k, &v).await;
            acked.insert((g, k), v);
        }
    }

    nodes[2].proc.restart();
    let restarted = addrs[2].clone();
    let groups: Vec<GroupId> = wait_for_async("restarted instance answers", T, || pool.call(&restarted, &GroupList)).await;
    assert_eq!(groups, (1..=GROUPS).map(GroupId::from).collect::<Vec<_>>(), "groups reopened from RocksDB");

    // Each replica applied up to what its group's leader has: then local reads must all agree.
    for g in 1..=GROUPS {
        let group = GroupId::from(g);
        wait_for_async(&format!("group {g} converged on all 3"), T, || async {
            let mut applied = Vec::new();
            for a in &addrs {
                let s = pool.call(a, &GroupStatusReq { group }).await.map_err(|e| e.to_string())?;
                applied.push(s.last_applied);
            }
            let leader_log = applied.iter().max().copied().flatten();
            if applied.iter().all(|a| *a == leader_log) {
                Ok(())
            } else {
                Err(format!("applied {applied:?}"))
            }
        })
        .await;
    }
    for ((g, k), v) in &acked {
        for a in &addrs {
            let req = Get { group: GroupId::from(*g), key: k.as_bytes().to_vec(), linearizable: false };
            let got = pool.call(a, &req).await.unwrap_or_else(|e| panic!("get on {a}: {e}"));
            assert_eq!(got.as_deref(), Some(v.as_bytes()), "group {g} key {k} on {a}");
        }
    }
    // The restarted instance really went through a snapshot install for at least one group.
    let log = nodes[2].proc.run_log();
    assert!(
        log.contains("installed snapshot from leader"),
        "expected the restarted instance to catch up through a snapshot; its log:\n{log}"
    );
}
