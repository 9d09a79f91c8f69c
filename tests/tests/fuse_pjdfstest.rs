//! pjdfstest through the kernel: on the in-memory mount and on a cluster started by `ferrum dev up`. Every
//! test must pass; the only skips allowed are the environmental ones (see `EXPECTED_SKIPS`).

mod fuse_support;

use std::ffi::OsString;

use ferrum_tests::harness::dev::DevOptions;
use ferrum_tests::harness::{DevCluster, TestDir};
use fuse_support::pjdfstest::{self, EXPECTED_SKIPS};
use fuse_support::MountedFerrum;

#[test]
fn pjdfstest_on_the_memory_mount() {
    let dir = TestDir::new();
    let mnt = pjdfstest::short_mountpoint();
    let mut m = MountedFerrum::start(dir.path(), "mount", &[OsString::from("--memory")], mnt.path());
    let (passed, failed, skipped, failures) = pjdfstest::run(dir.path(), &m.mnt);
    assert_eq!(failed, 0, "pjdfstest failures: {failures:?}");
    assert_eq!(skipped, EXPECTED_SKIPS, "only the environmental skips");
    assert!(passed >= 380, "{passed} passed");
    m.unmount();
}

#[test]
fn pjdfstest_on_a_dev_cluster() {
    let dir = TestDir::new();
    let mnt = pjdfstest::short_mountpoint();
    let c = DevCluster::up_with(dir.path(), DevOptions { mount: Some(mnt.path().to_path_buf()), ..Default::default() });
    let (passed, failed, skipped, failures) = pjdfstest::run(dir.path(), c.mnt());
    assert_eq!(failed, 0, "pjdfstest failures: {failures:?}");
    assert_eq!(skipped, EXPECTED_SKIPS, "only the environmental skips");
    assert!(passed >= 380, "{passed} passed");
    c.down();
}
