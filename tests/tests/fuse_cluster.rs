//! The FUSE mount of a volume on a cluster started by `ferrum dev up` — 3 masters, 3 metanodes and 3
//! datanodes, each its own process on its own loopback ports, the volume 3-replicated — exactly what the
//! README's main command starts: every POSIX operation through the kernel, then a new client (`ferrum
//! mount` after `ferrum umount`) finds the data. Needs `/dev/fuse` and root (or fusermount3): without them
//! it fails, it never skips.
//!
//! Losing instances under a live mount is `fuse_kill.rs`; real workloads are `fuse_workloads.rs`.

mod fuse_support;

use ferrum_tests::harness::{DevCluster, TestDir};
use fuse_support::posix;

#[test]
fn every_posix_operation_on_a_dev_cluster_volume() {
    let dir = TestDir::new();
    let c = DevCluster::up(dir.path());
    posix::exercise_everything(c.mnt());
    std::fs::write(c.mnt().join("persisted"), b"across mounts").unwrap();
    c.remount();
    assert_eq!(std::fs::read(c.mnt().join("persisted")).unwrap(), b"across mounts");
    c.down();
}
