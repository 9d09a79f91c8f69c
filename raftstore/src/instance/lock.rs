//! One instance per data dir: an exclusive lock on `<dir>/LOCK`, held as long as the `DataDir` lives.
//!
//! Two instances on one RocksDB dir corrupt it, and a second instance that waited for the lock would
//! look hung; so the second one fails at once, naming the dir and the holder's pid.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::InstanceError;
use super::identity::{Identity, InstanceUuid};
use super::role::Role;

pub const LOCK_FILE: &str = "LOCK";

/// An open, locked data dir with a checked identity.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    identity: Identity,
    /// The lock is an `flock` on this open file: closing it (on drop, or when the process dies,
    /// even by SIGKILL) releases it, so no stale lock survives a crash.
    _lock: File,
}

impl DataDir {
    /// Creates the dir if needed, locks it, and checks or creates its IDENTITY for `role`.
    pub fn open(path: impl AsRef<Path>, role: Role) -> Result<DataDir, InstanceError> {
        let given = path.as_ref();
        // Absolute, so error messages still name the right dir when several instances share a cwd.
        let path = std::path::absolute(given).unwrap_or_else(|_| given.to_path_buf());
        std::fs::create_dir_all(&path).map_err(|err| InstanceError::io(&path, err))?;
        let lock = lock(&path)?;
        let identity = Identity::load_or_create(&path, role)?;
        Ok(DataDir { path, identity, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn instance_uuid(&self) -> &InstanceUuid {
        &self.identity.instance_uuid
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// `<dir>/<name>`, created if missing (e.g. `subdir("raft")` for the RocksDB files).
    pub fn subdir(&self, name: &str) -> Result<PathBuf, InstanceError> {
        debug_assert!(
            !name.is_empty() && !name.contains('/') && name != "..",
            "subdir takes one plain path component, got {name:?}"
        );
        let sub = self.path.join(name);
        std::fs::create_dir_all(&sub).map_err(|err| InstanceError::io(&sub, err))?;
        Ok(sub)
    }
}

fn lock(dir: &Path) -> Result<File, InstanceError> {
    let path = dir.join(LOCK_FILE);
    let io = |err| InstanceError::io(&path, err);
    // No truncate on open: that would wipe the holder's pid before we know we are not the holder.
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(InstanceError::DirLocked { dir: dir.to_path_buf(), holder_pid: holder_pid(&path) })
        }
        Err(TryLockError::Error(err)) => return Err(io(err)),
    }
    // The pid is only for the error message of the next one to try; the lock itself is the flock.
    file.set_len(0).map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    Ok(file)
}

/// The holder may not have written its pid yet, or be an older build; then we just don't name it.
fn holder_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_open_fails_at_once_naming_dir_and_pid() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("m1");
        let _held = DataDir::open(&dir, Role::Master).expect("first open");
        let start = std::time::Instant::now();
        let err = DataDir::open(&dir, Role::Master).unwrap_err();
        assert!(start.elapsed() < std::time::Duration::from_secs(1), "must not wait");
        let msg = err.to_string();
        assert!(msg.contains(&dir.display().to_string()), "{msg}");
        assert!(msg.contains(&format!("pid {}", std::process::id())), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
        assert!(matches!(err, InstanceError::DirLocked { .. }));
    }

    #[test]
    fn lock_is_released_on_drop() {
        let tmp = tempfile::tempdir().expect("temp dir");
        drop(DataDir::open(tmp.path(), Role::Metanode).expect("first open"));
        DataDir::open(tmp.path(), Role::Metanode).expect("reopen after drop");
    }

    #[test]
    fn role_mismatch_is_refused_naming_both() {
        let tmp = tempfile::tempdir().expect("temp dir");
        drop(DataDir::open(tmp.path(), Role::Master).expect("create as master"));
        let msg = DataDir::open(tmp.path(), Role::Datanode).unwrap_err().to_string();
        assert!(msg.contains("master") && msg.contains("datanode"), "{msg}");
    }

    #[test]
    fn identity_is_stable_across_reopen() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let first = DataDir::open(tmp.path(), Role::Datanode).expect("create");
        let uuid = first.instance_uuid().clone();
        assert_eq!(uuid.as_str().len(), 32);
        drop(first);
        let again = DataDir::open(tmp.path(), Role::Datanode).expect("reopen");
        assert_eq!(again.instance_uuid(), &uuid);
    }

    #[test]
    fn subdir_is_created_inside() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = DataDir::open(tmp.path(), Role::Other("test")).expect("open");
        let raft = dir.subdir("raft").expect("subdir");
        assert!(raft.is_dir());
        assert_eq!(raft.parent(), Some(dir.path()));
    }
}
