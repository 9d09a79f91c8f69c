//! Multi-Raft across processes: 3 `ferrum-kvnode` instances on 3 loopback ports host 10 groups; every
//! group takes writes; one instance is SIGKILLed, writes go on (elections where it led), it restarts on
//! its existing RocksDB and catches up (through a snapshot where its log was purged away), and every
//! acknowledged write is then on all 3 instances.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use ferrum_proto::rpc::{ClientConfig, ConnPool, LeaderClient, RetryPolicy};
use ferrum_proto::{GroupId, NodeId};
use ferrum_raftstore::kv::{AddMember, Get, GroupCreate, GroupList, GroupStatusReq, Put, RemoveMember};
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

/// Writes one key through whichever replica leads the group; returns once the write is acknowledged
/// (committed by a majority and applied on the leader).
async fn put(pool: &ConnPool, nodes: &[String], group: GroupId, key: &str, value: &str) {
    let req = Put { group, key: key.as_bytes().to_vec(), value: Some(value.as_bytes().to_vec()) };
    leader(pool, nodes).call(&req).await.unwrap_or_else(|e| panic!("put {group}/{key} not acknowledged: {e}"));
}

fn leader(pool: &ConnPool, nodes: &[String]) -> LeaderClient {
    LeaderClient::new(pool.clone(), nodes.to_vec(), RetryPolicy { deadline: T, ..Default::default() })
}

/// Waits until every replica in `addrs` applied the same index for `group` (then local reads agree).
async fn converged(pool: &ConnPool, addrs: &[String], group: GroupId) {
    wait_for_async(&format!("group {group} converged on {addrs:?}"), T, || async {
        let mut applied = Vec::new();
        for a in addrs {
            let s = pool.call(a, &GroupStatusReq { group }).await.map_err(|e| e.to_string())?;
            applied.push(s.last_applied);
        }
        if applied.iter().all(|a| *a == applied[0]) && applied[0].is_some() {
            Ok(())
        } else {
            Err(format!("applied {applied:?}"))
        }
    })
    .await;
}

async fn assert_local(pool: &ConnPool, addr: &str, group: GroupId, key: &str, want: &str) {
    let req = Get { group, key: key.as_bytes().to_vec(), linearizable: false };
    let got = pool.call(addr, &req).await.unwrap_or_else(|e| panic!("get on {addr}: {e}"));
    assert_eq!(got.as_deref(), Some(want.as_bytes()), "group {group} key {key} on {addr}");
}

fn raft_config(dir: &TestDir) -> std::path::PathBuf {
    // Small snapshot threshold: a replica that falls behind must catch up through a streamed snapshot.
    let config = dir.path().join("raft.toml");
    std::fs::write(
        &config,
        "[raft]\nheartbeat_ms = 100\nelection_timeout_min_ms = 500\nelection_timeout_max_ms = 1000\n\
         snapshot_after_logs = 40\nkeep_logs_after_snapshot = 10\n",
    )
    .unwrap();
    config
}

