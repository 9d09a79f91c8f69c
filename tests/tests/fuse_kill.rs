//! The kill test on a cluster started by `ferrum dev up` (3 masters, 3 metanodes, 3 datanodes, 3 replicas):
//! while a checksummed writer writes and fsyncs files through the mount, `ferrum dev stop --kill` SIGKILLs
//! the datanode leading the most data partitions, then the metanode leading the most meta partitions, then
//! the master leader, one at a time. With each one down the writer must keep making progress; each is
//! started again with `ferrum dev start` and must rejoin (running in `ferrum dev ps`, alive or a voter in
//! the master's view, hosting its Raft groups, caught up with its peers). At the end every byte is read
//! back through a new mount and checked. The longest single operation the writer saw per kill is printed.
//!
//! With the master leader down, a new `ferrum mount` given every master's address (the dead one too) must
//! still get the volume from the new leader.

mod fuse_support;

use std::time::{Duration, Instant};

use ferrum_tests::harness::dev::{ferrum, T};
use ferrum_tests::harness::{wait_for, DevCluster, TestDir};
use fuse_support::writer::{Writer, FILE_SIZE};

const MIB: u64 = 1 << 20;
/// How long each instance stays down at least, so the cluster runs without it and it has to catch up.
const DOWN_AT_LEAST: Duration = Duration::from_secs(3);

/// A second mount of the volume, unmounted however the test ends.
struct ExtraMount(std::path::PathBuf);

impl Drop for ExtraMount {
    fn drop(&mut self) {
        fuse_support::force_unmount(&self.0);
    }
}

#[test]
fn verified_writes_ride_out_killing_a_datanode_a_metanode_and_the_master_leader() {
    let dir = TestDir::new();
    let c = DevCluster::up(dir.path());
    std::fs::write(c.mnt().join("before"), b"written before the kills").unwrap();
    let w = Writer::start(&c.mnt().join("kill"));
    wait_for("the writer to get going", T, || w.synced() >= 2 * MIB);

    let mut report = Vec::new();
    for role in ["datanode", "metanode", "master"] {
        let victim = if role == "master" { c.master_leader() } else { c.busiest_leader(role) };
        let synced = w.synced();
        let killed = Instant::now();
        c.stop(&victim, true);
        wait_for(&format!("the writer to go on with {victim} killed"), T, || {
            killed.elapsed() >= DOWN_AT_LEAST && w.synced() >= synced + 2 * MIB
        });
        if role == "master" {
            let mnt2 = dir.sub("mnt2");
            let _guard = ExtraMount(mnt2.clone());
            let m = mnt2.display().to_string();
            ferrum(&["mount", "--master", &c.master_addrs().join(","), "--volume", c.volume(), &m]);
            assert_eq!(std::fs::read(mnt2.join("before")).unwrap(), b"written before the kills");
            ferrum(&["umount", &m]);
        }
        let down_for = killed.elapsed();
        c.start(&victim);
        let rejoined_in = c.wait_rejoined(&victim);
        let (stall, ops) = w.stall(killed, Instant::now());
        let line = format!(
            "{victim:<8} ({role}): down {:.1} s, rejoined and caught up {:.1} s after start; the writer's longest \
             operation {:.2} s, {ops} operations meanwhile",
            down_for.as_secs_f64(),
            rejoined_in.as_secs_f64(),
            stall.as_secs_f64()
        );
        eprintln!("{line}");
        report.push(line);
    }
    let files = w.finish();
    assert_eq!(c.ps().running(), 9, "every instance runs again");

    // A new client: what it reads comes from the cluster, not from a cache of the one that wrote it.
    c.remount();
    let t = Instant::now();
    let bytes = Writer::verify(&c.mnt().join("kill"), files);
    assert_eq!(bytes, (files * FILE_SIZE) as u64);
    assert_eq!(std::fs::read(c.mnt().join("before")).unwrap(), b"written before the kills");
    eprintln!("verified {files} files, {} MiB, in {:?}:\n  {}", bytes / MIB, t.elapsed(), report.join("\n  "));
    c.down();
}
