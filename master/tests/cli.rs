//! The admin CLI against masters in this process: through the admin HTTP API of a follower (which
//! forwards to the leader), with clear errors.

mod common;

use clap::Parser;
use common::*;
use ferrum_master::cli::{self, AdminCommand, CliError};
use ferrum_master::MasterSection;
use ferrum_proto::msg::master::{GetClusterStatus, NodeRole};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: AdminCommand,
}

async fn ferrum(args: &[&str]) -> Result<String, CliError> {
    let cli = Cli::try_parse_from(std::iter::once("ferrum").chain(args.iter().copied())).expect("arguments parse");
    let mut out = Vec::new();
    cli::run(&cli.cmd, &mut out).await?;
    Ok(String::from_utf8(out).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cli_through_a_follower() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let addrs: Vec<_> = (0..3).map(|_| free_addr()).collect();
    let peers: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    let mut running = Vec::new();
    for (d, a) in dirs.iter().zip(&addrs) {
        let section = MasterSection { peers: peers.clone(), admin_listen: Some(free_addr()), ..test_section() };
        running.push(start_master(d.path(), *a, section).await);
    }
    let _metas = nodes(NodeRole::Meta, 3, |i| format!("h{i}"), &peers).await;
    let _datas = nodes(NodeRole::Data, 3, |i| format!("h{i}"), &peers).await;
    let leader = call(&peers, GetClusterStatus {}).await.unwrap().leader.unwrap();
    let follower = running.iter().find(|r| r.master.advertise != leader.addr).unwrap();
    let admin = follower.admin_addr.unwrap().to_string();
    let m = ["--admin", admin.as_str()];
    let with = |args: &[&'static str]| -> Vec<String> {
        args.iter().map(|s| s.to_string()).chain(m.iter().map(|s| s.to_string())).collect()
    };
    let run = |args: Vec<String>| async move { ferrum(&args.iter().map(String::as_str).collect::<Vec<_>>()).await };

    let out = run(with(&["volume", "create", "alpha", "--capacity", "10G", "--owner", "ops"])).await.unwrap();
    assert!(out.contains("created volume \"alpha\"") && out.contains("10.0 GiB") && !out.contains("warning"), "{out}");
    let out = run(with(&["volume", "list"])).await.unwrap();
    assert!(out.starts_with("ID  NAME") && out.contains("alpha") && out.contains("ready"), "{out}");
    let out = run(with(&["volume", "info", "alpha"])).await.unwrap();
    assert!(out.contains("owner:       ops"), "{out}");
    let out = run(with(&["partition", "list", "--volume", "alpha"])).await.unwrap();
    assert_eq!(out.lines().count(), 1 + 4, "header, 1 meta and 3 data partitions:\n{out}");
    assert!(out.contains("inodes 1..") && out.contains("3/3"), "{out}");
    let out = run(with(&["node", "list"])).await.unwrap();
    assert_eq!(out.matches("alive").count(), 6, "{out}");
    let out = run(with(&["cluster", "status"])).await.unwrap();
    assert!(
        out.contains(&format!("at {} ", leader.addr)) && out.contains("6 alive") && out.contains("follower"),
        "{out}"
    );
    let json = run(with(&["volume", "list", "--json"])).await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["name"], "alpha");

    // Clear errors.
    let e = run(with(&["volume", "create", "alpha"])).await.unwrap_err().to_string();
    assert_eq!(e, "volume \"alpha\" already exists");
    let e = run(with(&["volume", "info", "nope"])).await.unwrap_err().to_string();
    assert_eq!(e, "volume \"nope\" not found");
    let e = run(with(&["volume", "create", "beta", "--replicas", "5"])).await.unwrap_err().to_string();
    assert!(e.contains("replica count 5 is above the number of usable"), "{e}");
    let e = run(with(&["volume", "create", "gamma", "--replicas", "9"])).await.unwrap_err().to_string();
    assert!(e.contains("out of range"), "{e}");
    let dead = free_addr().to_string();
    let e = ferrum(&["cluster", "status", "--admin", &dead]).await.unwrap_err().to_string();
    assert!(e.starts_with("no master reachable") && e.contains(&dead), "{e}");
    // A master's RPC port instead of its admin API: said so.
    let e = ferrum(&["cluster", "status", "--admin", &peers[0]]).await.unwrap_err().to_string();
    assert!(e.contains("RPC port"), "{e}");
    // A dead address first, a live one next: the CLI moves on.
    let both = format!("{dead},{admin}");
    ferrum(&["volume", "list", "--admin", &both]).await.unwrap();

    let out = run(with(&["volume", "delete", "alpha"])).await.unwrap();
    assert!(out.contains("deleted volume \"alpha\""), "{out}");
    let e = run(with(&["volume", "delete", "alpha"])).await.unwrap_err().to_string();
    assert_eq!(e, "volume \"alpha\" not found");

    // The other follower leaves the master group.
    let other = running.iter().find(|r| r.master.advertise != leader.addr && r.admin_addr != follower.admin_addr);
    let id = other.unwrap().master.id.to_string();
    let remove =
        |id: String| ["cluster", "remove-master", "--admin", admin.as_str()].map(String::from).into_iter().chain([id]);
    let out = run(remove(id.clone()).collect()).await.unwrap();
    assert_eq!(out, format!("removed master {id} from the master group; stop it now\n"));
    let out = run(remove(id.clone()).collect()).await.unwrap();
    assert!(out.contains("not a member"), "{out}");
    let out = run(with(&["cluster", "status"])).await.unwrap();
    assert_eq!(out.matches("127.0.0.1:").count(), 1 + 2, "the leader line and 2 masters:\n{out}");
    for r in running {
        r.stop().await.unwrap();
    }
}
