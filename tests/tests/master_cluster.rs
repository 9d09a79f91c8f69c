//! A master with 3 `ferrum-metanode` and 3 `ferrum-datanode` processes registered, all on this host on
//! distinct ports: `ferrum volume create` places every partition on 3 distinct instances (with a
//! warning, since they share the host), `ferrum partition list` shows them, the nodes really host
//! the Raft groups, and the master's resource cache spares the nodes a second `GetResources` within
//! its TTL but not after.
//!
//! The `ferrum` subcommands run in this process through `ferrum_master::cli` (the same code the
//! `ferrum` binary dispatches to), so this test does not depend on the client crate.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use ferrum_master::cli::{self, AdminCommand};
use ferrum_proto::msg::master::{ListNodes, NodeState};
use ferrum_proto::rpc::{ClientConfig, ConnPool, LeaderClient, RetryPolicy};
use ferrum_tests::harness::http;
use ferrum_tests::harness::{binary, free_addr, wait_for, wait_for_async, Proc, TestDir};

const T: Duration = Duration::from_secs(60);
/// The master's free-space TTL in this test.
const SPACE_TTL: Duration = Duration::from_secs(8);

#[derive(Parser)]
struct Ferrum {
    #[command(subcommand)]
    cmd: AdminCommand,
}

async fn ferrum(args: &[&str]) -> String {
    let parsed =
        Ferrum::try_parse_from(std::iter::once("ferrum").chain(args.iter().copied())).expect("arguments parse");
    let mut out = Vec::new();
    cli::run(&parsed.cmd, &mut out).await.unwrap_or_else(|e| panic!("ferrum {}: {e}", args.join(" ")));
    String::from_utf8(out).unwrap()
}

struct Node {
    metrics: SocketAddr,
    _proc: Proc,
}

fn start_node(dir: &TestDir, bin: &str, i: usize, master: &str) -> Node {
    let (listen, metrics) = (free_addr(), free_addr());
    let name = format!("{bin}{i}");
    let args = [
        "--listen".to_string(),
        listen.to_string(),
        "--data-dir".into(),
        dir.sub(&name).display().to_string(),
        "--master".into(),
        master.to_string(),
        "--metrics-listen".into(),
        metrics.to_string(),
        "--heartbeat-ms".into(),
        "200".into(),
    ];
    Node { metrics, _proc: Proc::spawn(&name, binary(&format!("ferrum-{bin}")), args, dir.path()) }
}

/// A counter or gauge of a node's `/metrics` (0 when absent).
fn metric(addr: SocketAddr, name: &str) -> u64 {
    let text = http::get(addr, "/metrics", Duration::from_secs(5)).expect("metrics").text();
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

fn resource_requests(nodes: &[Node]) -> Vec<u64> {
    nodes.iter().map(|n| metric(n.metrics, "ferrum_node_resource_requests_total")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn volume_create_places_replicas_on_distinct_instances() {
    let dir = TestDir::named("master_cluster");
    let (master, admin) = (free_addr(), free_addr());
    let config = dir.join("master.toml");
    std::fs::write(
        &config,
        format!(
            "[raft]\nheartbeat_ms = 100\nelection_timeout_min_ms = 500\nelection_timeout_max_ms = 1000\n\
             [master]\nresource_space_ttl_ms = {}\nmin_free_bytes = 0\n",
            SPACE_TTL.as_millis()
        ),
    )
    .unwrap();
    let master_args = [
        "--listen".to_string(),
        master.to_string(),
        "--data-dir".into(),
        dir.sub("master").display().to_string(),
        "--admin-listen".into(),
        admin.to_string(),
        "--config".into(),
        config.display().to_string(),
    ];
    let mut master_proc = Proc::spawn("master", binary("ferrum-master"), master_args, dir.path());
    master_proc.wait_port_open(admin, T);
    let m = master.to_string();
    let nodes: Vec<Node> = (0..3)
        .map(|i| start_node(&dir, "metanode", i, &m))
        .chain((0..3).map(|i| start_node(&dir, "datanode", i, &m)))
        .collect();
    let masters = vec![m.clone()];
    let master_client =
        LeaderClient::new(ConnPool::new(ClientConfig::default()), masters.clone(), RetryPolicy::default());
    wait_for_async("6 nodes registered and alive", T, || async {
        let listed = master_client.call(&ListNodes {}).await.map_err(|e| e.to_string())?;
        let alive = listed.iter().filter(|n| n.state == NodeState::Alive).count();
        if alive == 6 {
            Ok(())
        } else {
            Err(format!("{alive} alive: {listed:?}"))
        }
    })
    .await;
    let admin = admin.to_string();
    let out = ferrum(&["node", "list", "--admin", &admin]).await;
    assert_eq!(out.matches("alive").count(), 6, "{out}");

    let t0 = tokio::time::Instant::now();
    let out = ferrum(&["volume", "create", "v1", "--admin", &admin]).await;
    assert!(out.contains("created volume \"v1\""), "{out}");
    // One host for all six instances: replicas share it, and the operator is told.
    assert!(out.contains("warning:") && out.contains("share a host"), "{out}");

    let parts: serde_json::Value =
        serde_json::from_str(&ferrum(&["partition", "list", "--volume", "v1", "--json", "--admin", &admin]).await)
            .unwrap();
    let parts = parts.as_array().unwrap();
    assert_eq!(parts.len(), 4, "1 meta + 3 data partitions: {parts:?}");
    for p in parts {
        let replicas = p["replicas"].as_array().unwrap();
        let nodes: HashSet<u64> = replicas.iter().map(|r| r["node"].as_u64().unwrap()).collect();
        let addrs: HashSet<&str> = replicas.iter().map(|r| r["addr"].as_str().unwrap()).collect();
        assert_eq!((nodes.len(), addrs.len()), (3, 3), "3 distinct instances: {p}");
        assert_eq!(p["ready"], true);
    }
    let table = ferrum(&["partition", "list", "--admin", &admin]).await;
    assert_eq!(table.lines().count(), 5, "{table}");
    // The nodes host the groups: every partition has all 3 instances of its kind as replicas.
    for (i, n) in nodes.iter().enumerate() {
        let want = if i < 3 { 1 } else { 3 };
        wait_for(&format!("node {i} hosts {want} groups"), T, || metric(n.metrics, "ferrum_raft_groups") == want);
    }

    // Resources: the first placement asked every node once; a second within the TTL asks nobody.
    let first = resource_requests(&nodes);
    assert!(first.iter().all(|&c| c == 1), "{first:?}");
    ferrum(&["volume", "create", "v2", "--admin", &admin]).await;
    assert!(t0.elapsed() < SPACE_TTL, "too slow to test the TTL: {:?}", t0.elapsed());
    assert_eq!(resource_requests(&nodes), first, "within the TTL the cache answers");
    tokio::time::sleep_until(t0 + SPACE_TTL + Duration::from_millis(200)).await;
    ferrum(&["volume", "create", "v3", "--admin", &admin]).await;
    assert_eq!(resource_requests(&nodes), vec![2; 6], "after the TTL every node is asked again");

    let out = ferrum(&["cluster", "status", "--admin", &admin]).await;
    assert!(out.contains("6 alive") && out.contains("3 meta, 9 data, 0 under-replicated"), "{out}");
    master_proc.assert_running("at the end");
}
