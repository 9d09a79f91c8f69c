//! fio `verify=crc32c` (sequential and random writes, several jobs) through the kernel: on the
//! in-memory mount, and on a cluster started by `ferrum dev up`, where the data is verified again by a
//! new mount after the first one is gone.

mod fuse_support;

use std::ffi::OsString;

use ferrum_tests::harness::{DevCluster, TestDir};
use fuse_support::{fio, MountedFerrum};

#[test]
fn fio_verify_on_the_memory_mount() {
    let dir = TestDir::new();
    let mut m = MountedFerrum::start(dir.path(), "mount", &[OsString::from("--memory")], &dir.path().join("mnt"));
    fio::run(dir.path(), &m.mnt, false);
    m.unmount();
}

#[test]
fn fio_verify_on_a_dev_cluster_and_again_after_remount() {
    let dir = TestDir::new();
    let c = DevCluster::up(dir.path());
    fio::run(dir.path(), c.mnt(), false);
    c.remount();
    fio::run(dir.path(), c.mnt(), true);
    c.down();
}
