//! A partition that loses its majority, under a live FUSE mount with `--op-timeout 5`: on a 3-replica
//! volume over 3 datanodes and 3 metanodes, two datanodes are stopped (SIGSTOP) for less than the op
//! timeout, and an fsync meanwhile waits for them and succeeds. Then two datanodes (later two
//! metanodes) are SIGKILLed. Every
//! operation that needs them must keep retrying for the op timeout, then fail with EIO — not earlier,
//! and not much later (both bounds are asserted, and each latency is printed: run with
//! `--no-capture`). When the nodes return, the same mount (never remounted) serves new writes again by
//! itself, and everything fsync acknowledged before the outage reads back intact, also through a new
//! mount.

mod fuse_support;

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use ferrum_tests::harness::{wait_for, TestDir};
use fuse_support::cluster::{Cluster, Instance};
use fuse_support::MountedFerrum;

const VOLUME: &str = "vol";
const OP_TIMEOUT: Duration = Duration::from_secs(5);
/// The client starts its clock when the kernel hands it the request, after ours started: it cannot
/// fail sooner than this (a little timer slack allowed).
const AT_LEAST: Duration = Duration::from_millis(OP_TIMEOUT.as_millis() as u64 - 100);
/// Generous for a debug build on a loaded 2-core machine, and for the kernel, which tries a failed
/// read once more on its own.
const AT_MOST: Duration = Duration::from_secs(25);
/// How long two datanodes are stopped (SIGSTOP) in the "majority returns in time" case: well inside
/// the op timeout, and shorter than the election timeout (2-4 s), so no election is needed.
const STOPPED_FOR: Duration = Duration::from_millis(1500);
/// For the cluster to elect leaders again and the client to notice.
const RECOVERY: Duration = Duration::from_secs(120);

fn mount(dir: &Path, name: &str, c: &Cluster) -> MountedFerrum {
    let args: Vec<OsString> =
        ["--master", &c.master_addrs(), "--volume", VOLUME, "--op-timeout", "5"].iter().map(OsString::from).collect();
    MountedFerrum::start(dir, name, &args, &dir.join(name))
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed)).collect()
}

/// Creates (or replaces) `path` with `bytes` and fsyncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn read(path: &Path) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    File::open(path)?.read_to_end(&mut out)?;
    Ok(out)
}

/// Runs `op`, which the cluster cannot serve: it must fail with EIO after the op timeout, within
/// [`AT_MOST`]. Returns how long it took.
fn fails_with_eio_in_time<T: std::fmt::Debug>(what: &str, op: impl FnOnce() -> io::Result<T>) -> Duration {
    let t = Instant::now();
    let r = op();
    let took = t.elapsed();
    match r {
        Err(e) if e.raw_os_error() == Some(libc::EIO) => {}
        other => panic!("{what}: expected EIO, got {other:?} after {took:?}"),
    }
    assert!(took >= AT_LEAST, "{what}: EIO after {took:?}, before the op timeout {OP_TIMEOUT:?}: it gave up early");
    assert!(took <= AT_MOST, "{what}: EIO only after {took:?} with an op timeout of {OP_TIMEOUT:?}");
    println!("majority loss, --op-timeout 5: {what}: EIO after {took:.2?}");
    took
}

fn signal_all_but_first(nodes: &mut [Instance], signal: libc::c_int) {
    for n in nodes.iter_mut().skip(1) {
        n.proc.signal(signal);
    }
}

fn kill_all_but_first(nodes: &mut [Instance]) {
    for n in nodes.iter_mut().skip(1) {
        n.proc.sigkill();
        n.metrics = None;
    }
}

fn restart_all_but_first(nodes: &mut [Instance]) {
    for n in nodes.iter_mut().skip(1) {
        n.proc.restart();
    }
}

