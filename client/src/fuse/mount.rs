//! Mounting and unmounting, and the checks that turn the usual setup mistakes into one clear error.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use fuser::{BackgroundSession, Config, MountOption, Session, SessionACL};
use tokio::runtime::Handle;

use super::adapter::FuseFs;
use crate::backend::{DataBackend, MetaBackend};
use crate::vfs::Vfs;

#[derive(Clone, Debug)]
pub struct MountConfig {
    /// Shown as the source in `mount` and `df` (`ferrum:<volume>`).
    pub fsname: String,
    /// FUSE threads reading requests from the kernel; each runs a request until it has to wait, then
    /// leaves it to tokio (see `FuseFs::spawn`).
    pub threads: usize,
    /// Let every user use the mount (`allow_other`); the kernel still checks permissions
    /// (`default_permissions`). Only root may ask for it without `user_allow_other` in fuse.conf.
    pub allow_other: bool,
    pub read_only: bool,
}

impl MountConfig {
    pub fn new(fsname: impl Into<String>) -> MountConfig {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        MountConfig { fsname: fsname.into(), threads: 4, allow_other: root, read_only: false }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("mountpoint {0} does not exist")]
    NoMountpoint(PathBuf),
    #[error("mountpoint {0} is not a directory")]
    NotADirectory(PathBuf),
    #[error(
        "mountpoint {0} is a dead FUSE mount (transport endpoint is not connected); run `ferrum umount {0}` first"
    )]
    StaleMount(PathBuf),
    #[error("cannot use mountpoint {path}: {source}")]
    Mountpoint { path: PathBuf, source: io::Error },
    #[error("/dev/fuse is missing: load the fuse kernel module (`modprobe fuse`) or give the container the device")]
    NoDevFuse,
    #[error("fusermount3 not found in PATH: install fuse3 (e.g. `apt-get install fuse3`); non-root mounts need it")]
    NoFusermount,
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn in_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
}

/// Checks that `mountpoint` can be mounted on, before anything else is started; returns it absolute.
pub fn preflight(mountpoint: &Path) -> Result<PathBuf, PreflightError> {
    let meta = match std::fs::metadata(mountpoint) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(PreflightError::NoMountpoint(mountpoint.into())),
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            return Err(PreflightError::StaleMount(mountpoint.into()))
        }
        Err(source) => return Err(PreflightError::Mountpoint { path: mountpoint.into(), source }),
    };
    if !meta.is_dir() {
        return Err(PreflightError::NotADirectory(mountpoint.into()));
    }
    if !Path::new("/dev/fuse").exists() {
        return Err(PreflightError::NoDevFuse);
    }
    // Root mounts with mount(2) directly; everyone else goes through the setuid helper.
    if !is_root() && !in_path("fusermount3") {
        return Err(PreflightError::NoFusermount);
    }
    mountpoint.canonicalize().map_err(|source| PreflightError::Mountpoint { path: mountpoint.into(), source })
}

/// A live mount; the FUSE threads serve it until it is unmounted.
pub struct Mounted {
    session: BackgroundSession,
    mountpoint: PathBuf,
}

impl Mounted {
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Waits until the mount goes away (`ferrum umount`, `fusermount3 -u`, `umount`).
    pub fn join(self) -> io::Result<()> {
        self.session.join()
    }

    /// Unmounts and waits for the FUSE threads to finish.
    pub fn unmount(self) -> io::Result<()> {
        self.session.umount_and_join()
    }

    pub fn is_finished(&self) -> bool {
        self.session.guard.is_finished()
    }
}

/// Mounts `vfs` at `mountpoint`, serving requests on `rt`. Returns once the kernel has completed the
/// FUSE handshake: the mount is usable.
pub fn mount<M: MetaBackend, D: DataBackend>(
    vfs: Vfs<M, D>,
    rt: Handle,
    mountpoint: &Path,
    cfg: &MountConfig,
) -> io::Result<Mounted> {
    let mut options = vec![
        MountOption::FSName(cfg.fsname.clone()),
        MountOption::Subtype("ferrum".into()),
        // The kernel checks permissions against the stored mode, owner and group.
        MountOption::DefaultPermissions,
    ];
    if cfg.read_only {
        options.push(MountOption::RO);
    }
    let mut config = Config::default();
    config.mount_options = options;
    config.acl = if cfg.allow_other { SessionACL::All } else { SessionACL::Owner };
    config.n_threads = Some(cfg.threads.max(2));
    // One /dev/fuse descriptor per thread: no contention on the device between them.
    config.clone_fd = true;
    let session = Session::new(FuseFs::new(vfs, rt), mountpoint, &config)?;
    let session = session.spawn()?;
    Ok(Mounted { session, mountpoint: mountpoint.to_path_buf() })
}

/// Whether `path` is a FUSE mount point (per `/proc/self/mountinfo`).
pub fn is_fuse_mount(path: &Path) -> bool {
    let Ok(canon) = path.canonicalize().or_else(|_| Ok::<_, io::Error>(path.to_path_buf())) else { return false };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return false };
    info.lines().any(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        let Some(sep) = f.iter().position(|x| *x == "-") else { return false };
        // Mount points are octal-escaped (`\040` for a space).
        f.get(4).is_some_and(|m| unescape(m) == canon.as_os_str().as_bytes())
            && f.get(sep + 1).is_some_and(|t| t.starts_with("fuse"))
    })
}

fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Unmounts the FUSE mount at `mountpoint`: umount(2) as root, `fusermount3 -u` otherwise. `lazy`
/// detaches it even while files are open (they keep working until closed).
pub fn unmount(mountpoint: &Path, lazy: bool) -> io::Result<()> {
    if is_root() {
        let path = CString::new(mountpoint.as_os_str().as_bytes())?;
        let flags = if lazy { libc::MNT_DETACH } else { 0 };
        // SAFETY: `path` is a valid NUL-terminated string for the duration of the call.
        if unsafe { libc::umount2(path.as_ptr(), flags) } != 0 {
            return Err(io::Error::last_os_error());
        }
        return Ok(());
    }
    let mut cmd = Command::new("fusermount3");
    cmd.arg("-u");
    if lazy {
        cmd.arg("-z");
    }
    let out = cmd.arg("--").arg(mountpoint).output()?;
    if !out.status.success() {
        return Err(io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preflight_names_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(matches!(preflight(&missing), Err(PreflightError::NoMountpoint(_))));
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(matches!(preflight(&file), Err(PreflightError::NotADirectory(_))));
        assert!(preflight(dir.path()).is_ok() || !Path::new("/dev/fuse").exists());
        assert!(!is_fuse_mount(dir.path()));
    }

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(unescape(r"/mnt/a\040b"), b"/mnt/a b");
        assert_eq!(unescape("/plain"), b"/plain");
    }
}
