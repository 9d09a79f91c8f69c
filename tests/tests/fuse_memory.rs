//! The FUSE mount through the kernel, over the in-memory volume (`ferrum mount --memory`): every POSIX
//! operation with plain `std::fs` calls, the background mode's "returns when usable", and clean
//! unmounts. Needs `/dev/fuse` and root (or fusermount3); without them it fails, it never skips.

mod fuse_support;

use std::ffi::OsString;
use std::process::Command;
use std::time::Duration;

use ferrum_tests::harness::{binary, TestDir};
use fuse_support::{force_unmount, is_fuse_mount, posix, MountedFerrum};

#[test]
fn every_posix_operation_through_the_kernel() {
    let dir = TestDir::new();
    let mnt = dir.path().join("mnt");
    let mut m = MountedFerrum::start(dir.path(), "mount", &[OsString::from("--memory")], &mnt);
    posix::exercise_everything(&m.mnt);
    m.unmount();
}

#[test]
fn background_mount_returns_when_usable_and_umount_ends_it() {
    let dir = TestDir::new();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let log = dir.path().join("daemon.log");
    let out = Command::new(binary("ferrum"))
        .args(["mount", "--memory", "--log-file"])
        .arg(&log)
        .arg(&mnt)
        .output()
        .expect("run ferrum mount");
    // Whatever happens next, the mount must not outlive the test.
    struct Guard<'a>(&'a std::path::Path);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            force_unmount(self.0);
        }
    }
    let _guard = Guard(&mnt);
    assert!(out.status.success(), "ferrum mount failed: {}", String::from_utf8_lossy(&out.stderr));
    // Usable the moment the command returned: no waiting here.
    assert!(is_fuse_mount(&mnt), "mounted when `ferrum mount` returns");
    std::fs::write(mnt.join("f"), b"now").expect("write right after mount returned");
    assert_eq!(std::fs::read(mnt.join("f")).unwrap(), b"now");
    let busy = std::fs::File::open(mnt.join("f")).unwrap();
    let out = Command::new(binary("ferrum")).arg("umount").arg(&mnt).output().unwrap();
    assert!(!out.status.success(), "umount with an open file must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("ferrum: error: ") && err.contains("busy"), "{err}");
    drop(busy);
    let out = Command::new(binary("ferrum")).arg("umount").arg(&mnt).output().unwrap();
    assert!(out.status.success(), "ferrum umount: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!is_fuse_mount(&mnt));
    // The background server logged its life and exits once unmounted.
    ferrum_tests::harness::wait_for("the server to log its unmount", Duration::from_secs(10), || {
        std::fs::read_to_string(&log).unwrap_or_default().contains("unmounted")
    });
}

#[test]
fn mount_errors_are_one_clear_line() {
    let dir = TestDir::new();
    let run = |args: &[&str]| {
        let out = Command::new(binary("ferrum")).args(args).output().expect("run ferrum");
        assert!(!out.status.success(), "{args:?} must fail");
        String::from_utf8_lossy(&out.stderr).trim().to_string()
    };
    let missing = dir.path().join("missing");
    let err = run(&["mount", "--memory", missing.to_str().unwrap()]);
    assert_eq!(err, format!("ferrum: error: mountpoint {} does not exist", missing.display()));
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    // Nothing listens on this port: no reachable master, reported within the connect deadline.
    let dead = ferrum_tests::harness::free_addr().to_string();
    let t = std::time::Instant::now();
    let err = run(&["mount", "--master", &dead, "--volume", "v", mnt.to_str().unwrap()]);
    assert!(err.starts_with("ferrum: error: no reachable master among ") && err.contains(&dead), "{err}");
    assert!(t.elapsed() < Duration::from_secs(20), "took {:?}", t.elapsed());
    assert!(!is_fuse_mount(&mnt));
    let err = run(&["umount", mnt.to_str().unwrap()]);
    assert!(err.contains("is not a FUSE mount"), "{err}");
}

/// scripts/unmount-stale.sh (run by scripts/test.sh before and after the suite) lazily unmounts a ferrum
/// mount under the temp dir whose server was killed, and leaves a live one alone.
#[test]
fn the_stale_mount_sweeper_takes_dead_mounts_only() {
    let dir = TestDir::new();
    let memory = [OsString::from("--memory")];
    let live = MountedFerrum::start(dir.path(), "live", &memory, &dir.path().join("live"));
    let mut dead = MountedFerrum::start(dir.path(), "dead", &memory, &dir.path().join("dead"));
    dead.proc.sigkill();
    assert!(is_fuse_mount(&dead.mnt), "a killed server leaves its mount behind");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/unmount-stale.sh");
    let out = Command::new(&script).env("TMPDIR", std::env::temp_dir()).output().expect("run unmount-stale.sh");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!is_fuse_mount(&dead.mnt), "the dead mount is gone: {err}");
    assert!(err.contains(&format!("unmounted {}", dead.mnt.display())), "{err}");
    assert!(is_fuse_mount(&live.mnt), "the live mount stays");
    std::fs::write(live.mnt.join("still"), b"works").unwrap();
}