/// Writes and fsyncs `path` until that succeeds: the cluster is serving again.
fn wait_writable(what: &str, path: &Path, bytes: &[u8]) -> Duration {
    let t = Instant::now();
    wait_for(what, RECOVERY, || write_synced(path, bytes));
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_majority_operations_fail_with_eio_at_the_op_timeout_and_resume_when_it_returns() {
    let dir = TestDir::new();
    let mut c = Cluster::start(&dir, 1).await;
    c.create_volume(VOLUME).await;
    tokio::task::block_in_place(|| {
        let mut m = mount(dir.path(), "mnt", &c);
        let acked = m.mnt.join("acked");
        let acked_bytes = pattern(1 << 20, 1);
        write_synced(&acked, &acked_bytes).unwrap();

        // A majority that comes back within the op timeout: the fsync waits for it and succeeds.
        let returning = m.mnt.join("returning");
        let returning_bytes = pattern(300 << 10, 4);
        signal_all_but_first(&mut c.datanodes, libc::SIGSTOP);
        let t = Instant::now();
        let writer = {
            let (path, bytes) = (returning.clone(), returning_bytes.clone());
            std::thread::spawn(move || write_synced(&path, &bytes))
        };
        // How long the majority stays away (the fault itself, not a wait for a condition).
        std::thread::sleep(STOPPED_FOR);
        signal_all_but_first(&mut c.datanodes, libc::SIGCONT);
        writer.join().unwrap().expect("write + fsync while the majority is away for less than the op timeout");
        let waited = t.elapsed();
        assert!(waited >= STOPPED_FOR && waited <= AT_MOST, "{waited:?}");
        println!(
            "majority loss: datanodes stopped for {STOPPED_FOR:?}: write + fsync waited and succeeded in {waited:.2?}"
        );

        // Data: two of the three replicas of every data partition are gone.
        kill_all_but_first(&mut c.datanodes);
        let write = fails_with_eio_in_time("write + fsync of a new file, 2 of 3 datanodes killed", || {
            let mut f = File::create(m.mnt.join("during"))?;
            f.write_all(&pattern(64 << 10, 2))?;
            f.sync_all()
        });
        // The kernel tries a failed read once more by itself: up to twice the op timeout.
        let read_took = fails_with_eio_in_time("read of an fsynced file, 2 of 3 datanodes killed", || read(&acked));
        m.proc.assert_running("after EIO with the datanodes down");
        restart_all_but_first(&mut c.datanodes);
        let after_data = m.mnt.join("after-data");
        let after_data_bytes = pattern(256 << 10, 3);
        let resumed =
            wait_writable("writes to succeed again once the datanodes are back", &after_data, &after_data_bytes);
        println!("majority loss: datanodes restarted; writes succeeded again after {resumed:.2?}");
        assert_eq!(read(&acked).unwrap(), acked_bytes, "what fsync acknowledged before the outage");

        // Metadata: two of the three replicas of every meta partition are gone. A file opened before
        // keeps its handle; its write-back needs the metanodes to record the new extent keys.
        let held = m.mnt.join("held");
        let mut f = OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&held).unwrap();
        f.write_all(b"first, fsynced").unwrap();
        f.sync_all().unwrap();
        kill_all_but_first(&mut c.metanodes);
        // The write is buffered; the kernel may first ask for the file's security.capability xattr,
        // which waits out the op timeout too (and the write goes on without it).
        let t = Instant::now();
        f.write_all(b"; second, never acknowledged").unwrap();
        let buffered = t.elapsed();
        assert!(buffered <= AT_MOST, "a buffered write took {buffered:?}");
        println!("majority loss, --op-timeout 5: buffered write, 2 of 3 metanodes killed: {buffered:.2?}");
        let flush = fails_with_eio_in_time("fsync of an open file, 2 of 3 metanodes killed", || f.sync_all());
        let create = fails_with_eio_in_time("create of a new file, 2 of 3 metanodes killed", || {
            File::create(m.mnt.join("meta-during"))
        });
        m.proc.assert_running("after EIO with the metanodes down");
        restart_all_but_first(&mut c.metanodes);
        let after_meta = m.mnt.join("after-meta");
        let resumed = wait_writable("creates to succeed again once the metanodes are back", &after_meta, b"after");
        println!("majority loss: metanodes restarted; creates succeeded again after {resumed:.2?}");
        drop(f);

        let check = |mnt: &Path| {
            assert_eq!(read(&mnt.join("acked")).unwrap(), acked_bytes);
            assert_eq!(read(&mnt.join("returning")).unwrap(), returning_bytes);
            assert_eq!(read(&mnt.join("after-data")).unwrap(), after_data_bytes);
            assert_eq!(read(&mnt.join("after-meta")).unwrap(), b"after");
            let held = read(&mnt.join("held")).unwrap();
            assert!(held.starts_with(b"first, fsynced"), "{:?}", String::from_utf8_lossy(&held));
        };
        check(&m.mnt);
        m.unmount();
        let mut m = mount(dir.path(), "remount", &c);
        check(&m.mnt);
        m.unmount();
        println!(
            "majority loss summary (--op-timeout 5): data write+fsync {write:.2?}, read {read_took:.2?}, meta fsync {flush:.2?}, \
             create {create:.2?}"
        );
    });
}
