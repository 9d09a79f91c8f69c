//! Starting and stopping the dev cluster's processes. Each runs in its own process group (so a Ctrl-C in
//! the shell that ran `ferrum dev up` does not reach it), with stdout and stderr appended to its log.

use std::fs::OpenOptions;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt;

pub fn spawn(argv: &[String], log: &Path, cwd: &Path) -> Result<u32, String> {
    let out = OpenOptions::new().create(true).append(true).open(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", argv[0]))?;
    // Not waited for: it outlives this command (reaped by init once we exit).
    Ok(child.id())
}

/// Whether `pid` is a live process (not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the field after the parenthesised command name.
        Ok(stat) => stat.rsplit_once(')').map(|(_, rest)| !rest.trim_start().starts_with('Z')).unwrap_or(false),
        Err(_) => false,
    }
}

pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: plain kill(2) on a pid we started; a stale pid at worst gets ESRCH.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// SIGTERM (or SIGKILL), then wait up to `grace` for the exit; SIGKILL after that. Returns whether the
/// process had to be killed.
pub fn stop(pid: u32, kill: bool, grace: Duration) -> bool {
    if !alive(pid) {
        return false;
    }
    signal(pid, if kill { libc::SIGKILL } else { libc::SIGTERM });
    if wait_gone(pid, grace) {
        return kill;
    }
    signal(pid, libc::SIGKILL);
    wait_gone(pid, Duration::from_secs(5));
    true
}

pub fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    !alive(pid)
}
