//! Does the namespace's size change the cost of an operation? Creates `FERRUM_BENCH_FILES` files
//! (default 1,000,000) in directories of 1,000 through the client library (no FUSE: this measures the
//! metanodes), `FERRUM_BENCH_INFLIGHT` creates in flight (default 64), and compares the create and
//! lookup+getattr ("stat") rates while the namespace holds 10,000 files with those at the end; it also
//! prints the resident memory of every `ferrum-metanode` process on this host.
//!
//! Against a running cluster, e.g. one from `ferrum dev up`:
//! `FERRUM_BENCH_MASTERS=127.0.0.1:27000,... FERRUM_BENCH_VOLUME=vol cargo bench -p ferrum-client --bench namespace`

use std::time::Instant;

use ferrum_client::backend::rpc::{connect, ClusterConfig};
use ferrum_client::backend::{MetaBackend, NewNode};
use ferrum_proto::msg::attr::FileKind;
use ferrum_proto::msg::meta::Cred;
use ferrum_proto::msg::name::Name;
use ferrum_proto::InodeId;
use futures_util::{stream, StreamExt};

const PER_DIR: u64 = 1000;
const SAMPLE: u64 = 10_000;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn name(i: u64) -> Name {
    Name::from(format!("f{i}").as_str())
}

/// Resident memory (MiB) of each ferrum-metanode process, from /proc.
fn metanode_rss() -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() != "ferrum-metanode" {
            continue;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kib = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        out.push((pid, kib / 1024));
    }
    out
}

/// A pseudo-random permutation step (an LCG mod 2^64), so lookups hit the whole namespace.
fn pick(i: u64, n: u64) -> u64 {
    i.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) % n
}

#[tokio::main]
async fn main() {
    let masters: Vec<String> = std::env::var("FERRUM_BENCH_MASTERS")
        .expect("FERRUM_BENCH_MASTERS=host:port,... of a running cluster")
        .split(',')
        .map(String::from)
        .collect();
    let volume = std::env::var("FERRUM_BENCH_VOLUME").expect("FERRUM_BENCH_VOLUME");
    let files = env("FERRUM_BENCH_FILES", 1_000_000).max(SAMPLE);
    let inflight = env("FERRUM_BENCH_INFLIGHT", 64) as usize;
    let (meta, _data) = connect(masters, &volume, ClusterConfig::default()).await.expect("connect");
    let cred = Cred::root();
    let run = std::process::id();
    let top =
        meta.mkdir(InodeId::ROOT, &Name::from(format!("ns-{run}").as_str()), 0o755, &cred).await.expect("mkdir").attr;
    let dirs: Vec<InodeId> = stream::iter(0..files.div_ceil(PER_DIR))
        .map(|d| {
            let (meta, cred) = (&meta, &cred);
            async move { meta.mkdir(top.inode, &name(d), 0o755, cred).await.expect("mkdir").attr.inode }
        })
        .buffered(inflight)
        .collect()
        .await;
    let file = NewNode { kind: FileKind::File, mode: 0o644, rdev: 0 };

    let create = |from: u64, to: u64| {
        let (meta, cred, dirs, file) = (&meta, &cred, &dirs, &file);
        async move {
            let t = Instant::now();
            stream::iter(from..to)
                .for_each_concurrent(inflight, |i| async move {
                    meta.create(dirs[(i / PER_DIR) as usize], &name(i), file, cred).await.expect("create");
                })
                .await;
            (to - from) as f64 / t.elapsed().as_secs_f64()
        }
    };
    let stat = |n: u64| {
        let (meta, cred, dirs) = (&meta, &cred, &dirs);
        async move {
            let t = Instant::now();
            stream::iter(0..SAMPLE)
                .for_each_concurrent(inflight, |k| async move {
                    let i = pick(k, n);
                    let a = meta.lookup(dirs[(i / PER_DIR) as usize], &name(i), cred).await.expect("lookup");
                    meta.get_attr(a.inode).await.expect("getattr");
                })
                .await;
            SAMPLE as f64 / t.elapsed().as_secs_f64()
        }
    };

    let create_small = create(0, SAMPLE).await;
    let stat_small = stat(SAMPLE).await;
    println!(
        "at {SAMPLE} files: create {create_small:.0}/s, stat {stat_small:.0}/s, metanode RSS {:?} MiB",
        metanode_rss()
    );
    let started = Instant::now();
    let mut done = SAMPLE;
    while done < files - SAMPLE {
        let next = (done + 100_000).min(files - SAMPLE);
        let rate = create(done, next).await;
        done = next;
        println!("  {done} files ({:.0} s): create {rate:.0}/s", started.elapsed().as_secs_f64());
    }
    let create_big = create(done, files).await;
    let stat_big = stat(files).await;
    println!("at {files} files: create {create_big:.0}/s, stat {stat_big:.0}/s, metanode RSS {:?} MiB", metanode_rss());
    println!(
        "ratio at {files} / at {SAMPLE}: create {:.2}, stat {:.2}",
        create_big / create_small,
        stat_big / stat_small
    );
}
