//! `ferrum dev`, as the README's main command and the benchmark target drive it: two clusters (3
//! masters, 3 metanodes, 3 datanodes each) side by side on one host with different dirs and base ports,
//! each mounted; `ps --json`; an instance SIGKILLed and started again while the data stays readable;
//! `down --purge` unmounts and removes everything.

use std::path::{Path, PathBuf};
use std::process::Command;

use ferrum_tests::harness::{binary, TestDir};

/// Brings a cluster down (and unmounts it) however the test ends: its processes outlive `ferrum dev up`.
struct DevCluster {
    dir: PathBuf,
    mnt: PathBuf,
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        let _ = Command::new(binary("ferrum")).args(["dev", "down", "--purge", "--dir"]).arg(&self.dir).status();
    }
}

fn ferrum(args: &[&str]) -> String {
    let out = Command::new(binary("ferrum")).args(args).output().expect("run ferrum");
    assert!(
        out.status.success(),
        "ferrum {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn up(root: &Path, name: &str, base_port: u16) -> DevCluster {
    let c = DevCluster { dir: root.join(name), mnt: root.join(format!("{name}-mnt")) };
    let (dir, mnt) = (c.dir.display().to_string(), c.mnt.display().to_string());
    ferrum(&["dev", "up", "--dir", &dir, "--mount", &mnt, "--base-port", &base_port.to_string(), "--volume", name]);
    c
}

fn ps(c: &DevCluster) -> serde_json::Value {
    serde_json::from_str(&ferrum(&["dev", "ps", "--json", "--dir", &c.dir.display().to_string()])).expect("ps --json")
}

fn mounted(mnt: &Path) -> bool {
    let mnt = mnt.canonicalize().unwrap_or_else(|_| mnt.to_path_buf()).display().to_string();
    std::fs::read_to_string("/proc/mounts").unwrap().lines().any(|l| l.split_whitespace().nth(1) == Some(mnt.as_str()))
}

#[test]
fn two_dev_clusters_side_by_side_with_stop_start_and_down() {
    let root = TestDir::new();
    // Far apart from each other and from the ports the other tests take (ephemeral range).
    let base = 20000 + (std::process::id() % 100) as u16 * 100;
    let a = up(root.path(), "a", base);
    let b = up(root.path(), "b", base + 50);

    for c in [&a, &b] {
        let v = ps(c);
        let instances = v["instances"].as_array().expect("instances");
        for role in ["master", "metanode", "datanode"] {
            let running = instances.iter().filter(|i| i["role"] == role && i["status"] == "running").count();
            assert_eq!(running, 3, "3 running {role}s in {}", c.dir.display());
        }
        let mut rpcs: Vec<&str> = instances.iter().map(|i| i["rpc"].as_str().unwrap()).collect();
        rpcs.sort();
        rpcs.dedup();
        assert_eq!(rpcs.len(), 9, "distinct ports");
        assert!(mounted(&c.mnt), "{} is mounted", c.mnt.display());
    }
    // The two volumes are independent filesystems.
    std::fs::write(a.mnt.join("which"), b"cluster a").unwrap();
    std::fs::write(b.mnt.join("which"), b"cluster b").unwrap();
    assert_eq!(std::fs::read(a.mnt.join("which")).unwrap(), b"cluster a");
    assert_eq!(std::fs::read(b.mnt.join("which")).unwrap(), b"cluster b");

    // Kill a datanode of cluster a: the volume keeps working; it rejoins on its existing data.
    let dir_a = a.dir.display().to_string();
    ferrum(&["dev", "stop", "--kill", "--dir", &dir_a, "data1"]);
    let v = ps(&a);
    let data1 = v["instances"].as_array().unwrap().iter().find(|i| i["name"] == "data1").unwrap().clone();
    assert_eq!(data1["status"], "stopped");
    let payload: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(a.mnt.join("while-down"), &payload).unwrap();
    ferrum(&["dev", "start", "--dir", &dir_a, "data1"]);
    assert_eq!(ps(&a)["instances"].as_array().unwrap().iter().filter(|i| i["status"] == "running").count(), 9);
    assert!(std::fs::read(a.mnt.join("while-down")).unwrap() == payload, "data written while data1 was down");

    // down --purge: unmounted, stopped, removed; the other cluster is untouched.
    ferrum(&["dev", "down", "--purge", "--dir", &dir_a]);
    assert!(!mounted(&a.mnt), "a is unmounted");
    assert!(!a.dir.exists(), "a's dir is removed");
    assert_eq!(std::fs::read(b.mnt.join("which")).unwrap(), b"cluster b");
}
