//! A child server process owned by a test.
//!
//! Why it looks like this:
//! - stdout and stderr go to one append-only file `<dir>/<name>.log`, shared by restarts (each run starts with a
//!   `=== [harness] ...` header line), so a post-mortem reads one file per instance in order;
//! - `Drop` SIGKILLs and reaps the child, so a failed assertion cannot leave a server holding ports or data dirs,
//!   and no zombie survives; and when dropped during a panic it prints the tail of the log, because a failed
//!   multi-process test is undebuggable without the servers' side of the story;
//! - on Linux the child also gets `PR_SET_PDEATHSIG = SIGKILL`, so it dies even if the test process is killed
//!   outright (CI timeout, ^C) and never runs `Drop`. The kernel ties that signal to the *thread* that forked, so
//!   all children are forked from one long-lived harness thread, not from the (short-lived) test threads;
//! - each child leads its own process group and SIGKILL goes to the whole group, so helpers it forked die too.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::LazyLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::wait::wait_for;

/// How many log lines a `Proc` prints when dropped during a panic.
pub const TAIL_LINES_ON_PANIC: usize = 80;

/// What to run; kept so that [`Proc::restart`] runs exactly the same command again.
#[derive(Clone, Debug)]
pub struct ProcBuilder {
    name: String,
    program: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    dir: PathBuf,
}

impl ProcBuilder {
    #[must_use]
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    #[must_use]
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Set an environment variable for the child (on top of the inherited environment).
    #[must_use]
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs.push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Start the process. Panics if it cannot be spawned (missing binary, bad log dir).
    pub fn spawn(self) -> Proc {
        let log_path = self.dir.join(format!("{}.log", self.name));
        let mut proc =
            Proc { spec: self, log_path, child: None, status: None, run_offset: 0, runs: 0, killed_by_drop: false };
        proc.start();
        proc
    }
}

/// A running (or exited) child process; killed and reaped on drop.
pub struct Proc {
    spec: ProcBuilder,
    log_path: PathBuf,
    /// `None` only transiently, before the first start.
    child: Option<Child>,
    /// Exit status once reaped; after that the pid may belong to someone else and is never signalled again.
    status: Option<ExitStatus>,
    /// Log length when the current run started, so `run_log` shows only the current run.
    run_offset: u64,
    runs: u32,
    killed_by_drop: bool,
}

impl Proc {
    /// A process named `name` (its log is `<dir>/<name>.log`; its working dir is `dir`, so stray files and core
    /// dumps land next to the log, never in the source tree).
    pub fn builder(name: &str, program: impl Into<PathBuf>, dir: impl Into<PathBuf>) -> ProcBuilder {
        ProcBuilder {
            name: name.to_string(),
            program: program.into(),
            args: Vec::new(),
            envs: Vec::new(),
            dir: dir.into(),
        }
    }

