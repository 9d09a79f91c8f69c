//! Many instances share a host, each with its own ports and data dir. A misconfigured second instance must fail
//! fast with one clear line naming what clashed, and must never disturb the instance it clashed with.
//! Runs the real `ferrum-kvnode` binary.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use ferrum_tests::harness::process::ProcBuilder;
use ferrum_tests::harness::wait::is_port_open;
use ferrum_tests::harness::{binary, free_addr, http, Proc, TestDir};

/// Generous: a debug build on a loaded CI box.
const STARTUP: Duration = Duration::from_secs(10);
/// A startup error must be reported at once, not after retries.
const FAIL_FAST: Duration = Duration::from_secs(5);
const SHUTDOWN: Duration = Duration::from_secs(10);
const ERROR_PREFIX: &str = "ferrum-kvnode: error: ";

fn kvnode(dir: &TestDir, name: &str, node_id: u64, data_dir: &Path, listen: SocketAddr) -> ProcBuilder {
    Proc::builder(name, binary("ferrum-kvnode"), dir.path())
        .arg("--node-id")
        .arg(node_id.to_string())
        .arg("--listen")
        .arg(listen.to_string())
        .arg("--data-dir")
        .arg(data_dir)
}

/// `p` must exit with a non-zero code within [`FAIL_FAST`], its last output line being the single error line,
/// which names `needle`.
#[track_caller]
fn assert_startup_error(p: &mut Proc, needle: &str) {
    let start = Instant::now();
    let Some(status) = p.wait_exit(FAIL_FAST) else {
        panic!("{} still running {FAIL_FAST:?} after start; expected a startup error naming {needle:?}", p.name());
    };
    let log = p.run_log();
    // A signal (e.g. SIGABRT from a panic) has no code: that is a crash, not a reported error.
    assert!(
        status.code().is_some_and(|c| c != 0),
        "{} must exit with a non-zero code, got {status}; output:\n{log}",
        p.name()
    );
    let last = p.last_line().unwrap_or_else(|| panic!("{} exited with {status} and printed nothing", p.name()));
    assert!(last.starts_with(ERROR_PREFIX), "last line must be `{ERROR_PREFIX}...`, got {last:?}; output:\n{log}");
    assert!(last.contains(needle), "error line must name {needle:?}, got {last:?}");
    let error_lines = log.lines().filter(|l| l.starts_with(ERROR_PREFIX)).count();
    assert_eq!(error_lines, 1, "exactly one error line expected; output:\n{log}");
    assert!(!log.contains("panicked"), "a startup error must not be a panic; output:\n{log}");
    eprintln!("{} failed as expected in {:?}: {last}", p.name(), start.elapsed());
}

#[track_caller]
fn assert_serving(p: &mut Proc, addr: SocketAddr, context: &str) {
    p.assert_running(context);
    assert!(is_port_open(addr), "{} no longer accepts connections on {addr} after {context}", p.name());
}

#[test]
fn data_dir_clash_fails_fast_and_leaves_the_owner_alone() {
    let dir = TestDir::new();
    let data = dir.sub("data");
    let data_str = data.display().to_string();
    let listen_a = free_addr();
    let mut a = kvnode(&dir, "a", 1, &data, listen_a).spawn();
    a.wait_port_open(listen_a, STARTUP);

    // Same node id on purpose: the realistic mistake is the same config started twice, so only the lock can object.
    let mut b = kvnode(&dir, "b", 1, &data, free_addr()).spawn();
    assert_startup_error(&mut b, &data_str);
    assert_serving(&mut a, listen_a, "b's failed start");

    // b's failure must not have released a's claim (say, by deleting a lock file on its way out).
    let mut c = kvnode(&dir, "c", 1, &data, free_addr()).spawn();
    assert_startup_error(&mut c, &data_str);
    assert_serving(&mut a, listen_a, "c's failed start");
}

#[test]
fn listen_port_clash_fails_fast_and_names_the_port() {
    let dir = TestDir::new();
    let port = free_addr();
    let mut a = kvnode(&dir, "a", 1, &dir.sub("data-a"), port).spawn();
    a.wait_port_open(port, STARTUP);

    let mut b = kvnode(&dir, "b", 2, &dir.sub("data-b"), port).spawn();
    assert_startup_error(&mut b, &port.to_string());
    assert_serving(&mut a, port, "b's failed start");
}

#[test]
fn metrics_port_clash_fails_fast_and_names_the_port() {
    let dir = TestDir::new();
    let (listen_a, metrics) = (free_addr(), free_addr());
    let mut a =
        kvnode(&dir, "a", 1, &dir.sub("data-a"), listen_a).arg("--metrics-listen").arg(metrics.to_string()).spawn();
    a.wait_port_open(listen_a, STARTUP);
    a.wait_port_open(metrics, STARTUP);

    let listen_b = free_addr();
    let mut b =
        kvnode(&dir, "b", 2, &dir.sub("data-b"), listen_b).arg("--metrics-listen").arg(metrics.to_string()).spawn();
    assert_startup_error(&mut b, &metrics.to_string());
    assert!(!is_port_open(listen_b), "b exited, yet something still listens on its {listen_b}");
    assert_serving(&mut a, listen_a, "b's failed start");
    assert_serving(&mut a, metrics, "b's failed start");
}

