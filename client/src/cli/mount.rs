//! `ferrum mount`: check the mountpoint, connect to the volume, mount, serve until unmounted.

use std::process::ExitCode;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::signal::unix::{signal, SignalKind};

use super::logging::{self, Sink};
use super::{daemon, fail, CliError, MountArgs};
use crate::backend::memory::{MemData, MemMeta};
use crate::backend::rpc::{self, ClusterConfig};
use crate::backend::{DataBackend, MetaBackend};
use crate::fuse::{self, MountConfig, Mounted};
use crate::vfs::{Vfs, VfsConfig};

/// Capacity `statfs` reports for `--memory` volumes (the bytes live in this process's memory).
const MEMORY_CAPACITY: u64 = 64 << 30;

pub fn run(args: MountArgs) -> ExitCode {
    install_panic_hook();
    // Checked before anything starts, so the usual mistakes fail at once with a clear message.
    let mountpoint = match fuse::preflight(&args.mountpoint) {
        Ok(m) => m,
        Err(e) => return fail(&e),
    };
    if !args.foreground && !args.daemon_child {
        return daemon::spawn_and_wait().unwrap_or_else(|e| fail(&*e));
    }
    match serve(args, mountpoint) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&*e),
    }
}

/// A panic anywhere aborts: a mount with a dead half would hang its users; a dead mount fails fast.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!("{info}; aborting");
        default(info);
        std::process::abort();
    }));
}

fn secs(s: f64, what: &str) -> Result<Duration, CliError> {
    Duration::try_from_secs_f64(s).map_err(|e| format!("--{what} {s}: {e}").into())
}

fn serve(args: MountArgs, mountpoint: std::path::PathBuf) -> Result<(), CliError> {
    let sink = match (&args.log_file, args.daemon_child) {
        (Some(path), _) => Sink::File(path),
        (None, true) => Sink::Discard,
        (None, false) => Sink::Stderr,
    };
    logging::init(&args.log, sink)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("ferrum-mount").build()?;
    let op_timeout = secs(args.op_timeout, "op-timeout")?;
    if op_timeout.is_zero() {
        return Err("--op-timeout must be more than 0 seconds".into());
    }
    let cfg = VfsConfig {
        attr_ttl: secs(args.attr_timeout, "attr-timeout")?,
        entry_ttl: secs(args.entry_timeout, "entry-timeout")?,
        op_timeout,
        inline_max: args.inline_max as usize,
        ..VfsConfig::default()
    };
    let (label, mounted) = if args.memory {
        let vfs = Vfs::new(MemMeta::new(), MemData::new(MEMORY_CAPACITY), cfg);
        ("memory".to_string(), mount(&rt, vfs, &args, &mountpoint, "ferrum:memory")?)
    } else {
        let volume = args.volume.clone().expect("clap requires --volume without --memory");
        let cluster = ClusterConfig { op_timeout, ..ClusterConfig::default() };
        let (meta, data) = rt.block_on(rpc::connect(args.master.clone(), &volume, cluster))?;
        let vfs = Vfs::new(meta, data, cfg);
        (volume.clone(), mount(&rt, vfs, &args, &mountpoint, &format!("ferrum:{volume}"))?)
    };
    tracing::info!(volume = %label, mountpoint = %mountpoint.display(), "mounted");
    if args.daemon_child {
        daemon::report_ready()?;
    }
    wait_until_unmounted(&rt, mounted)?;
    tracing::info!(mountpoint = %mountpoint.display(), "unmounted");
    rt.shutdown_timeout(Duration::from_secs(5));
    Ok(())
}

fn mount<M: MetaBackend, D: DataBackend>(
    rt: &Runtime,
    vfs: Vfs<M, D>,
    args: &MountArgs,
    mountpoint: &std::path::Path,
    fsname: &str,
) -> Result<Mounted, CliError> {
    let mut cfg = MountConfig::new(fsname);
    cfg.threads = args.threads;
    cfg.read_only = args.read_only;
    fuse::mount(vfs, rt.handle().clone(), mountpoint, &cfg)
        .map_err(|e| format!("cannot mount at {}: {e}", mountpoint.display()).into())
}

/// Serves until the mount goes away. SIGTERM/SIGINT unmount it (lazily if files are still open, so the
/// process can finish once they close).
fn wait_until_unmounted(rt: &Runtime, mounted: Mounted) -> Result<(), CliError> {
    let mountpoint = mounted.mountpoint().to_path_buf();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name("ferrum-session".into()).spawn(move || {
        let _ = done_tx.send(mounted.join());
    })?;
    rt.block_on(async move {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut done = done_rx;
        loop {
            tokio::select! {
                r = &mut done => return r.map_err(|_| "session thread vanished".into()).and_then(|r| r.map_err(Into::into)),
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            tracing::info!("signal received, unmounting");
            if let Err(e) = fuse::unmount(&mountpoint, false) {
                tracing::warn!(error = %e, "unmount failed, detaching lazily");
                if let Err(e) = fuse::unmount(&mountpoint, true) {
                    tracing::error!(error = %e, "lazy unmount failed");
                }
            }
        }
    })
}
