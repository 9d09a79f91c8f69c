//! Background mode without forking a threaded process: `ferrum mount` starts itself again as the
//! server (`--daemon-child`, in its own session so it outlives the terminal) and waits until that
//! child reports the mount usable on its stdout, or fails and says why on its stderr. So the command
//! returns exactly when the mount works, and its exit code says whether it does.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};

use super::CliError;

/// The line a background server prints once its mount is usable.
pub const READY: &str = "ferrum-mount-ready";

/// Runs the server in the background and waits for its verdict.
pub fn spawn_and_wait() -> Result<ExitCode, CliError> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the ferrum executable: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.args(std::env::args_os().skip(1)).arg("--daemon-child");
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: setsid is async-signal-safe and touches no memory of this process.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot start the mount process: {e}"))?;
    let stdout = child.stdout.take().expect("piped");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).map_err(|e| format!("reading from the mount process: {e}"))?;
    if line.trim() == READY {
        return Ok(ExitCode::SUCCESS);
    }
    // It exited (or closed stdout) without the mount: pass its error on.
    let mut err = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut err);
    }
    let status = child.wait().map_err(|e| format!("waiting for the mount process: {e}"))?;
    let err = err.trim();
    if err.is_empty() {
        eprintln!("ferrum: error: the mount process exited with {status} before the mount was usable");
    } else {
        eprintln!("{err}");
    }
    Ok(ExitCode::FAILURE)
}

/// In the server, once mounted: tell the waiting parent, then point stdout/stderr at `/dev/null`
/// (the parent and its pipes are about to go away; a later write must not fail).
pub fn report_ready() -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{READY}")?;
    out.flush()?;
    drop(out);
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&null);
    // SAFETY: dup2 onto the standard descriptors with a valid open descriptor.
    unsafe {
        libc::dup2(fd, 1);
        libc::dup2(fd, 2);
    }
    Ok(())
}