#[test]
fn unknown_config_key_is_rejected_by_name() {
    let dir = TestDir::new();
    let config = dir.path().join("kvnode.toml");
    std::fs::write(&config, "[instance]\nbogus = 1\n").unwrap();
    let listen = free_addr();
    let mut p = kvnode(&dir, "p", 1, &dir.sub("data"), listen).arg("--config").arg(&config).spawn();
    assert_startup_error(&mut p, "bogus");
}

/// `signal` → exit code 0 within [`SHUTDOWN`]; then a new process takes over the same data dir and port at once,
/// and really owns the dir (a third instance on it is refused).
fn graceful_shutdown_releases_dir_and_port(signal: libc::c_int, signal_name: &str) {
    let dir = TestDir::new();
    let data = dir.sub("data");
    let listen = free_addr();
    let mut a = kvnode(&dir, "a", 1, &data, listen).spawn();
    a.wait_port_open(listen, STARTUP);

    let start = Instant::now();
    a.signal(signal);
    let status = a.wait_exit(SHUTDOWN).unwrap_or_else(|| panic!("still running {SHUTDOWN:?} after {signal_name}"));
    assert_eq!(status.code(), Some(0), "{signal_name} must give a clean exit, got {status}; output:\n{}", a.run_log());
    eprintln!("exited {:?} after {signal_name}", start.elapsed());

    // No sleep: the dir lock and the port must be free the moment the old process is gone.
    a.restart();
    a.wait_port_open(listen, STARTUP);
    let mut probe = kvnode(&dir, "probe", 1, &data, free_addr()).spawn();
    assert_startup_error(&mut probe, &data.display().to_string());
    assert_serving(&mut a, listen, "the probe's failed start");

    a.sigterm();
    let status = a.wait_exit(SHUTDOWN).unwrap_or_else(|| panic!("restarted instance still running after SIGTERM"));
    assert_eq!(status.code(), Some(0), "restarted instance: {status}");
}

#[test]
fn sigterm_exits_cleanly_and_frees_the_data_dir() {
    graceful_shutdown_releases_dir_and_port(libc::SIGTERM, "SIGTERM");
}

#[test]
fn sigint_exits_cleanly_and_frees_the_data_dir() {
    graceful_shutdown_releases_dir_and_port(libc::SIGINT, "SIGINT");
}

/// Labels of every sample line (`name{k="v",...} value`); lines without labels give an empty list.
fn series_labels(body: &str) -> Vec<(&str, Vec<(String, String)>)> {
    body.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| {
            let mut labels = Vec::new();
            if let Some(open) = line.find('{') {
                let mut rest = line[open + 1..].chars().peekable();
                loop {
                    let key: String = rest
                        .by_ref()
                        .take_while(|&c| c != '=')
                        .collect::<String>()
                        .trim_start_matches(',')
                        .trim()
                        .to_string();
                    if key.is_empty() || key.starts_with('}') || rest.next() != Some('"') {
                        break;
                    }
                    let mut value = String::new();
                    while let Some(c) = rest.next() {
                        match c {
                            '\\' => value.extend(rest.next()),
                            '"' => break,
                            c => value.push(c),
                        }
                    }
                    labels.push((key, value));
                }
            }
            (line, labels)
        })
        .collect()
}

#[test]
fn metrics_series_carry_role_and_instance_labels() {
    let dir = TestDir::new();
    // Two instances on one host: their series must be told apart by the `instance` label.
    let mut nodes = Vec::new();
    for (id, name) in [(1, "a"), (2, "b")] {
        let (listen, metrics) = (free_addr(), free_addr());
        let mut p = kvnode(&dir, name, id, &dir.sub(&format!("data-{name}")), listen)
            .arg("--metrics-listen")
            .arg(metrics.to_string())
            .spawn();
        p.wait_port_open(metrics, STARTUP);
        nodes.push((p, metrics));
    }

    let mut instances = Vec::new();
    for (p, metrics) in &nodes {
        let resp = http::get(*metrics, "/metrics", Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("GET http://{metrics}/metrics from {}: {e}", p.name()));
        let body = resp.text();
        assert_eq!(resp.status, 200, "GET /metrics from {}: {body}", p.name());
        let series = series_labels(&body);
        assert!(!series.is_empty(), "{} exports no series:\n{body}", p.name());
        let (mut roles, mut insts) = (BTreeSet::new(), BTreeSet::new());
        for (line, labels) in &series {
            let get = |k: &str| labels.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
            let (Some(role), Some(inst)) = (get("role"), get("instance")) else {
                panic!("{}: series without role= and instance= labels: {line:?}", p.name());
            };
            assert!(!role.is_empty() && !inst.is_empty(), "{}: empty role/instance label: {line:?}", p.name());
            roles.insert(role);
            insts.insert(inst);
        }
        assert_eq!(roles.len(), 1, "{}: one role per process, got {roles:?}", p.name());
        assert_eq!(insts.len(), 1, "{}: one instance label per process, got {insts:?}", p.name());
        eprintln!("{}: {} series, role={roles:?} instance={insts:?}", p.name(), series.len());
        instances.push(insts.into_iter().next().unwrap());
    }
    assert_ne!(instances[0], instances[1], "two instances on one host export the same instance label");
}
