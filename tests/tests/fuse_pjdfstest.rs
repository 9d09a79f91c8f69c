//! pjdfstest through the kernel: on the in-memory mount and on the real metanodes and datanodes. Every
//! test must pass; the only skips allowed are the environmental ones (see `EXPECTED_SKIPS`).

mod fuse_support;

use std::ffi::OsString;

use ferrum_tests::harness::TestDir;
use fuse_support::pjdfstest::{self, EXPECTED_SKIPS};
use fuse_support::static_cluster::{StaticCluster, VOLUME};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pjdfstest_on_the_services() {
    let dir = TestDir::new();
    let cluster = StaticCluster::start(&dir, 2).await;
    let args: Vec<OsString> =
        ["--master", &cluster.master.to_string(), "--volume", VOLUME].iter().map(OsString::from).collect();
    let mnt = pjdfstest::short_mountpoint();
    tokio::task::block_in_place(|| {
        let mut m = MountedFerrum::start(dir.path(), "mount", &args, mnt.path());
        let (passed, failed, skipped, failures) = pjdfstest::run(dir.path(), &m.mnt);
        assert_eq!(failed, 0, "pjdfstest failures: {failures:?}");
        assert_eq!(skipped, EXPECTED_SKIPS, "only the environmental skips");
        assert!(passed >= 380, "{passed} passed");
        m.unmount();
    });
}
