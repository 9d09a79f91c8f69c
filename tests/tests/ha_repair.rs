//! High availability on a real cluster under a live FUSE mount: an instance is SIGKILLed during a
//! verified write, the write completes and verifies, and after the grace period the master has rebuilt
//! every lost replica on the remaining instances (3 live replicas per partition, none on the dead
//! one); the data reads back intact through a new mount. For a datanode (fio), a metanode (creates and
//! renames), and the master leader (fio, then a master failover in the middle of a repair). Each test
//! prints the stall the writer saw and the time to full redundancy (run with `--no-capture`).

mod fuse_support;

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

use ferrum_proto::msg::master::{GetClusterStatus, ListNodes, ListPartitions, NodeState};
use ferrum_proto::msg::repair::{DecommissionNode, Health, ListRepairs, RemoveNode};
use ferrum_proto::rpc::LeaderClient;
use ferrum_proto::NodeId;
use ferrum_tests::harness::{wait_for, wait_for_async, TestDir};
use fuse_support::cluster::{a_leader, Cluster, Instance, Layout};
use fuse_support::{fio, MountedFerrum};

const VOLUME: &str = "vol";
/// Repair of a few partitions of tens of MiB, in debug builds on a loaded machine.
const REPAIR_DEADLINE: Duration = Duration::from_secs(120);

/// 3 masters that call a node dead after 4 s of silence (heartbeats every 200 ms: a loaded machine must
/// not make a live node look dead) and repair after 1 s more (the grace period,
/// given as a flag to exercise it).
fn layout(metanodes: usize, datanodes: usize) -> Layout {
    Layout {
        masters: 3,
        metanodes,
        datanodes,
        master_toml: "suspect_after_ms = 1500\ndead_after_ms = 4000\n".into(),
        master_args: vec!["--repair-grace-ms".into(), "1000".into()],
    }
}

fn mount(dir: &Path, name: &str, c: &Cluster) -> MountedFerrum {
    let args: Vec<OsString> = ["--master", &c.master_addrs(), "--volume", VOLUME].iter().map(OsString::from).collect();
    MountedFerrum::start(dir, name, &args, &dir.join("mnt"))
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Handle::current().block_on(f)
}

async fn node_id(client: &LeaderClient, inst: &Instance) -> NodeId {
    let nodes = client.call(&ListNodes {}).await.expect("list nodes");
    nodes.iter().find(|n| n.advertise == inst.addr.to_string()).expect("the instance is registered").id
}

/// Waits until no move is in flight and every partition has 3 distinct live replicas, none on `gone`,
/// and a leader; returns the replica lists.
async fn wait_full_redundancy(client: &LeaderClient, gone: NodeId) -> BTreeMap<u64, Vec<NodeId>> {
    wait_for_async("every partition back to 3 live replicas on the remaining instances", REPAIR_DEADLINE, || async {
        let parts = client.call(&ListPartitions { volume: None }).await.map_err(|e| e.to_string())?;
        let repairs = client.call(&ListRepairs {}).await.map_err(|e| e.to_string())?;
        let mut out = BTreeMap::new();
        for p in &parts {
            let nodes: Vec<NodeId> = p.replicas.iter().map(|r| r.node).collect();
            let distinct: HashSet<NodeId> = nodes.iter().copied().collect();
            let ok = p.ready
                && nodes.len() == 3
                && distinct.len() == 3
                && p.live_replicas == 3
                && !nodes.contains(&gone)
                && p.leader.is_some();
            if !ok {
                return Err(format!(
                    "partition {} not yet: {:?} live {} leader {:?}",
                    p.partition, nodes, p.live_replicas, p.leader
                ));
            }
            out.insert(p.partition.get(), nodes);
        }
        if !repairs.is_empty() {
            return Err(format!("{} moves in flight", repairs.len()));
        }
        Ok(out)
    })
    .await
}

