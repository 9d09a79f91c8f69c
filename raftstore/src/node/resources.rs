//! What this instance can offer, answered when the master asks (`GetResources`); the master caches it.

use std::path::Path;

use ferrum_proto::msg::master::Resources;

/// Feature flags this build supports. The cluster enables a feature only when every live instance
/// lists it (safe rolling upgrades). Never remove a flag that shipped.
pub const FEATURES: &[&str] = &["frames.v1", "raftstore.v1"];

pub fn local_resources(data_dir: &Path) -> Resources {
    let (disk_total, disk_free) = disk_space(data_dir).unwrap_or((0, 0));
    Resources {
        disk_total,
        disk_free,
        mem_total: mem_total().unwrap_or(0),
        cores: std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1),
        version: ferrum_proto::msg::hello::AGENT.to_string(),
        features: FEATURES.iter().map(|f| f.to_string()).collect(),
    }
}

/// (total, available to us) bytes of the filesystem holding `dir`.
pub fn disk_space(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as u64;
    Some((st.f_blocks as u64 * frsize, st.f_bavail as u64 * frsize))
}

fn mem_total() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_real_machine_facts() {
        let r = local_resources(Path::new("/"));
        assert!(r.disk_total > 0 && r.disk_free <= r.disk_total, "{r:?}");
        assert!(r.mem_total > 0 && r.cores >= 1, "{r:?}");
        assert!(r.features.iter().any(|f| f == "raftstore.v1"));
    }
}
