//! The FUSE mount over the real metanodes and datanodes (3 of each, separate processes, 3-replicated
//! partitions), reached through the client's RPC backends: every POSIX operation through the kernel,
//! remounting to find the data again, and riding out the loss of a datanode and a metanode.
//!
//! The master is a stand-in serving the fixed volume view (see `fuse_support::static_cluster`);
//! `fuse_cluster.rs` runs the same with real masters. Needs `/dev/fuse` and root (or fusermount3):
//! without them it fails, it never skips.

mod fuse_support;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::Path;

use ferrum_tests::harness::TestDir;
use fuse_support::cluster::a_leader;
use fuse_support::static_cluster::{StaticCluster, VOLUME};
use fuse_support::{posix, MountedFerrum};

fn mount(dir: &Path, name: &str, c: &StaticCluster) -> MountedFerrum {
    let args: Vec<OsString> =
        ["--master", &c.master.to_string(), "--volume", VOLUME].iter().map(OsString::from).collect();
    MountedFerrum::start(dir, name, &args, &dir.join("mnt"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_posix_operation_over_the_real_services() {
    let dir = TestDir::new();
    let cluster = StaticCluster::start(&dir, 3).await;
    tokio::task::block_in_place(|| {
        let mut m = mount(dir.path(), "mount", &cluster);
        posix::exercise_everything(&m.mnt);
        std::fs::write(m.mnt.join("persisted"), b"across mounts").unwrap();
        m.unmount();
        // A new mount is a new client: what it reads comes from the cluster.
        let mut m = mount(dir.path(), "remount", &cluster);
        assert_eq!(std::fs::read(m.mnt.join("persisted")).unwrap(), b"across mounts");
        m.unmount();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_mount_rides_out_losing_a_datanode_leader_and_the_metanode_leader() {
    let dir = TestDir::new();
    let mut cluster = StaticCluster::start(&dir, 2).await;
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
        std::fs::create_dir(mnt.join(format!("{name}.d"))).unwrap();
    };
    tokio::task::block_in_place(|| write_and_check(&m.mnt, "before"));
    // Replication 3: one node of each kind may go, even a leader; the client follows the new leaders.
    let d = tokio::task::block_in_place(|| a_leader(&cluster.datanodes));
    cluster.datanodes[d].proc.sigkill();
    cluster.datanodes[d].metrics = None;
    tokio::task::block_in_place(|| write_and_check(&m.mnt, "without-datanode1"));
    let meta = tokio::task::block_in_place(|| a_leader(&cluster.metanodes));
    cluster.metanodes[meta].proc.sigkill();
    cluster.metanodes[meta].metrics = None;
    tokio::task::block_in_place(|| {
        write_and_check(&m.mnt, "without-metanode1");
        let mut names: Vec<String> =
            std::fs::read_dir(&m.mnt).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        let want = [
            "before",
            "before.d",
            "without-datanode1",
            "without-datanode1.d",
            "without-metanode1",
            "without-metanode1.d",
        ];
        assert_eq!(names, want);
        let mut back = Vec::new();
        std::fs::File::open(m.mnt.join("before")).unwrap().read_to_end(&mut back).unwrap();
        assert!(back == data, "data written before the failures reads back after them");
        m.unmount();
    });
}