/// Starts timing the way back to full redundancy from now (the kill), concurrently with the workload.
fn time_healing(c: &Cluster, gone: NodeId) -> tokio::task::JoinHandle<Duration> {
    let client = c.master_client();
    let killed = Instant::now();
    tokio::spawn(async move {
        wait_full_redundancy(&client, gone).await;
        killed.elapsed()
    })
}

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_datanode_killed_under_fio_is_replaced_then_a_returning_node_is_cleaned_and_one_decommissioned() {
    let dir = TestDir::new();
    let mut c = Cluster::start_with(&dir, layout(3, 4)).await;
    c.create_volume(VOLUME).await;
    let client = c.master_client();
    tokio::task::block_in_place(|| {
        let mut m = mount(dir.path(), "mount", &c);
        let run = fio::start_timed(dir.path(), &m.mnt, 24, false);
        wait_for("fio to have written 12 MiB", REPAIR_DEADLINE, || run.written() >= 12 << 20);
        let victim = a_leader(&c.datanodes);
        let victim_id = block_on(node_id(&client, &c.datanodes[victim]));
        c.datanodes[victim].proc.sigkill();
        let metrics = c.datanodes[victim].metrics.take();
        let healing = time_healing(&c, victim_id);
        let timed = run.finish();
        let healed = block_on(healing).unwrap();
        let replicas = block_on(wait_full_redundancy(&client, victim_id));
        let used: u64 = block_on(client.call(&ListPartitions { volume: None }))
            .unwrap()
            .iter()
            .filter(|p| p.kind == ferrum_proto::msg::topology::PartitionKind::Data)
            .map(|p| p.used_bytes)
            .sum();
        println!(
            "HA datanode kill: writer stall (max write latency) {:?}; {:.1} MiB written by fio; \
             full redundancy {:?} after the kill (dead after 4 s + grace 1 s); {:.1} MiB in the data partitions",
            timed.max_latency,
            mib(timed.bytes_written),
            healed,
            mib(used)
        );
        assert!(replicas.len() >= 4, "meta and data partitions listed: {replicas:?}");
        m.unmount();
        let mut m = mount(dir.path(), "remount", &c);
        fio::start_timed(dir.path(), &m.mnt, 24, true).finish();
        let status = block_on(client.call(&GetClusterStatus {})).unwrap();
        assert_eq!(status.under_replicated_partitions, 0);
        assert!(status.bytes_rebuilt > 0 || status.masters.iter().any(|m| !m.leader), "{status:?}");

        // The dead node comes back: it hosts nothing it no longer owns.
        c.datanodes[victim].proc.restart();
        c.datanodes[victim].metrics = metrics;
        block_on(wait_for_async("the returning datanode to drop its stale replicas", REPAIR_DEADLINE, || async {
            // Its registration keeps its old report until its first heartbeat, which lists the groups
            // it reopened: 0 only once the master had them deleted.
            let nodes = client.call(&ListNodes {}).await.map_err(|e| e.to_string())?;
            let n = nodes.iter().find(|n| n.id == victim_id).expect("still registered");
            if n.state == NodeState::Alive && n.hosted_partitions == 0 {
                Ok(())
            } else {
                Err(format!("{:?}, hosting {}", n.state, n.hosted_partitions))
            }
        }));
        // Its own metrics agree (refreshed once a second).
        wait_for("the returning datanode's metrics to show no group", REPAIR_DEADLINE, || {
            c.datanodes[victim].metric("ferrum_raft_groups") == Some(0)
        });
        block_on(wait_for_async("the cluster to be healthy again", REPAIR_DEADLINE, || async {
            let s = client.call(&GetClusterStatus {}).await.map_err(|e| e.to_string())?;
            if s.health == Health::Ok {
                Ok(())
            } else {
                Err(format!("{:?}: {:?}", s.health, s.reasons))
            }
        }));

        // Decommission another datanode: its replicas move (to the returned one), then it can go.
        let out = (victim + 1) % c.datanodes.len();
        let out_id = block_on(node_id(&client, &c.datanodes[out]));
        let refused = block_on(client.call(&RemoveNode { node: out_id })).unwrap_err();
        assert!(refused.to_string().contains("decommission"), "{refused}");
        let started = Instant::now();
        block_on(client.call(&DecommissionNode { node: out_id })).unwrap();
        block_on(wait_full_redundancy(&client, out_id));
        println!("HA decommission of a datanode: {:?}", started.elapsed());
        block_on(wait_for_async("the decommissioned datanode to hold nothing", REPAIR_DEADLINE, || async {
            let nodes = client.call(&ListNodes {}).await.map_err(|e| e.to_string())?;
            let n = nodes.iter().find(|n| n.id == out_id).expect("still registered");
            let assigned = n.meta_partitions + n.data_partitions;
            if n.decommissioning && assigned == 0 && n.hosted_partitions == 0 {
                Ok(())
            } else {
                Err(format!("assigned {assigned}, hosting {}", n.hosted_partitions))
            }
        }));
        block_on(client.call(&RemoveNode { node: out_id })).unwrap();
        fio::start_timed(dir.path(), &m.mnt, 24, true).finish();
        m.unmount();
    });
}

/// Creates, renames and a final check of every entry, timing each operation.
struct MetaLoad {
    dir: std::path::PathBuf,
    n: usize,
}

impl MetaLoad {
    fn name(i: usize) -> String {
        if i % 3 == 0 {
            format!("renamed-{i}")
        } else {
            format!("file-{i}")
        }
    }

    /// Runs the workload, calling `at(i)` after operation i; returns the longest gap between two
    /// completed operations.
    fn run(&self, mut at: impl FnMut(usize)) -> Duration {
        std::fs::create_dir_all(&self.dir).unwrap();
        let mut last = Instant::now();
        let mut max_gap = Duration::ZERO;
        let mut tick = |last: &mut Instant| {
            let now = Instant::now();
            max_gap = max_gap.max(now - *last);
            *last = now;
        };
        for i in 0..self.n {
            let sub = self.dir.join(format!("d{}", i % 10));
            if i < 10 {
                std::fs::create_dir_all(&sub).unwrap();
            }
            let p = sub.join(format!("file-{i}"));
            std::fs::write(&p, format!("content {i}")).unwrap();
            tick(&mut last);
            if i % 3 == 0 {
                std::fs::rename(&p, sub.join(Self::name(i))).unwrap();
                tick(&mut last);
            }
            at(i);
        }
        max_gap
    }

