//! `ferrum mount` and `ferrum umount`: argument types (flattened into the `ferrum` binary's
//! subcommands) and what they run. Errors reach the user as one line, `ferrum: error: ...`.

mod daemon;
mod logging;
mod mount;
mod umount;

use std::path::PathBuf;
use std::process::ExitCode;

pub use mount::run as run_mount;
pub use umount::run as run_umount;

/// The error of a CLI command, printed as one line.
pub type CliError = Box<dyn std::error::Error + Send + Sync>;

#[derive(clap::Args, Debug, Clone)]
pub struct MountArgs {
    /// RPC address(es) of the masters, HOST:PORT, comma separated; any reachable one will do.
    #[arg(long, value_delimiter = ',', required_unless_present = "memory")]
    pub master: Vec<String>,
    /// The volume to mount.
    #[arg(long, required_unless_present = "memory")]
    pub volume: Option<String>,
    /// Serve from this process until unmounted (default: return as soon as the mount is usable and
    /// serve it from a background process).
    #[arg(long, short = 'f')]
    pub foreground: bool,
    /// [testing] Mount an empty volume held in this process's memory instead of a cluster's volume.
    /// Nothing survives the unmount.
    #[arg(long, conflicts_with_all = ["master", "volume"])]
    pub memory: bool,
    /// Threads reading FUSE requests (the requests themselves run concurrently on async tasks).
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    /// Seconds the kernel (and this client) may cache attributes.
    #[arg(long, default_value_t = 1.0)]
    pub attr_timeout: f64,
    /// Seconds the kernel may cache name lookups, and this client its statahead listings of directories.
    #[arg(long, default_value_t = 1.0)]
    pub entry_timeout: f64,
    /// Seconds every operation on the cluster keeps trying when it cannot be served (a partition
    /// without a leader or without a live majority, nodes unreachable): it retries other replicas,
    /// new leaders and the majority's return for this long, then fails with EIO. Buffered writes
    /// are retried for as long before they are dropped; that failure is reported by the file's
    /// next write, fsync or close. What fsync acknowledged is never lost.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub op_timeout: f64,
    /// Files up to this many bytes keep their data inline, with the inode on the metanode (replicated
    /// like all metadata): writing, reading and deleting them touches no datanode. Past it a file moves
    /// to extents. 0 turns inline data off; at most 65536.
    #[arg(long, value_name = "BYTES", default_value_t = crate::vfs::DEFAULT_INLINE_MAX as u32,
          value_parser = clap::value_parser!(u32).range(0..=65536))]
    pub inline_max: u32,
    /// Mount read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Log level or filter (`RUST_LOG` syntax; `RUST_LOG` itself overrides).
    #[arg(long, default_value = "info")]
    pub log: String,
    /// Log file of the background process (default: its log is discarded; `--foreground` logs to
    /// stderr).
    #[arg(long)]
    pub log_file: Option<PathBuf>,
    /// Internal: this process is the background server that `ferrum mount` started.
    #[arg(long, hide = true)]
    pub daemon_child: bool,
    /// Where to mount (an existing directory).
    pub mountpoint: PathBuf,
}

#[derive(clap::Args, Debug, Clone)]
pub struct UmountArgs {
    /// Detach now even if files are open; the mount goes away once they are closed.
    #[arg(long, short = 'l')]
    pub lazy: bool,
    pub mountpoint: PathBuf,
}

/// Prints `err` as the one error line and returns the failure exit code.
pub fn fail(err: &(dyn std::error::Error + 'static)) -> ExitCode {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    eprintln!("ferrum: error: {}", line.split_whitespace().collect::<Vec<_>>().join(" "));
    ExitCode::FAILURE
}