    /// Shorthand for `Proc::builder(name, program, dir).args(args).spawn()`.
    pub fn spawn<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(
        name: &str,
        program: impl Into<PathBuf>,
        args: I,
        dir: impl Into<PathBuf>,
    ) -> Proc {
        Proc::builder(name, program, dir).args(args).spawn()
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Pid of the current run.
    pub fn pid(&self) -> u32 {
        self.child().id()
    }

    /// Send `signal` (e.g. `libc::SIGHUP`) unless the process has already been reaped (its pid may be reused).
    pub fn signal(&mut self, signal: libc::c_int) {
        if self.try_status().is_some() {
            return;
        }
        let pid = self.pid() as libc::pid_t;
        // SAFETY: plain syscall; the pid is our unreaped child, so it cannot have been reused.
        if unsafe { libc::kill(pid, signal) } != 0 {
            panic!("kill({pid}, {signal}) for {}: {}", self.name(), std::io::Error::last_os_error());
        }
    }

    /// Ask for a graceful shutdown; pair with [`Proc::wait_exit`].
    pub fn sigterm(&mut self) {
        self.signal(libc::SIGTERM);
    }

    pub fn sigint(&mut self) {
        self.signal(libc::SIGINT);
    }

    /// Crash it: SIGKILL, then reap. Returns the exit status (the earlier one if it had already exited).
    pub fn sigkill(&mut self) -> ExitStatus {
        if let Some(status) = self.try_status() {
            return status;
        }
        let child = self.child.as_mut().expect("started");
        kill_group(child);
        let status = child.wait().unwrap_or_else(|e| panic!("wait for {}: {e}", self.spec.name));
        self.status = Some(status);
        status
    }

    /// Exit status if the process has exited (reaping it), without blocking.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            let child = self.child.as_mut().expect("started");
            self.status = child.try_wait().unwrap_or_else(|e| panic!("try_wait for {}: {e}", self.spec.name));
        }
        self.status
    }

    pub fn is_running(&mut self) -> bool {
        self.try_status().is_none()
    }

    /// Wait up to `timeout` for the process to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            // Short: shutdown latency is often what is being measured.
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Run the same command again (same args, env and log file). Panics if it is still running: stop it first
    /// with [`Proc::sigterm`] + [`Proc::wait_exit`] or with [`Proc::sigkill`].
    pub fn restart(&mut self) {
        if self.is_running() {
            panic!("restart() of {} (pid {}) while it is still running; stop it first", self.name(), self.pid());
        }
        self.start();
    }

    /// The whole log, all runs.
    pub fn log_text(&self) -> String {
        read_from(&self.log_path, 0)
    }

    /// The log of the current run only (after its `=== [harness]` header).
    pub fn run_log(&self) -> String {
        read_from(&self.log_path, self.run_offset)
    }

    /// Last non-empty line the current run wrote (stdout and stderr interleaved, as written).
    pub fn last_line(&self) -> Option<String> {
        self.run_log().lines().rev().find(|l| !l.trim().is_empty()).map(str::to_string)
    }

    /// Wait until `addr` accepts TCP connections. Fails at once, with the log, if the process exits meanwhile.
    pub fn wait_port_open(&mut self, addr: SocketAddr, timeout: Duration) {
        let what = format!("{} to accept connections on {addr}", self.name());
        wait_for(&what, timeout, || {
            self.assert_running(&what);
            TcpStream::connect_timeout(&addr, Duration::from_millis(500)).map(drop)
        });
    }

    /// Wait until the current run's log contains `needle`. Fails at once if the process exits without writing it.
    pub fn wait_log_contains(&mut self, needle: &str, timeout: Duration) {
        let what = format!("{} to log {needle:?}", self.name());
        wait_for(&what, timeout, || {
            if self.run_log().contains(needle) {
                return true;
            }
            self.assert_running(&what);
            false
        });
    }

    /// Panic (showing the log tail) if the process has exited.
    #[track_caller]
    pub fn assert_running(&mut self, context: &str) {
        if let Some(status) = self.try_status() {
            panic!(
                "{} (pid {}) exited with {status} while waiting for {context}; log tail:\n{}",
                self.name(),
                self.pid(),
                self.tail(20)
            );
        }
    }

    /// The last `n` lines of the whole log.
    pub fn tail(&self, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    fn child(&self) -> &Child {
        self.child.as_ref().expect("started")
    }

    fn start(&mut self) {
        let spec = &self.spec;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap_or_else(|e| panic!("cannot open log {}: {e}", self.log_path.display()));
        self.runs += 1;
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        writeln!(
            log,
            "=== [harness] run #{} of {} at unix {:.3}: {}",
            self.runs,
            spec.name,
            since_epoch.as_secs_f64(),
            command_line(spec)
        )
        .and_then(|()| log.flush())
        .unwrap_or_else(|e| panic!("cannot write log {}: {e}", self.log_path.display()));
        self.run_offset = log.seek(SeekFrom::End(0)).expect("seek log");

        let mut cmd = Command::new(&spec.program);
        cmd.args(&spec.args).current_dir(&spec.dir).stdin(Stdio::null());
        // A panicking server should say where; the spec's own env (applied after) can override this.
        if std::env::var_os("RUST_BACKTRACE").is_none() {
            cmd.env("RUST_BACKTRACE", "1");
        }
        cmd.envs(spec.envs.iter().map(|(k, v)| (k, v)));
        // Both streams share one open file description in append mode: lines interleave in write order.
        let err = log.try_clone().expect("dup log fd");
        cmd.stdout(Stdio::from(log)).stderr(Stdio::from(err));
        die_with_parent(&mut cmd);

        let child = on_spawner_thread(move || cmd.spawn()).unwrap_or_else(|e| {
            panic!("cannot spawn {} ({}): {e}", spec.name, spec.program.display());
        });
        eprintln!("[harness] started {} pid {}, log {}", spec.name, child.id(), self.log_path.display());
        self.child = Some(child);
        self.status = None;
    }
}

impl Drop for Proc {
    // Never panics: a panic while already unwinding would abort the whole test binary.
    fn drop(&mut self) {
        let Some(child) = self.child.as_mut() else { return };
        if self.status.is_none() {
            self.status = match child.try_wait() {
                Ok(Some(status)) => Some(status),
                _ => {
                    self.killed_by_drop = true;
                    kill_group(child);
                    child.wait().ok()
                }
            };
        }
        if std::thread::panicking() {
            let state = match (self.killed_by_drop, self.status) {
                (true, _) => "was still running, killed".to_string(),
                (false, Some(status)) => format!("had exited with {status}"),
                (false, None) => "is in an unknown state".to_string(),
            };
            let pid = child.id();
            eprintln!(
                "----- [harness] {} (pid {pid}) {state}; last {TAIL_LINES_ON_PANIC} lines of {} -----\n{}\n\
                 ----- [harness] end of {} -----",
                self.spec.name,
                self.log_path.display(),
                self.tail(TAIL_LINES_ON_PANIC),
                self.spec.name,
            );
        }
    }
}

