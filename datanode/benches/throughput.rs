//! Throughput of one data partition with 3 replicas on this machine, through the RPC: three
//! `ferrum-datanode` processes (this profile's build) on loopback ports, one client process (this one)
//! writing an extent with many writes in flight, then reading it back.
//!
//! `cargo bench -p ferrum-datanode --bench throughput`
//! Environment: `FERRUM_BENCH_MIB` (data per run, default 1024), `FERRUM_BENCH_INFLIGHT` (requests in
//! flight, default 16), `FERRUM_BENCH_SIZES` (write sizes in KiB, default "4,128,1024,4096").

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrum_datanode::client::PartitionClient;
use ferrum_proto::msg::master::CreatePartition;
use ferrum_proto::msg::topology::{PartitionKind, Replica};
use ferrum_proto::rpc::{ClientConfig, ConnPool};
use ferrum_proto::{ClientId, NodeId, PartitionId, VolumeId};

struct Node(Child);

/// CPU time (user + system) a process has used so far, from /proc.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn free_addr() -> String {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it: then
    // there is nothing to check, and minutes of benchmarking to skip.
    if !std::env::args().any(|a| a == "--bench") {
        println!("throughput: a benchmark; run it with `cargo bench -p ferrum-datanode --bench throughput`");
        return;
    }
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(run());
}

async fn run() {
    let mib = env("FERRUM_BENCH_MIB", 1024);
    let inflight = env("FERRUM_BENCH_INFLIGHT", 16) as usize;
    let sizes: Vec<usize> = std::env::var("FERRUM_BENCH_SIZES")
        .unwrap_or_else(|_| "4,128,1024,4096".into())
        .split(',')
        .map(|s| s.trim().parse::<usize>().expect("sizes in KiB") << 10)
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let log_level = std::env::var("FERRUM_BENCH_LOG").unwrap_or_else(|_| "warn".into());
    let config = dir.path().join("datanode.toml");
    std::fs::write(&config, "[datanode]\nreserve_bytes = 0\nscrub_bytes_per_sec = 0\n").unwrap();
    let bin = env!("CARGO_BIN_EXE_ferrum-datanode");
    let mut nodes = Vec::new();
    let mut addrs = Vec::new();
    for id in 1..=3u64 {
        let addr = free_addr();
        let data = dir.path().join(format!("n{id}"));
        let log = std::fs::File::create(dir.path().join(format!("n{id}.log"))).unwrap();
        let child = Command::new(bin)
            .args(["--node-id", &id.to_string(), "--listen", &addr, "--data-dir"])
            .arg(&data)
            .arg("--config")
            .arg(&config)
            .args(["--log", &log_level])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        nodes.push(Node(child));
        addrs.push(addr);
    }
    let pool = ConnPool::new(ClientConfig { request_timeout: Duration::from_secs(60), ..Default::default() });
    for a in &addrs {
        let t = Instant::now();
        while pool.get(a).await.is_err() {
            assert!(t.elapsed() < Duration::from_secs(20), "datanode at {a} did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let members: Vec<Replica> =
        addrs.iter().enumerate().map(|(i, a)| Replica { node: NodeId(i as u64 + 1), addr: a.clone() }).collect();
    println!(
        "one partition, 3 replicas (3 processes on this machine), {mib} MiB per run, {inflight} requests in flight"
    );
    println!(
        "{:>10} {:>12} {:>12} {:>22} {:>22}",
        "io size", "write MB/s", "read MB/s", "write CPU s/GiB (3 dn)", "read CPU s/GiB (3 dn)"
    );
    let cpu = |nodes: &[Node]| nodes.iter().map(|n| cpu_secs(n.0.id())).sum::<f64>();
    for (run, &size) in sizes.iter().enumerate() {
        let p = PartitionId(run as u64 + 1);
        let req = CreatePartition {
            partition: p,
            kind: PartitionKind::Data,
            volume: VolumeId(1),
            members: members.clone(),
            inodes: None,
        };
        for a in &addrs {
            pool.call(a, &req).await.unwrap();
        }
        let client = Arc::new(PartitionClient::new(pool.clone(), p, addrs.clone(), ClientId(1)));
        let e = client.create_extent().await.unwrap();
        let total = (mib << 20) as usize;
        let n = total / size;
        let payload = Bytes::from((0..size).map(|i| (i * 31 + 7) as u8).collect::<Vec<_>>());

        let (t, c0) = (Instant::now(), cpu(&nodes));
        let mut set = tokio::task::JoinSet::new();
        for i in 0..n {
            if set.len() >= inflight {
                set.join_next().await.unwrap().unwrap();
            }
            let (c, d) = (client.clone(), payload.clone());
            set.spawn(async move { c.write(e, (i * size) as u64, d).await.unwrap() });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
        let write = total as f64 / t.elapsed().as_secs_f64() / 1e6;
        let gib = total as f64 / (1u64 << 30) as f64;
        let write_cpu = (cpu(&nodes) - c0) / gib;

        let (t, c0) = (Instant::now(), cpu(&nodes));
        for i in 0..n {
            if set.len() >= inflight {
                set.join_next().await.unwrap().unwrap();
            }
            let c = client.clone();
            set.spawn(async move {
                let got = c.read(e, (i * size) as u64, size as u32).await.unwrap();
                assert_eq!(got.len(), size);
            });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
        let read = total as f64 / t.elapsed().as_secs_f64() / 1e6;
        let read_cpu = (cpu(&nodes) - c0) / gib;
        println!("{:>7} KiB {:>12.1} {:>12.1} {:>22.1} {:>22.1}", size >> 10, write, read, write_cpu, read_cpu);
    }
    drop(nodes);
    if std::env::var_os("FERRUM_BENCH_KEEP").is_some() {
        println!("logs and data kept in {}", dir.keep().display());
    }
}
