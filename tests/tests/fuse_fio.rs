//! fio `verify=crc32c` (sequential and random writes, several jobs) through the kernel: on the
//! in-memory mount, and on the real metanodes and datanodes, where the data is verified again by a new
//! mount after the first one is gone.

mod fuse_support;

use std::ffi::OsString;

use ferrum_tests::harness::TestDir;
use fuse_support::static_cluster::{StaticCluster, VOLUME};
use fuse_support::{fio, MountedFerrum};

#[test]
fn fio_verify_on_the_memory_mount() {
    let dir = TestDir::new();
    let mut m = MountedFerrum::start(dir.path(), "mount", &[OsString::from("--memory")], &dir.path().join("mnt"));
    fio::run(dir.path(), &m.mnt, false);
    m.unmount();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fio_verify_on_the_services_and_again_after_remount() {
    let dir = TestDir::new();
    let cluster = StaticCluster::start(&dir, 3).await;
    let args: Vec<OsString> =
        ["--master", &cluster.master.to_string(), "--volume", VOLUME].iter().map(OsString::from).collect();
    tokio::task::block_in_place(|| {
        let mnt = dir.path().join("mnt");
        let mut m = MountedFerrum::start(dir.path(), "mount", &args, &mnt);
        fio::run(dir.path(), &m.mnt, false);
        m.unmount();
        let mut m = MountedFerrum::start(dir.path(), "remount", &args, &mnt);
        fio::run(dir.path(), &m.mnt, true);
        m.unmount();
    });
}