fn read_from(path: &Path, offset: u64) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.seek(SeekFrom::Start(offset)).and_then(|_| f.read_to_end(&mut bytes));
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `program arg...`, quoting args with spaces or quotes, for the log header.
fn command_line(spec: &ProcBuilder) -> String {
    let mut line = spec.program.display().to_string();
    for arg in &spec.args {
        let arg = arg.to_string_lossy();
        if arg.is_empty() || arg.contains([' ', '"', '\'']) {
            let _ = write!(line, " {arg:?}");
        } else {
            let _ = write!(line, " {arg}");
        }
    }
    line
}

/// SIGKILL the child's process group (it leads one, see `die_with_parent`), and the child itself in any case.
fn kill_group(child: &mut Child) {
    #[cfg(unix)]
    // SAFETY: plain syscall; the caller holds an unreaped child, so its pid (= pgid) cannot have been reused.
    unsafe {
        libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
    }
    let _ = child.kill();
}

#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // Own process group: `kill_group` reaches grandchildren; a terminal's ^C reaches the test, which then dies
    // and takes the children with it through PDEATHSIG.
    cmd.process_group(0);
    // SAFETY: only async-signal-safe syscalls between fork and exec, no allocation.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect: then we were already reparented.
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(all(unix, not(target_os = "linux")))]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
}

type Job = Box<dyn FnOnce() + Send>;

/// The one thread that forks every child (see the module doc: PDEATHSIG follows the forking thread).
static SPAWNER: LazyLock<mpsc::Sender<Job>> = LazyLock::new(|| {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("ferrum-harness-spawner".into())
        .spawn(move || rx.into_iter().for_each(|job| job()))
        .expect("start the harness spawner thread");
    tx
});

fn on_spawner_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::sync_channel(1);
    SPAWNER
        .send(Box::new(move || {
            let _ = tx.send(f());
        }))
        .expect("harness spawner thread is gone");
    rx.recv().expect("harness spawner thread dropped a job")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::TestDir;

    fn sh(dir: &TestDir, name: &str, script: &str) -> Proc {
        Proc::spawn(name, "/bin/sh", ["-c", script], dir.path())
    }

    #[test]
    fn logs_both_streams_and_reports_exit() {
        let dir = TestDir::new();
        let mut p = sh(&dir, "echo", "echo out; echo err >&2; exit 3");
        let status = p.wait_exit(Duration::from_secs(5)).expect("exits");
        assert_eq!(status.code(), Some(3));
        assert!(!p.is_running());
        assert_eq!(p.run_log(), "out\nerr\n");
        assert_eq!(p.last_line().as_deref(), Some("err"));
        assert!(p.log_text().starts_with("=== [harness] run #1 of echo"));
        assert!(dir.path().join("echo.log").is_file());
    }

    #[test]
    fn sigterm_then_restart_appends_to_the_same_log() {
        let dir = TestDir::new();
        let mut p = sh(&dir, "sleeper", "trap 'echo bye; exit 0' TERM; echo up; while :; do sleep 0.05; done");
        p.wait_log_contains("up", Duration::from_secs(5));
        p.sigterm();
        assert_eq!(p.wait_exit(Duration::from_secs(5)).and_then(|s| s.code()), Some(0));
        let first_pid = p.pid();
        p.restart();
        assert_ne!(p.pid(), first_pid);
        p.wait_log_contains("up", Duration::from_secs(5));
        assert_eq!(p.run_log(), "up\n");
        assert!(p.log_text().contains("bye\n=== [harness] run #2 of sleeper"));
        assert!(!p.sigkill().success());
    }

    #[test]
    fn drop_kills_and_reaps() {
        let dir = TestDir::new();
        let p = sh(&dir, "forever", "exec sleep 1000");
        let pid = p.pid() as libc::pid_t;
        drop(p);
        // SAFETY: signal 0 only checks existence. The pid was reaped, so ESRCH (unless reused, vanishingly unlikely).
        assert_eq!(unsafe { libc::kill(pid, 0) }, -1);
    }

    #[test]
    fn wait_port_open_fails_fast_when_the_process_dies() {
        let dir = TestDir::new();
        let mut p = sh(&dir, "early", "echo 'early: error: nope' >&2; exit 7");
        let start = Instant::now();
        let addr = crate::harness::free_addr();
        // Caught here rather than `should_panic`: unwinding through `dir` would keep it on disk.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            p.wait_port_open(addr, Duration::from_secs(30));
        }));
        assert!(start.elapsed() < Duration::from_secs(5));
        let panic = r.expect_err("must fail");
        let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("exited with exit status: 7 while waiting for early to accept connections"), "{msg}");
        assert!(msg.contains("early: error: nope"), "the message shows the log tail: {msg}");
    }
}
