//! `DevCluster`: a cluster started by the real `ferrum dev up` binary, so the end-to-end tests run exactly
//! what the README tells a newcomer to run (each instance its own process, ports from `--base-port`, the
//! volume created and mounted by the tool), and drive it with `ferrum dev ps|stop|start|down`.
//!
//! Its processes are not the test's children: `Drop` runs `ferrum dev down` (with `--purge` when the test
//! passed; without it, and with the instances' log tails printed, when it failed, so the logs stay in the kept
//! `TestDir`), and a [`watchdog::Watchdog`] does the same if the test process is killed outright. Either way no
//! mount stays behind.

mod ps;
mod query;
mod watchdog;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub use ps::{DevInstance, Ps};
pub use query::{block_on, Stall};

use super::{binary, dev_base_port, wait_for};

/// How long `ferrum dev up` may take to a usable mount: 9 debug-build processes on a loaded 2-core box.
pub const UP_TIMEOUT_S: u64 = 120;
/// Generous deadline for conditions (rejoin, catch-up) on a loaded CI box.
pub const T: Duration = Duration::from_secs(90);

/// The shape of the cluster: what `ferrum dev up` takes as flags.
#[derive(Clone, Debug)]
pub struct DevOptions {
    pub masters: u16,
    pub metanodes: u16,
    pub datanodes: u16,
    pub replicas: u8,
    pub volume: String,
    /// Where to mount the volume; default `<root>/mnt`.
    pub mount: Option<PathBuf>,
}

impl Default for DevOptions {
    fn default() -> Self {
        DevOptions { masters: 3, metanodes: 3, datanodes: 3, replicas: 3, volume: "vol".into(), mount: None }
    }
}

pub struct DevCluster {
    dir: PathBuf,
    mnt: PathBuf,
    volume: String,
    base_port: u16,
    down: bool,
    _watchdog: watchdog::Watchdog,
}

/// Runs `ferrum ARGS` and returns its stdout; panics with both streams when it fails.
pub fn ferrum<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    let out = Command::new(binary("ferrum")).args(args).output().expect("run ferrum");
    let shown: Vec<String> = args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect();
    assert!(
        out.status.success(),
        "`ferrum {}` failed ({}):\n{}{}",
        shown.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether `path` is a mount point of a `ferrum` FUSE filesystem: in /proc/mounts its source is the client's
/// fsname `ferrum:VOLUME` and its type `fuse` (fusermount3 drops the `ferrum` subtype).
pub fn is_ferrum_mount(path: &Path) -> bool {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let Some(want) = path.to_str() else { return false };
    std::fs::read_to_string("/proc/mounts").expect("read /proc/mounts").lines().any(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        f.get(1) == Some(&want)
            && f.first().is_some_and(|s| s.starts_with("ferrum:"))
            && f.get(2).is_some_and(|t| t.starts_with("fuse"))
    })
}

impl DevCluster {
    /// `ferrum dev up` with the default shape (3 masters, 3 metanodes, 3 datanodes, 3 replicas), its dir
    /// `<root>/dev` and its mount `<root>/mnt`.
    pub fn up(root: &Path) -> DevCluster {
        DevCluster::up_with(root, DevOptions::default())
    }

