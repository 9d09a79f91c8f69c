//! The credentials behind a FUSE request.
//!
//! The kernel sends uid, gid and pid, but not the supplementary groups, which the metanode needs for its
//! permission checks (a user may write a directory through a secondary group). They are read from
//! `/proc/<pid>/status` and cached briefly per (pid, uid, gid): one process issues many requests in a
//! row. Root needs no groups (it passes every check).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferrum_proto::msg::meta::Cred;
use fuser::Request;

const TTL: Duration = Duration::from_secs(1);
const CAPACITY: usize = 4096;

/// (pid, uid, gid) of a request.
type Caller = (u32, u32, u32);

#[derive(Default)]
pub struct Creds {
    /// Supplementary groups per caller, and when they were read.
    cache: Mutex<HashMap<Caller, (Vec<u32>, Instant)>>,
}

impl Creds {
    pub fn of(&self, req: &Request) -> Cred {
        self.lookup(req.uid(), req.gid(), req.pid())
    }

    pub fn lookup(&self, uid: u32, gid: u32, pid: u32) -> Cred {
        if uid == 0 || pid == 0 {
            return Cred { uid, gid, groups: Vec::new() };
        }
        let key = (pid, uid, gid);
        if let Some((groups, at)) = self.cache.lock().expect("creds lock").get(&key) {
            if at.elapsed() < TTL {
                return Cred { uid, gid, groups: groups.clone() };
            }
        }
        let groups =
            std::fs::read_to_string(format!("/proc/{pid}/status")).map(|s| parse_groups(&s)).unwrap_or_default();
        let mut cache = self.cache.lock().expect("creds lock");
        if cache.len() >= CAPACITY {
            cache.retain(|_, (_, at)| at.elapsed() < TTL);
            if cache.len() >= CAPACITY {
                cache.clear();
            }
        }
        cache.insert(key, (groups.clone(), Instant::now()));
        Cred { uid, gid, groups }
    }
}

/// The `Groups:` line of a `/proc/<pid>/status`.
fn parse_groups(status: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| g.split_whitespace().filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_groups_line() {
        let status = "Name:\tbash\nUid:\t1000\t1000\t1000\t1000\nGroups:\t4 24 27 1000 \nVmPeak:\t1 kB\n";
        assert_eq!(parse_groups(status), vec![4, 24, 27, 1000]);
        assert_eq!(parse_groups("Groups:\t\n"), Vec::<u32>::new());
        assert_eq!(parse_groups("Name: x\n"), Vec::<u32>::new());
    }

    #[test]
    fn reads_our_own_groups_and_skips_root() {
        let c = Creds::default();
        assert!(c.lookup(0, 0, std::process::id()).groups.is_empty());
        let me = c.lookup(4242, 4242, std::process::id());
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert_eq!(me.groups, parse_groups(&status));
        assert_eq!((me.uid, me.gid), (4242, 4242));
    }
}
