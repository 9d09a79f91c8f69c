//! The durability rule for entries acknowledged from memory (raftstore::durability): a replica that
//! restarts after a *reboot* with an unclean stop may have lost the unsynced tail of its log, so it must
//! not help elect a leader until a leader has caught it up. Simulated with 3 `ferrum-kvnode` processes;
//! the reboot is a changed boot id (FERRUM_BOOT_ID), as a real power loss would show.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ferrum_proto::msg::repair::TransferLeader;
use ferrum_proto::rpc::{ClientConfig, ConnPool, LeaderClient, RetryPolicy};
use ferrum_proto::{GroupId, NodeId, PartitionId};
use ferrum_raftstore::kv::{Get, GroupCreate, GroupStatusReq, Put, SyncReq};
use ferrum_raftstore::GroupStatus;
use ferrum_tests::harness::{binary, free_addr, wait_for_async, Proc, TestDir};

const T: Duration = Duration::from_secs(60);
const GROUP: GroupId = GroupId(1);

fn start(dir: &TestDir, id: u64, addr: SocketAddr, boot_id: Option<&str>) -> Proc {
    let config = dir.path().join("raft.toml");
    std::fs::write(
        &config,
        "[raft]\nheartbeat_ms = 100\nelection_timeout_min_ms = 400\nelection_timeout_max_ms = 800\n",
    )
    .unwrap();
    let mut b = Proc::builder(&format!("kvnode{id}"), binary("ferrum-kvnode"), dir.path()).args([
        "--node-id".to_string(),
        id.to_string(),
        "--listen".into(),
        addr.to_string(),
        "--data-dir".into(),
        dir.sub(&format!("n{id}")).display().to_string(),
        "--config".into(),
        config.display().to_string(),
    ]);
    if let Some(b_id) = boot_id {
        b = b.env("FERRUM_BOOT_ID", b_id);
    }
    b.spawn()
}

async fn status(pool: &ConnPool, addr: &str) -> Result<GroupStatus, String> {
    pool.call(addr, &GroupStatusReq { group: GROUP }).await.map_err(|e| e.to_string())
}

fn leader(pool: &ConnPool, addrs: &[String]) -> LeaderClient {
    LeaderClient::new(pool.clone(), addrs.to_vec(), RetryPolicy { deadline: T, ..Default::default() })
}

async fn put(pool: &ConnPool, addrs: &[String], key: &str) {
    let req = Put { group: GROUP, key: key.into(), value: Some(key.into()) };
    leader(pool, addrs).call(&req).await.unwrap_or_else(|e| panic!("put {key}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_rebooted_after_a_crash_does_not_vote_until_caught_up() {
    let dir = TestDir::named("power_loss");
    let addrs_sock: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect();
    let addrs: Vec<String> = addrs_sock.iter().map(|a| a.to_string()).collect();
    let mut procs: Vec<Proc> = (0..3).map(|i| start(&dir, i as u64 + 1, addrs_sock[i], None)).collect();
    let pool = ConnPool::new(ClientConfig { request_timeout: Duration::from_secs(10), ..Default::default() });
    for a in &addrs {
        wait_for_async(&format!("{a} accepts"), T, || pool.get(a)).await;
    }
    let members: Vec<(NodeId, String)> = (0..3).map(|i| (NodeId(i as u64 + 1), addrs[i].clone())).collect();
    for a in &addrs {
        pool.call(a, &GroupCreate { group: GROUP, members: members.clone(), first: None }).await.unwrap();
    }
    for i in 0..50 {
        put(&pool, &addrs, &format!("k{i}")).await;
    }
    // A sync marker commits (a majority fsynced) and is invisible to the app.
    leader(&pool, &addrs).call(&SyncReq { group: GROUP }).await.expect("sync");

    // The leader must be among the crashed (else it catches 2 up at once): hand the leadership to 1.
    let current = wait_for_async("a leader", T, || async {
        status(&pool, &addrs[2]).await?.leader.ok_or_else(|| "no leader".to_string())
    })
    .await;
    if current != NodeId(1) {
        let at = &addrs[current.get() as usize - 1];
        let req = TransferLeader { partition: PartitionId(GROUP.get()), to: NodeId(1) };
        let now = pool.call(at, &req).await.expect("hand the leadership to instance 1");
        assert_eq!(now, NodeId(1));
    }
    wait_for_async("instance 3 follows instance 1", T, || async {
        let s = status(&pool, &addrs[2]).await?;
        (s.leader == Some(NodeId(1))).then_some(()).ok_or(format!("{s:?}"))
    })
    .await;

    // Instances 1 (the leader) and 2 crash; 2 comes back "after a reboot", 1 stays down.
    procs[0].sigkill();
    procs[1].sigkill();
    procs[1] = start(&dir, 2, addrs_sock[1], Some("rebooted-after-power-loss"));
    let s2 = wait_for_async("instance 2 answers", T, || status(&pool, &addrs[1])).await;
    assert!(s2.recovering, "instance 2 must start recovering: {s2:?}");

    // 2 and 3 are a majority, but 2 may miss acknowledged entries: no leader may be elected without 1.
    // Watch for ten election timeouts.
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        for (i, a) in addrs.iter().enumerate().skip(1) {
            if let Ok(s) = status(&pool, a).await {
                // A follower may still name the crashed leader; nobody alive may lead.
                assert_ne!(s.leader, Some(NodeId(i as u64 + 1)), "{a} leads with a recovering voter: {s:?}");
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Instance 1 returns (a process crash without reboot: nothing lost): a leader is elected, catches 2 up,
    // and 2 votes again.
    procs[0] = start(&dir, 1, addrs_sock[0], None);
    put(&pool, &addrs, "after").await;
    wait_for_async("instance 2 caught up", T, || async {
        let s = status(&pool, &addrs[1]).await?;
        if s.recovering {
            Err(format!("still recovering: {s:?}"))
        } else {
            Ok(())
        }
    })
    .await;
    for key in ["k0", "k49", "after"] {
        let got: Option<Vec<u8>> =
            leader(&pool, &addrs).call(&Get { group: GROUP, key: key.into(), linearizable: true }).await.expect("get");
        assert_eq!(got.as_deref(), Some(key.as_bytes()), "{key}");
    }
    // Now 2 is a full voter again: 2 and 3 elect a leader without 1.
    procs[0].sigkill();
    put(&pool, &addrs[1..], "without-1").await;
}
