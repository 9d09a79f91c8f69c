//! Free space on the disk holding the partitions, and the reserve that keeps applies from failing.
//!
//! A committed Raft entry must be applied on every replica; failing it on one would make replicas
//! diverge. So the leader refuses (`NoSpace`) any write that would bring free space below the reserve
//! before proposing it, and the partition turns read-only until space comes back (with hysteresis, so
//! it does not flap). The reserve absorbs writes already in flight and replicas on fuller disks.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Space {
    dir: PathBuf,
    reserve: AtomicU64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskSpace {
    pub total: u64,
    pub free: u64,
}

impl Space {
    pub fn new(dir: &Path, reserve: u64) -> Space {
        Space { dir: dir.to_path_buf(), reserve: AtomicU64::new(reserve) }
    }

    pub fn reserve(&self) -> u64 {
        self.reserve.load(Ordering::Relaxed)
    }

    /// Changes the reserve at run time (tests use it to simulate a full disk).
    pub fn set_reserve(&self, bytes: u64) {
        self.reserve.store(bytes, Ordering::Relaxed);
    }

    pub fn disk(&self) -> io::Result<DiskSpace> {
        statvfs(&self.dir)
    }

    /// Whether `bytes` more may be written: free space stays above the reserve afterwards.
    pub fn admits(&self, bytes: u64) -> bool {
        match self.disk() {
            Ok(d) => d.free >= self.reserve().saturating_add(bytes),
            // Cannot tell: let the write through; an apply that hits ENOSPC waits for space.
            Err(_) => true,
        }
    }

    /// Whether a read-only partition may take writes again: twice the reserve is free.
    pub fn recovered(&self) -> bool {
        self.disk().is_ok_and(|d| d.free >= self.reserve().saturating_mul(2))
    }
}

pub fn statvfs(dir: &Path) -> io::Result<DiskSpace> {
    let c = CString::new(dir.as_os_str().as_bytes()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statvfs fills the zeroed struct; the path is a valid NUL-terminated string.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let frsize = s.f_frsize as u64;
    Ok(DiskSpace { total: s.f_blocks as u64 * frsize, free: s.f_bavail as u64 * frsize })
}

pub fn is_enospc(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOSPC) || e.raw_os_error() == Some(libc::EDQUOT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_decides_admission() {
        let dir = tempfile::tempdir().unwrap();
        let s = Space::new(dir.path(), 0);
        let d = s.disk().unwrap();
        assert!(d.total >= d.free && d.free > 0);
        assert!(s.admits(1));
        s.set_reserve(u64::MAX / 4);
        assert!(!s.admits(1));
        assert!(!s.recovered());
        s.set_reserve(0);
        assert!(s.recovered());
        assert!(is_enospc(&io::Error::from_raw_os_error(libc::ENOSPC)));
    }
}