    fn check(&self) {
        for d in 0..10 {
            let sub = self.dir.join(format!("d{d}"));
            let found: HashSet<String> =
                std::fs::read_dir(&sub).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
            let want: HashSet<String> = (0..self.n).filter(|i| i % 10 == d).map(Self::name).collect();
            assert_eq!(found, want, "entries of {}", sub.display());
        }
        for i in 0..self.n {
            let p = self.dir.join(format!("d{}", i % 10)).join(Self::name(i));
            assert_eq!(std::fs::read_to_string(&p).unwrap(), format!("content {i}"), "{}", p.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_metanode_killed_under_creates_and_renames_is_replaced() {
    let dir = TestDir::new();
    let mut c = Cluster::start_with(&dir, layout(4, 3)).await;
    c.create_volume(VOLUME).await;
    let client = c.master_client();
    tokio::task::block_in_place(|| {
        let mut m = mount(dir.path(), "mount", &c);
        let load = MetaLoad { dir: m.mnt.join("meta"), n: 900 };
        let victim = a_leader(&c.metanodes);
        let victim_id = block_on(node_id(&client, &c.metanodes[victim]));
        let mut healing = None;
        let stall = load.run(|i| {
            if i == 200 {
                c.metanodes[victim].proc.sigkill();
                c.metanodes[victim].metrics = None;
                healing = Some(time_healing(&c, victim_id));
            }
        });
        load.check();
        let healed = block_on(healing.expect("killed during the workload")).unwrap();
        println!(
            "HA metanode kill: writer stall (max gap between completed creates/renames) {stall:?}; \
             {} creates + {} renames; full redundancy {healed:?} after the kill",
            load.n,
            load.n.div_ceil(3),
        );
        m.unmount();
        let mut m = mount(dir.path(), "remount", &c);
        MetaLoad { dir: m.mnt.join("meta"), n: load.n }.check();
        m.unmount();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_master_leader_killed_under_fio_and_again_in_the_middle_of_a_repair() {
    let dir = TestDir::new();
    let mut c = Cluster::start_with(&dir, layout(3, 4)).await;
    c.create_volume(VOLUME).await;
    let client = c.master_client();
    let leader_index = |c: &Cluster| {
        let status = block_on(client.call(&GetClusterStatus {})).expect("cluster status");
        let addr = status.leader.expect("a master leader").addr;
        c.masters.iter().position(|m| m.addr.to_string() == addr).expect("one of ours")
    };
    tokio::task::block_in_place(|| {
        let mut m = mount(dir.path(), "mount", &c);
        let run = fio::start_timed(dir.path(), &m.mnt, 24, false);
        wait_for("fio to have written 12 MiB", REPAIR_DEADLINE, || run.written() >= 12 << 20);
        let first = leader_index(&c);
        c.masters[first].proc.sigkill();
        let timed = run.finish();
        println!(
            "HA master leader kill: writer stall (max write latency) {:?}; {:.1} MiB written",
            timed.max_latency,
            mib(timed.bytes_written)
        );
        c.masters[first].proc.restart();
        block_on(wait_for_async("the restarted master to be back", REPAIR_DEADLINE, || async {
            let s = client.call(&GetClusterStatus {}).await.map_err(|e| e.to_string())?;
            if s.masters.len() == 3 && s.masters.iter().all(|m| m.resources.is_some()) {
                Ok(())
            } else {
                Err(format!("{:?}", s.masters))
            }
        }));

        // A datanode dies; as soon as a move is recorded, the master leader dies too: the next leader
        // resumes the recorded moves, without losing or duplicating any.
        let victim = a_leader(&c.datanodes);
        let victim_id = block_on(node_id(&client, &c.datanodes[victim]));
        c.datanodes[victim].proc.sigkill();
        c.datanodes[victim].metrics = None;
        let healing = time_healing(&c, victim_id);
        block_on(wait_for_async("a replica move in flight", REPAIR_DEADLINE, || async {
            let r = client.call(&ListRepairs {}).await.map_err(|e| e.to_string())?;
            if r.is_empty() {
                Err("none yet".to_string())
            } else {
                Ok(())
            }
        }));
        let second = leader_index(&c);
        c.masters[second].proc.sigkill();
        c.masters[second].metrics = None;
        let healed = block_on(healing).unwrap();
        println!("HA datanode kill + master failover mid-repair: full redundancy {healed:?} after the kill");
        let now = leader_index(&c);
        assert_ne!(now, second);
        // Refreshed once a second.
        wait_for("the new leader to have finished the moves it inherited", REPAIR_DEADLINE, || {
            c.masters[now].metric("ferrum_master_replica_moves_finished").unwrap_or(0) > 0
        });
        m.unmount();
        let mut m = mount(dir.path(), "remount", &c);
        fio::start_timed(dir.path(), &m.mnt, 24, true).finish();
        m.unmount();
    });
}
