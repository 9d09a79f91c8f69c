//! Does the namespace's size change the cost of an operation? Creates `FERRUM_BENCH_FILES` files
//! (default 1,000,000) in directories of 1,000 through the client library (no FUSE: this measures the
//! metanodes), `FERRUM_BENCH_INFLIGHT` creates in flight (default 64), and compares the create and
//! lookup+getattr ("stat") rates while the namespace holds 10,000 files with those at the end; it also
//! prints the resident memory of every `ferrum-metanode` process on this host, and the CPU time the
//! metanodes spent per operation (less sensitive than the rates to whatever else the host runs).
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

/// The pids of the ferrum-metanode processes on this host.
fn metanodes() -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "ferrum-metanode" {
            out.push(pid);
        }
    }
    out
}

/// CPU time (user + system, in clock ticks of 10 ms) all metanodes used so far: the rates depend on what
/// else the host runs, the CPU per operation much less.
fn metanode_cpu_ticks() -> u64 {
    let ticks = |pid: u32| -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the parenthesised command name; utime and stime are the 14th and 15th in all.
        let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        Some(rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?)
    };
    metanodes().into_iter().filter_map(ticks).sum()
}

/// Resident memory (MiB) of each ferrum-metanode process, from /proc.
fn metanode_rss() -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    for pid in metanodes() {
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
            let (t, cpu) = (Instant::now(), metanode_cpu_ticks());
            stream::iter(from..to)
                .for_each_concurrent(inflight, |i| async move {
                    meta.create(dirs[(i / PER_DIR) as usize], &name(i), file, cred).await.expect("create");
                })
                .await;
            Rate::since(t, cpu, to - from)
        }
    };
    let stat = |n: u64| {
        let (meta, cred, dirs) = (&meta, &cred, &dirs);
        async move {
            let (t, cpu) = (Instant::now(), metanode_cpu_ticks());
            stream::iter(0..SAMPLE)
                .for_each_concurrent(inflight, |k| async move {
                    let i = pick(k, n);
                    let a = meta.lookup(dirs[(i / PER_DIR) as usize], &name(i), cred).await.expect("lookup");
                    meta.get_attr(a.inode).await.expect("getattr");
                })
                .await;
            Rate::since(t, cpu, SAMPLE)
        }
    };

    let create_small = create(0, SAMPLE).await;
    let stat_small = stat(SAMPLE).await;
    let settled_small = settle().await;
    let stat_small_settled = stat(SAMPLE).await;
    println!(
        "at {SAMPLE} files: create {create_small}, stat {stat_small}, stat once settled ({settled_small:.0} s) \
         {stat_small_settled}, metanode RSS {:?} MiB",
        metanode_rss()
    );
    let started = Instant::now();
    let mut done = SAMPLE;
    while done < files - SAMPLE {
        let next = (done + 100_000).min(files - SAMPLE);
        let rate = create(done, next).await;
        done = next;
        println!("  {done} files ({:.0} s): create {rate}", started.elapsed().as_secs_f64());
    }
    let create_big = create(done, files).await;
    let stat_big = stat(files).await;
    let settled_big = settle().await;
    let stat_big_settled = stat(files).await;
    println!(
        "at {files} files: create {create_big}, stat {stat_big}, stat once settled ({settled_big:.0} s) \
         {stat_big_settled}, metanode RSS {:?} MiB",
        metanode_rss()
    );
    println!(
        "ratio at {files} / at {SAMPLE}: create {:.2}, stat {:.2}, stat once settled {:.2}; metanode CPU per op: \
         create {:.2}, stat {:.2}, stat once settled {:.2}",
        create_big.per_sec / create_small.per_sec,
        stat_big.per_sec / stat_small.per_sec,
        stat_big_settled.per_sec / stat_small_settled.per_sec,
        create_big.cpu_us / create_small.cpu_us,
        stat_big.cpu_us / stat_small.cpu_us,
        stat_big_settled.cpu_us / stat_small_settled.cpu_us,
    );
}

/// Waits (up to a minute) until the metanodes are idle, i.e. the flushes, compactions and snapshots
/// the creates left behind are done; returns the seconds waited. A stat right after many creates pays
/// for that work too.
async fn settle() -> f64 {
    let t = Instant::now();
    while t.elapsed().as_secs() < 60 {
        let before = metanode_cpu_ticks();
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        // Under 5% of one core over the last second, all metanodes together.
        if metanode_cpu_ticks().saturating_sub(before) < 5 {
            break;
        }
    }
    t.elapsed().as_secs_f64()
}

/// Operations per second, and the metanodes' CPU time per operation (all replicas together).
struct Rate {
    per_sec: f64,
    cpu_us: f64,
}

impl Rate {
    fn since(t: Instant, cpu_ticks: u64, ops: u64) -> Rate {
        let cpu = metanode_cpu_ticks().saturating_sub(cpu_ticks) as f64 * 10_000.0;
        Rate { per_sec: ops as f64 / t.elapsed().as_secs_f64(), cpu_us: cpu / ops as f64 }
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{:.0}/s ({:.0} us metanode CPU/op)", self.per_sec, self.cpu_us)
    }
}
