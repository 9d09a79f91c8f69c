//! Leader spread on a real cluster: 3 metanodes with 3 meta partitions and 3 datanodes with 6 data
//! partitions (3 replicas each). The master hands leaderships over until every instance leads its share
//! (1 meta, 2 data partitions). A datanode is then SIGKILLed (the others take its leaderships) and
//! restarted: the master re-spreads the leaders onto it, while a writer on a FUSE mount keeps writing
//! and fsyncing files that all read back intact. Prints the time to re-spread and the longest write.
//! With balancing off, a new volume's leaders are spread from the start: each partition's first
//! leader is chosen by the master, and only it campaigns at first.

mod fuse_support;

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrum_proto::msg::master::{ListNodes, NodeRole, NodeState};
use ferrum_proto::rpc::LeaderClient;
use ferrum_tests::harness::{wait_for_async, TestDir};
use fuse_support::cluster::{Cluster, Layout};
use fuse_support::MountedFerrum;

const VOLUME: &str = "spread";
const T: Duration = Duration::from_secs(120);

/// Leaders per node of `role`, by the node's address, once every node of that role is alive and the
/// counts equal `want` everywhere; the error says what is seen.
async fn leads(client: &LeaderClient, role: NodeRole, want: u64) -> Result<HashMap<String, u64>, String> {
    let nodes = client.call(&ListNodes {}).await.map_err(|e| e.to_string())?;
    let of_role: HashMap<String, u64> =
        nodes.iter().filter(|n| n.role == role).map(|n| (n.advertise.clone(), n.leaders)).collect();
    let all_alive = nodes.iter().filter(|n| n.role == role).all(|n| n.state == NodeState::Alive);
    if all_alive && of_role.values().all(|l| *l == want) {
        Ok(of_role)
    } else {
        Err(format!("{role:?} leaders {of_role:?} (alive: {all_alive})"))
    }
}

async fn balanced(client: &LeaderClient, what: &str) {
    wait_for_async(&format!("{what}: every metanode leads 1 partition"), T, || leads(client, NodeRole::Meta, 1)).await;
    wait_for_async(&format!("{what}: every datanode leads 2 partitions"), T, || leads(client, NodeRole::Data, 2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leaders_are_spread_and_re_spread_after_a_node_returns() {
    let dir = TestDir::named("leader_spread");
    let layout = Layout {
        master_toml: "meta_partitions_per_volume = 3\ndata_partitions_per_volume = 6\n\
                      leader_balance_interval_ms = 1500\nsuspect_after_ms = 1500\ndead_after_ms = 4000\n"
            .into(),
        ..Layout::default()
    };
    let mut c = Cluster::start_with(&dir, layout).await;
    c.create_volume(VOLUME).await;
    let client = c.master_client();
    balanced(&client, "after the volume is created").await;

    let args: Vec<OsString> = ["--master", &c.master_addrs(), "--volume", VOLUME].iter().map(OsString::from).collect();
    let mnt = dir.path().join("mnt");
    let _mount = MountedFerrum::start(dir.path(), "mount", &args, &mnt);

    // A writer that fsyncs each file and records the longest write.
    let stop = Arc::new(AtomicBool::new(false));
    let (written, longest_ms) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let writer = {
        let (mnt, stop, written, longest_ms) = (mnt.clone(), stop.clone(), written.clone(), longest_ms.clone());
        std::thread::spawn(move || -> std::io::Result<()> {
            while !stop.load(Ordering::Relaxed) {
                let i = written.load(Ordering::Relaxed);
                let t = Instant::now();
                let mut f = std::fs::File::create(mnt.join(format!("f{i}")))?;
                f.write_all(&content(i))?;
                f.sync_all()?;
                longest_ms.fetch_max(t.elapsed().as_millis() as u64, Ordering::Relaxed);
                written.store(i + 1, Ordering::Relaxed);
            }
            Ok(())
        })
    };

    // A datanode fails: the others take over its leaderships.
    let victim = c.datanodes[0].addr.to_string();
    c.datanodes[0].proc.sigkill();
    wait_for_async("the killed datanode is dead and leads nothing", T, || async {
        let nodes = client.call(&ListNodes {}).await.map_err(|e| e.to_string())?;
        let n = nodes.iter().find(|n| n.advertise == victim).ok_or("not listed")?;
        let others: u64 =
            nodes.iter().filter(|m| m.role == NodeRole::Data && m.advertise != victim).map(|m| m.leaders).sum();
        (n.state == NodeState::Dead && others == 6).then_some(()).ok_or(format!("{:?}, others lead {others}", n.state))
    })
    .await;

    // It returns with no leadership; the master gives it its share back through handovers. (Its
    // first heartbeat may still claim the leaderships it held before the kill: openraft resumes a
    // leadership recorded on disk until a follower answers with the newer term. So the counts alone
    // could look balanced at once; the handovers say the master really moved them.)
    let transfers = || c.masters.iter().map(|m| m.metric("ferrum_master_leader_transfers").unwrap_or(0)).sum::<u64>();
    let transfers_before = transfers();
    let back = Instant::now();
    let kill_stall = longest_ms.swap(0, Ordering::Relaxed);
    c.datanodes[0].proc.restart();
    wait_for_async("the returning datanode got 2 leaderships through handovers", T, || async {
        let moved = transfers() - transfers_before;
        if moved < 2 {
            return Err(format!("{moved} handovers"));
        }
        leads(&client, NodeRole::Data, 2).await
    })
    .await;
    balanced(&client, "after the datanode returned").await;
    let respread = back.elapsed();

    let before = written.load(Ordering::Relaxed);
    wait_for_async("writes go on after the re-spread", T, || async {
        let n = written.load(Ordering::Relaxed);
        (n >= before + 5).then_some(()).ok_or(format!("{n} files written"))
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer thread").expect("every write and fsync succeeded");
    let n = written.load(Ordering::Relaxed);
    for i in 0..n {
        assert_eq!(std::fs::read(mnt.join(format!("f{i}"))).unwrap(), content(i), "file f{i}");
    }
    eprintln!(
        "re-spread {respread:?} after the restart; {} handovers; {n} files written; longest write \
         (create + 64 KiB + fsync): {kill_stall} ms around the kill, {} ms during the re-spread",
        transfers() - transfers_before,
        longest_ms.load(Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_volume_starts_with_its_leaders_spread() {
    let dir = TestDir::named("leader_spread_new");
    let layout = Layout {
        master_toml: "meta_partitions_per_volume = 3\ndata_partitions_per_volume = 6\nleader_balance_interval_ms = 0\n"
            .into(),
        ..Layout::default()
    };
    let c = Cluster::start_with(&dir, layout).await;
    c.create_volume(VOLUME).await;
    // No handover can happen: the partitions were created with these leaders.
    balanced(&c.master_client(), "a new volume, leader balancing off").await;
}

fn content(i: u64) -> Vec<u8> {
    (0..64 * 1024u64).map(|j| (i.wrapping_mul(31).wrapping_add(j) % 251) as u8).collect()
}
