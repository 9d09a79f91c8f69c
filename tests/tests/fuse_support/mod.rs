//! Shared by the FUSE tests: a mounted `ferrum` (guarded: unmounted even when the test fails) and the
//! POSIX exercise that every mount must pass through the kernel.
//!
//! A FUSE test never skips: without `/dev/fuse` or mount rights, `ferrum mount` fails and so does the
//! test, with its error line.

#![allow(dead_code)]

pub mod cluster;
pub mod fio;
pub mod pjdfstest;
pub mod posix;
pub mod tree;
pub mod writer;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ferrum_tests::harness::{binary, wait_for, Proc};

/// Generous for a debug build on a loaded CI box.
pub const MOUNT_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether `path` is a FUSE mount point right now.
pub fn is_fuse_mount(path: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    let want = path.to_str().expect("utf-8 mountpoint");
    info.lines().any(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        let sep = f.iter().position(|x| *x == "-");
        f.get(4) == Some(&want) && sep.and_then(|s| f.get(s + 1)).is_some_and(|t| t.starts_with("fuse"))
    })
}

/// `ferrum umount`, then a lazy umount(2) if that failed: a test must never leave a mount behind.
pub fn force_unmount(mnt: &Path) {
    if !is_fuse_mount(mnt) {
        return;
    }
    let ok = Command::new(binary("ferrum")).arg("umount").arg(mnt).status().is_ok_and(|s| s.success());
    if !ok && is_fuse_mount(mnt) {
        let c = std::ffi::CString::new(mnt.to_str().expect("utf-8")).expect("no NUL");
        // SAFETY: valid NUL-terminated path.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

/// A `ferrum mount --foreground` process and its mountpoint; unmounted (then killed) on drop.
pub struct MountedFerrum {
    pub mnt: PathBuf,
    pub proc: Proc,
}

impl MountedFerrum {
    /// Runs `ferrum mount <args> --foreground <mnt>` in `dir` and waits until the mount is up.
    pub fn start(dir: &Path, name: &str, args: &[OsString], mnt: &Path) -> MountedFerrum {
        std::fs::create_dir_all(mnt).expect("create mountpoint");
        let proc = Proc::builder(name, binary("ferrum"), dir)
            .arg("mount")
            .args(args)
            .arg("--foreground")
            .arg(mnt)
            .env("RUST_LOG", "info,ferrum_client=debug")
            .spawn();
        let mut m = MountedFerrum { mnt: mnt.to_path_buf(), proc };
        wait_for("the FUSE mount to appear", MOUNT_TIMEOUT, || {
            m.proc.assert_running("waiting for the mount");
            is_fuse_mount(&m.mnt)
        });
        m
    }

    /// `ferrum umount`, and the server exits cleanly.
    pub fn unmount(&mut self) {
        let out = Command::new(binary("ferrum")).arg("umount").arg(&self.mnt).output().expect("run ferrum umount");
        assert!(out.status.success(), "ferrum umount failed: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!is_fuse_mount(&self.mnt), "still mounted after ferrum umount");
        let status = self.proc.wait_exit(Duration::from_secs(20)).expect("mount process exits after umount");
        assert!(status.success(), "mount process exited with {status}; log:\n{}", self.proc.run_log());
    }
}

impl Drop for MountedFerrum {
    fn drop(&mut self) {
        force_unmount(&self.mnt);
    }
}