/// Starts `n` instances with the test Raft config; returns them, their addresses, and a pool once every
/// one accepts connections.
async fn start_nodes(dir: &TestDir, n: u64) -> (Vec<Node>, Vec<String>, ConnPool) {
    let config = raft_config(dir);
    let nodes: Vec<Node> = (1..=n).map(|i| start_node(dir, i, &config)).collect();
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.to_string()).collect();
    let pool = ConnPool::new(ClientConfig { request_timeout: Duration::from_secs(10), ..Default::default() });
    for a in &addrs {
        wait_for_async(&format!("{a} accepts"), T, || pool.get(a)).await;
    }
    (nodes, addrs, pool)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_ten_groups_kill_and_restart() {
    let dir = TestDir::named("multi_raft");
    let (mut nodes, addrs, pool) = start_nodes(&dir, 3).await;

    let members: Vec<(NodeId, String)> = nodes.iter().map(|n| (n.id, n.addr.to_string())).collect();
    for g in 1..=GROUPS {
        for a in &addrs {
            let req = GroupCreate { group: GroupId::from(g), members: members.clone(), first: None };
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
    let groups: Vec<GroupId> =
        wait_for_async("restarted instance answers", T, || pool.call(&restarted, &GroupList)).await;
    assert_eq!(groups, (1..=GROUPS).map(GroupId::from).collect::<Vec<_>>(), "groups reopened from RocksDB");

    // Each replica applied up to what its group's leader has: then local reads must all agree.
    for g in 1..=GROUPS {
        converged(&pool, &addrs, GroupId::from(g)).await;
    }
    for ((g, k), v) in &acked {
        for a in &addrs {
            assert_local(&pool, a, GroupId::from(*g), k, v).await;
        }
    }
    // An instance that was up throughout has snapshotted and purged its log many times: it must come
    // back from a crash on exactly its applied state (a wrong applied index would need purged entries).
    nodes[0].proc.sigkill();
    nodes[0].proc.restart();
    for g in 1..=GROUPS {
        put(&pool, &addrs, GroupId::from(g), "after-restart", "x").await;
        converged(&pool, &addrs, GroupId::from(g)).await;
    }
    for ((g, k), v) in &acked {
        assert_local(&pool, &addrs[0], GroupId::from(*g), k, v).await;
    }

    // The restarted instance really went through a snapshot install for at least one group.
    let log = nodes[2].proc.run_log();
    assert!(
        log.contains("installed snapshot from leader"),
        "expected the restarted instance to catch up through a snapshot; its log:\n{log}"
    );
}

/// Repair's building block: a dead replica is replaced by a fresh instance that joins as a learner,
/// catches up through a snapshot, is promoted, and the dead one is removed; the group keeps its data
/// and keeps taking writes with the new member set.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replace_a_dead_replica() {
    let dir = TestDir::named("multi_raft_replace");
    let (mut nodes, addrs, pool) = start_nodes(&dir, 4).await;
    let group = GroupId::from(1);
    let members: Vec<(NodeId, String)> = nodes[..3].iter().map(|n| (n.id, n.addr.to_string())).collect();
    for a in &addrs[..3] {
        pool.call(a, &GroupCreate { group, members: members.clone(), first: None }).await.unwrap();
    }
    for i in 0..100 {
        put(&pool, &addrs[..3], group, &format!("k{i}"), &format!("v{i}")).await;
    }

    nodes[2].proc.sigkill();
    let survivors = vec![addrs[0].clone(), addrs[1].clone()];
    // The newcomer hosts the group with the current members (not itself), so it waits for the leader.
    pool.call(&addrs[3], &GroupCreate { group, members: members.clone(), first: None }).await.unwrap();
    leader(&pool, &survivors)
        .call(&AddMember { group, node: nodes[3].id, addr: addrs[3].clone() })
        .await
        .expect("add the new replica");
    leader(&pool, &survivors).call(&RemoveMember { group, node: nodes[2].id }).await.expect("remove the dead replica");

    let new_set = vec![addrs[0].clone(), addrs[1].clone(), addrs[3].clone()];
    for i in 100..150 {
        put(&pool, &new_set, group, &format!("k{i}"), &format!("v{i}")).await;
    }
    converged(&pool, &new_set, group).await;
    let status = pool.call(&addrs[3], &GroupStatusReq { group }).await.unwrap();
    let mut ids: Vec<NodeId> = status.members.iter().map(|(id, _)| *id).collect();
    ids.sort();
    assert_eq!(ids, vec![nodes[0].id, nodes[1].id, nodes[3].id], "membership after the replacement");
    for i in 0..150 {
        for a in &new_set {
            assert_local(&pool, a, group, &format!("k{i}"), &format!("v{i}")).await;
        }
    }
    assert!(
        nodes[3].proc.run_log().contains("installed snapshot from leader"),
        "the new replica should have caught up through a snapshot"
    );
}

/// Leadership handover (for spreading leaders): the leader of a group under a steady write load hands
/// it to each other replica in turn. Every handover lands on the chosen replica, the writer never
/// fails (it is redirected to the new leader), and every acknowledged write is on all replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leadership_is_handed_over_under_writes() {
    use ferrum_proto::msg::repair::TransferLeader;
    use ferrum_proto::PartitionId;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    let dir = TestDir::named("multi_raft_handover");
    let (nodes, addrs, pool) = start_nodes(&dir, 3).await;
    let group = GroupId::from(1);
    let members: Vec<(NodeId, String)> = nodes.iter().map(|n| (n.id, n.addr.to_string())).collect();
    for a in &addrs {
        pool.call(a, &GroupCreate { group, members: members.clone(), first: None }).await.unwrap();
    }
    put(&pool, &addrs, group, "k0", "v0").await;

    // A writer that records the longest time it waited for one acknowledgement.
    let stop = Arc::new(AtomicBool::new(false));
    let longest_ms = Arc::new(AtomicU64::new(0));
    let written = Arc::new(AtomicU64::new(1));
    let writer = {
        let (pool, addrs, stop) = (pool.clone(), addrs.clone(), stop.clone());
        let (longest_ms, written) = (longest_ms.clone(), written.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = written.load(Ordering::Relaxed);
                let t = std::time::Instant::now();
                put(&pool, &addrs, group, &format!("k{n}"), &format!("v{n}")).await;
                longest_ms.fetch_max(t.elapsed().as_millis() as u64, Ordering::Relaxed);
                written.store(n + 1, Ordering::Relaxed);
            }
        })
    };

    let leader_of = |addr: String| {
        let pool = pool.clone();
        async move { pool.call(&addr, &GroupStatusReq { group }).await.ok().and_then(|s| s.leader) }
    };
    for round in 0..4 {
        let current = wait_for_async("a leader", T, || async {
            leader_of(addrs[0].clone()).await.ok_or("no leader".to_string())
        })
        .await;
        // The next replica in turn: over the rounds every replica takes over at least once.
        let i = nodes.iter().position(|n| n.id == current).unwrap();
        let (to, at) = (nodes[(i + 1) % nodes.len()].id, &addrs[i]);
        let t = std::time::Instant::now();
        let req = TransferLeader { partition: PartitionId(group.get()), to };
        let now = pool.call(at, &req).await.unwrap_or_else(|e| panic!("handover {current} -> {to}: {e}"));
        eprintln!("handover {current} -> {to}: leader {now} after {:?}", t.elapsed());
        assert_eq!(now, to, "round {round}: the chosen replica leads");
        for a in &addrs {
            wait_for_async(&format!("{a} sees leader {to}"), T, || async {
                match leader_of(a.clone()).await {
                    Some(l) if l == to => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            })
            .await;
        }
        // Writes go on at the new leader.
        let before = written.load(Ordering::Relaxed);
        wait_for_async("writes after the handover", T, || async {
            let n = written.load(Ordering::Relaxed);
            (n >= before + 20).then_some(()).ok_or(format!("{n} written"))
        })
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    writer.await.expect("the writer never failed");
    let (written, longest) = (written.load(Ordering::Relaxed), longest_ms.load(Ordering::Relaxed));
    eprintln!("writer: {written} writes, longest wait {longest} ms");
    // A handover stalls the group for about one leader lease (election_timeout_max, 1 s here).
    assert!(longest < 8_000, "a write waited {longest} ms");

    converged(&pool, &addrs, group).await;
    for i in 0..written {
        for a in &addrs {
            assert_local(&pool, a, group, &format!("k{i}"), &format!("v{i}")).await;
        }
    }
}

/// A group created with a first member (as the master creates partitions): the others host it first,
/// then the first starts it and leads, without a contested election. A group whose first member never
/// gets it is started by the others after two election timeouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_first_member_starts_a_group_or_the_others_do() {
    let dir = TestDir::named("multi_raft_first");
    let (nodes, addrs, pool) = start_nodes(&dir, 3).await;
    let members: Vec<(NodeId, String)> = nodes.iter().map(|n| (n.id, n.addr.to_string())).collect();
    for g in 1..=6u64 {
        let first = &nodes[g as usize % 3];
        let create = GroupCreate { group: GroupId::from(g), members: members.clone(), first: Some(first.id) };
        for n in nodes.iter().filter(|n| n.id != first.id) {
            pool.call(&n.addr.to_string(), &create).await.unwrap();
        }
        pool.call(&first.addr.to_string(), &create).await.unwrap();
    }
    for g in 1..=6u64 {
        let group = GroupId::from(g);
        put(&pool, &addrs, group, "k", "v").await;
        let status = pool.call(&addrs[0], &GroupStatusReq { group }).await.unwrap();
        assert_eq!(status.leader, Some(nodes[g as usize % 3].id), "group {group} is led by its first member");
    }

    // The first member never hosts group 7: the other two start it and take writes.
    let group = GroupId::from(7);
    let create = GroupCreate { group, members: members.clone(), first: Some(nodes[0].id) };
    for a in &addrs[1..] {
        pool.call(a, &create).await.unwrap();
    }
    put(&pool, &addrs[1..], group, "k", "v").await;
    let status = pool.call(&addrs[1], &GroupStatusReq { group }).await.unwrap();
    assert!(status.leader.is_some_and(|l| l != nodes[0].id), "group 7 led by one of the two: {:?}", status.leader);
}
