//! When log entries reach the disk, and what a restart after a power loss must do about it.
//!
//! By default (`[raft] sync_every_entry = false`) an entry is appended to the RocksDB WAL with a plain
//! `write(2)` — it is in the kernel's page cache when openraft counts it toward a commit — and the WAL is
//! fsynced only for entries that ask for it: membership changes and [`SYNC`] markers, which a client's
//! `fsync` proposes. A committed marker means a majority fsynced its WAL up to it, so everything before
//! it is on disk on a majority. The promise:
//! - an acknowledged write is in the memory of a majority of the partition's replicas: it survives the
//!   crash (or power loss) of any minority;
//! - after `fsync` it is on the disks of a majority: it survives losing power everywhere.
//!
//! A process crash loses nothing written: the kernel still has the pages. A *power loss* (or kernel
//! crash) may lose the unsynced tail of this instance's log, including entries it acknowledged. Such a
//! replica must not help elect a leader that lacks those entries, so after a reboot with an unclean
//! stop every group it hosts starts *recovering*: it neither votes nor campaigns until a leader has
//! brought its log up to that leader's commit index (see [`crate::router`]). If no leader shows up
//! within `recovery_timeout_ms` (a whole cluster lost power), it stops waiting: then only fsynced
//! writes are guaranteed, as stated above.
//!
//! Telling a reboot from a process crash: the boot record holds the kernel's boot id and whether the
//! last stop was clean. A different boot id with an unclean stop means unsynced writes may be gone.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

/// The command bytes of a sync marker: empty (no app ever proposes an empty command).
pub const SYNC: Bytes = Bytes::new();

const FILE: &str = "BOOT";
/// Tests simulate a reboot by setting this to a made-up boot id.
pub const BOOT_ID_ENV: &str = "FERRUM_BOOT_ID";

/// What the previous run of this instance left behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LastStop {
    /// First start, a clean stop, or a process crash without a reboot: the log is complete.
    Complete,
    /// Unclean stop followed by a reboot: the log's unsynced tail may be lost.
    MayHaveLostTail,
}

fn boot_id() -> io::Result<String> {
    if let Ok(id) = std::env::var(BOOT_ID_ENV) {
        return Ok(id);
    }
    Ok(std::fs::read_to_string("/proc/sys/kernel/random/boot_id")?.trim().to_string())
}

fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// Writes `boot_id clean|running` and fsyncs it (and the directory), so the record itself survives.
fn write_record(dir: &Path, boot: &str, clean: bool) -> io::Result<()> {
    let tmp = dir.join(format!("{FILE}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    writeln!(f, "{boot} {}", if clean { "clean" } else { "running" })?;
    f.sync_all()?;
    std::fs::rename(&tmp, path(dir))?;
    std::fs::File::open(dir)?.sync_all()
}

/// Reads how the previous run stopped, then records this run as running (not clean).
pub fn arm(dir: &Path) -> io::Result<LastStop> {
    let now = boot_id()?;
    let last = match std::fs::read_to_string(path(dir)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => LastStop::Complete,
        Err(e) => return Err(e),
        Ok(s) => {
            let mut it = s.split_whitespace();
            let (boot, state) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
            if state == "clean" || boot == now {
                LastStop::Complete
            } else {
                LastStop::MayHaveLostTail
            }
        }
    };
    write_record(dir, &now, false)?;
    Ok(last)
}

/// Records a clean stop; call after the WAL was synced.
pub fn mark_clean(dir: &Path) -> io::Result<()> {
    write_record(dir, &boot_id()?, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test touches the env var, so the cases run in order in one test.
    #[test]
    fn a_reboot_after_an_unclean_stop_is_the_only_lossy_case() {
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var(BOOT_ID_ENV, "boot-a");
        assert_eq!(arm(dir.path()).unwrap(), LastStop::Complete, "first start");
        assert_eq!(arm(dir.path()).unwrap(), LastStop::Complete, "process crash, same boot");
        std::env::set_var(BOOT_ID_ENV, "boot-b");
        assert_eq!(arm(dir.path()).unwrap(), LastStop::MayHaveLostTail, "crash, then reboot");
        mark_clean(dir.path()).unwrap();
        std::env::set_var(BOOT_ID_ENV, "boot-c");
        assert_eq!(arm(dir.path()).unwrap(), LastStop::Complete, "clean stop, then reboot");
        std::env::remove_var(BOOT_ID_ENV);
    }
}
