//! A metanode and a datanode restart on their data dirs (same node ids) but on new ports: the master
//! records the new addresses, and the leaders of their partitions, whose Raft memberships still name
//! the old ones, replicate to them at the new ones (each instance's route table, refreshed from the
//! master). Real processes, a FUSE mount writing through them.

mod fuse_support;

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use ferrum_proto::msg::master::{ListNodes, NodeRole, NodeState};
use ferrum_tests::harness::{http, wait_for, wait_for_async, TestDir};
use fuse_support::cluster::{Cluster, Instance, Layout, T};
use fuse_support::MountedFerrum;

fn mount(dir: &Path, name: &str, c: &Cluster) -> MountedFerrum {
    let args: Vec<OsString> = ["--master", &c.master_addrs(), "--volume", "vol"].iter().map(OsString::from).collect();
    MountedFerrum::start(dir, name, &args, &dir.join("mnt"))
}

/// A series of an instance's `/metrics` (0 when unreadable).
fn metric(n: &Instance, series: &str) -> u64 {
    let Some(addr) = n.metrics else { return 0 };
    let Ok(resp) = http::get(addr, "/metrics", Duration::from_secs(5)) else { return 0 };
    resp.text()
        .lines()
        .find(|l| l.starts_with(series) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Hosts its groups, each with a known leader, none of them here: it only follows.
fn follows_everything(n: &Instance) -> bool {
    metric(n, "ferrum_raft_groups") > 0
        && metric(n, "ferrum_raft_leaderless_groups") == 0
        && metric(n, "ferrum_raft_leader_groups") == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_restarted_on_new_ports_keep_replicating() {
    let dir = TestDir::new();
    // Leader spreading off, and fewer partitions than instances (leaders start spread): the test needs
    // a metanode and a datanode that lead nothing.
    let layout = Layout {
        master_toml: "leader_balance_interval_ms = 0\nmeta_partitions_per_volume = 1\ndata_partitions_per_volume = 2\n"
            .into(),
        ..Layout::default()
    };
    let mut cluster = Cluster::start_with(&dir, layout).await;
    cluster.create_volume("vol").await;
    let master = cluster.master_client();
    let before = master.call(&ListNodes {}).await.unwrap();

    // A metanode and a datanode that lead nothing (so that they only follow after the restart too).
    let pick = |nodes: &[Instance]| wait_for("a node leading nothing", T, || nodes.iter().position(follows_everything));
    let (m, d) = tokio::task::block_in_place(|| (pick(&cluster.metanodes), pick(&cluster.datanodes)));
    let (old_m, old_d) = (cluster.metanodes[m].addr, cluster.datanodes[d].addr);
    cluster.restart_on_new_port(&dir, "metanode", m, 1);
    cluster.restart_on_new_port(&dir, "datanode", d, 1);
    let (new_m, new_d) = (cluster.metanodes[m].addr, cluster.datanodes[d].addr);
    assert!(new_m != old_m && new_d != old_d);

    // The master knows them at their new addresses, as the same nodes.
    let after = wait_for_async("the new addresses registered, every node alive", T, || async {
        let nodes = master.call(&ListNodes {}).await.map_err(|e| e.to_string())?;
        let at = |a: std::net::SocketAddr| nodes.iter().any(|n| n.advertise == a.to_string());
        let alive = nodes.iter().all(|n| n.state == NodeState::Alive);
        if at(new_m) && at(new_d) && alive {
            Ok(nodes)
        } else {
            Err(format!("{nodes:?}"))
        }
    })
    .await;
    assert_eq!(after.len(), before.len(), "no new node ids");
    for role in [NodeRole::Meta, NodeRole::Data] {
        let ids = |v: &[ferrum_proto::msg::master::NodeInfo]| {
            let mut ids: Vec<_> = v.iter().filter(|n| n.role == role).map(|n| n.id).collect();
            ids.sort();
            ids
        };
        assert_eq!(ids(&after), ids(&before));
    }

    // They host their groups again, each with a leader elsewhere.
    tokio::task::block_in_place(|| {
        wait_for("the restarted metanode follows", T, || follows_everything(&cluster.metanodes[m]));
        wait_for("the restarted datanode follows", T, || follows_everything(&cluster.datanodes[d]));
    });
    let applied = |n: &Instance| metric(n, "ferrum_raft_applied_entries");
    let (m0, d0) = (applied(&cluster.metanodes[m]), applied(&cluster.datanodes[d]));

    // The third metanode goes: every metadata write now needs the restarted one's acknowledgement,
    // which its leader can only get at its new address.
    let leader_m = tokio::task::block_in_place(|| {
        wait_for("the meta partition's leader", T, || {
            (0..3).find(|i| *i != m && metric(&cluster.metanodes[*i], "ferrum_raft_leader_groups") > 0)
        })
    });
    let third = (0..3).find(|i| *i != m && *i != leader_m).unwrap();
    cluster.metanodes[third].proc.sigkill();
    cluster.metanodes[third].metrics = None;

    let data: Vec<u8> = (0..4u32 << 20).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8).collect();
    tokio::task::block_in_place(|| {
        let mut mnt = mount(dir.path(), "mount", &cluster);
        for i in 0..20 {
            std::fs::write(mnt.mnt.join(format!("f{i}")), format!("file {i}")).unwrap();
        }
        std::fs::write(mnt.mnt.join("big"), &data).unwrap();
        for i in 0..20 {
            assert_eq!(std::fs::read_to_string(mnt.mnt.join(format!("f{i}"))).unwrap(), format!("file {i}"));
        }
        assert!(std::fs::read(mnt.mnt.join("big")).unwrap() == data, "big reads back");
        mnt.unmount();
        // The writes reached them: their applied index moved on, while they still led nothing.
        wait_for("the restarted metanode applied the new entries", T, || applied(&cluster.metanodes[m]) > m0);
        wait_for("the restarted datanode applied the new entries", T, || applied(&cluster.datanodes[d]) > d0);
    });
    assert_eq!(metric(&cluster.datanodes[d], "ferrum_raft_leader_groups"), 0, "it followed throughout");
    let log = cluster.metanodes[leader_m].proc.log_text();
    assert!(log.contains("peer address") && log.contains(&new_m.to_string()), "the leader learned the new address");
}