    /// `ferrum dev up --dir <root>/dev --mount ... --base-port P ...`, with a base port from
    /// [`dev_base_port`]; returns when the tool says the mount is usable. A base port that another process
    /// took between the probe and `up` is retried with another block.
    pub fn up_with(root: &Path, o: DevOptions) -> DevCluster {
        let dir = root.join("dev");
        let mnt = o.mount.clone().unwrap_or_else(|| root.join("mnt"));
        let watchdog = watchdog::Watchdog::start(&binary("ferrum"), &dir, &root.join("dev-watchdog.log"));
        for attempt in 1.. {
            let base_port = dev_base_port();
            let counts = [o.masters.to_string(), o.metanodes.to_string(), o.datanodes.to_string()];
            let mut args: Vec<String> = ["dev", "up", "--dir"].map(String::from).into();
            args.extend([dir.display().to_string(), "--mount".into(), mnt.display().to_string()]);
            args.extend(["--base-port".into(), base_port.to_string(), "--volume".into(), o.volume.clone()]);
            args.extend(["--masters".into(), counts[0].clone(), "--metanodes".into(), counts[1].clone()]);
            args.extend(["--datanodes".into(), counts[2].clone(), "--replicas".into(), o.replicas.to_string()]);
            args.extend(["--timeout".into(), UP_TIMEOUT_S.to_string()]);
            let out = Command::new(binary("ferrum")).args(&args).output().expect("run ferrum dev up");
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.success() {
                eprintln!("[harness] ferrum {}\n{}", args.join(" "), String::from_utf8_lossy(&out.stdout));
                let c = DevCluster { dir, mnt, volume: o.volume.clone(), base_port, down: false, _watchdog: watchdog };
                assert!(is_ferrum_mount(&c.mnt), "{} is not mounted after `ferrum dev up`", c.mnt.display());
                return c;
            }
            if stderr.contains("is not free") && attempt < 5 {
                eprintln!("[harness] base port {base_port} was taken meanwhile, trying another: {stderr}");
                continue;
            }
            // The tool stopped what it started; show why, keep the logs (the TestDir is kept on panic).
            panic!("`ferrum {}` failed ({}):\n{stderr}", args.join(" "), out.status);
        }
        unreachable!()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn mnt(&self) -> &Path {
        &self.mnt
    }

    pub fn volume(&self) -> &str {
        &self.volume
    }

    pub fn base_port(&self) -> u16 {
        self.base_port
    }

    /// `ferrum dev ps --json --dir DIR`.
    pub fn ps(&self) -> Ps {
        let text = ferrum(&["dev", "ps", "--json", "--dir", &self.dir.display().to_string()]);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("ferrum dev ps --json: {e}:\n{text}"))
    }

    /// `ferrum dev stop [--kill] --dir DIR NAME`: SIGTERM (or SIGKILL) one instance.
    pub fn stop(&self, name: &str, kill: bool) {
        let dir = self.dir.display().to_string();
        let mut args = vec!["dev", "stop", "--dir", &dir, name];
        if kill {
            args.push("--kill");
        }
        ferrum(&args);
        assert!(!self.ps().get(name).running(), "{name} still running after `ferrum dev stop`");
    }

    /// `ferrum dev start --dir DIR NAME`: the instance again, on its existing data.
    pub fn start(&self, name: &str) {
        ferrum(&["dev", "start", "--dir", &self.dir.display().to_string(), name]);
    }

    /// The masters' RPC addresses (what `ferrum mount --master` takes).
    pub fn master_addrs(&self) -> Vec<String> {
        self.ps().of_role("master").map(|m| m.rpc.clone()).collect()
    }

    /// Unmounts (`ferrum umount`) and mounts the volume again with `ferrum mount` (which returns once the
    /// mount is usable): a new client that knows nothing but what the cluster tells it.
    pub fn remount(&self) {
        let mnt = self.mnt.display().to_string();
        ferrum(&["umount", &mnt]);
        wait_for("the old mount to go away", T, || !is_ferrum_mount(&self.mnt));
        ferrum(&["mount", "--master", &self.master_addrs().join(","), "--volume", &self.volume, &mnt]);
        assert!(is_ferrum_mount(&self.mnt), "{mnt} is not mounted after `ferrum mount`");
    }

    /// `ferrum dev down --purge`, checked: unmounted, every instance stopped, the dir removed.
    pub fn down(mut self) {
        let pids: Vec<u32> = self.ps().instances.iter().filter_map(|i| i.pid).collect();
        ferrum(&["dev", "down", "--purge", "--dir", &self.dir.display().to_string()]);
        self.down = true;
        assert!(!is_ferrum_mount(&self.mnt), "still mounted after `ferrum dev down`");
        assert!(!self.dir.exists(), "{} still exists after `ferrum dev down --purge`", self.dir.display());
        for pid in pids {
            assert!(!Path::new(&format!("/proc/{pid}")).exists() || zombie(pid), "pid {pid} survived `down`");
        }
    }

    fn dump_logs(&self) {
        let Ok(ps) = std::panic::catch_unwind(|| self.ps()) else { return };
        let logs = ps.instances.iter().map(|i| (i.name.clone(), PathBuf::from(&i.log)));
        for (name, log) in logs.chain([("client".to_string(), self.dir.join("client.log"))]) {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            eprintln!("----- [harness] last 40 lines of {name} ({}) -----\n{tail}", log.display());
        }
    }
}

fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(true)
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        if self.down {
            return;
        }
        let dir = self.dir.display().to_string();
        if std::thread::panicking() {
            self.dump_logs();
            let _ = Command::new(binary("ferrum")).args(["dev", "down", "--dir", &dir]).status();
        } else {
            let _ = Command::new(binary("ferrum")).args(["dev", "down", "--purge", "--dir", &dir]).status();
        }
    }
}
