//! The FUSE mount of a volume on a real multi-process cluster — a master, 3 metanodes and 3
//! datanodes, registered with the master, distinct loopback ports, one host — with the volume created
//! through the master: every POSIX operation through the kernel, remounting, and losing a datanode
//! leader and the metanode leader. Needs `/dev/fuse` and root (or fusermount3): without them it fails,
//! it never skips.
//!
//! `fuse_services.rs` runs the same against the real metanodes and datanodes with a stand-in master.

mod fuse_support;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::Path;

use ferrum_tests::harness::TestDir;
use fuse_support::cluster::{a_leader, Cluster};
use fuse_support::{posix, MountedFerrum};

fn mount(dir: &Path, name: &str, c: &Cluster) -> MountedFerrum {
    let args: Vec<OsString> = ["--master", &c.master_addrs(), "--volume", "vol"].iter().map(OsString::from).collect();
    MountedFerrum::start(dir, name, &args, &dir.join("mnt"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_posix_operation_on_a_cluster_volume() {
    let dir = TestDir::new();
    let cluster = Cluster::start(&dir, 1).await;
    cluster.create_volume("vol").await;
    tokio::task::block_in_place(|| {
        let mut m = mount(dir.path(), "mount", &cluster);
        posix::exercise_everything(&m.mnt);
        std::fs::write(m.mnt.join("persisted"), b"across mounts").unwrap();
        m.unmount();
        let mut m = mount(dir.path(), "remount", &cluster);
        assert_eq!(std::fs::read(m.mnt.join("persisted")).unwrap(), b"across mounts");
        m.unmount();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_mount_rides_out_losing_leaders() {
    let dir = TestDir::new();
    let mut cluster = Cluster::start(&dir, 1).await;
    cluster.create_volume("vol").await;
    let data: Vec<u8> = (0..8u32 << 20).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let mut m = tokio::task::block_in_place(|| mount(dir.path(), "mount", &cluster));
    let write_and_check = |mnt: &Path, name: &str| {
        let p = mnt.join(name);
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(&data).unwrap();
        f.sync_all().unwrap();
        drop(f);
        let mut back = Vec::new();
        std::fs::File::open(&p).unwrap().read_to_end(&mut back).unwrap();
        assert!(back == data, "{name} reads back");
    };
    tokio::task::block_in_place(|| write_and_check(&m.mnt, "before"));
    let d = tokio::task::block_in_place(|| a_leader(&cluster.datanodes));
    cluster.datanodes[d].proc.sigkill();
    cluster.datanodes[d].metrics = None;
    tokio::task::block_in_place(|| write_and_check(&m.mnt, "without-a-datanode"));
    let meta = tokio::task::block_in_place(|| a_leader(&cluster.metanodes));
    cluster.metanodes[meta].proc.sigkill();
    cluster.metanodes[meta].metrics = None;
    tokio::task::block_in_place(|| {
        write_and_check(&m.mnt, "without-a-metanode");
        m.unmount();
    });
}

/// Losing the master leader: a live mount does not need the master for file I/O and goes on; a new
/// mount, given every master's address (the dead one among them), gets the volume view from the new
/// leader within the client's retry budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_mount_rides_out_losing_the_master_leader() {
    use ferrum_proto::msg::master::GetClusterStatus;
    use ferrum_proto::rpc::{ClientConfig, ConnPool, LeaderClient, RetryPolicy};

    let dir = TestDir::new();
    let mut cluster = Cluster::start(&dir, 3).await;
    cluster.create_volume("vol").await;
    let mut m = tokio::task::block_in_place(|| mount(dir.path(), "mount", &cluster));
    tokio::task::block_in_place(|| std::fs::write(m.mnt.join("before"), b"written before").unwrap());

    let addrs: Vec<String> = cluster.masters.iter().map(|m| m.addr.to_string()).collect();
    let masters = LeaderClient::new(ConnPool::new(ClientConfig::default()), addrs, RetryPolicy::default());
    let status = masters.call(&GetClusterStatus {}).await.expect("cluster status");
    let leader = status.leader.expect("a master leader").addr;
    let i = cluster.masters.iter().position(|m| m.addr.to_string() == leader).expect("leader is one of ours");
    cluster.masters[i].proc.sigkill();

    tokio::task::block_in_place(|| {
        std::fs::write(m.mnt.join("after"), b"written after").unwrap();
        assert_eq!(std::fs::read(m.mnt.join("before")).unwrap(), b"written before");
        m.unmount();
        let mut again = mount(dir.path(), "remount", &cluster);
        assert_eq!(std::fs::read(again.mnt.join("after")).unwrap(), b"written after");
        assert_eq!(std::fs::read(again.mnt.join("before")).unwrap(), b"written before");
        again.unmount();
    });
    // A new master leader serves the admin API too.
    let status = masters.call(&GetClusterStatus {}).await.expect("cluster status after failover");
    assert_ne!(status.leader.map(|l| l.addr), Some(leader), "a different master leads");
}
