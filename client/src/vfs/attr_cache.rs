//! Inode attributes this client saw recently, trusted for a TTL. Saves a metanode round trip when the
//! kernel asks again shortly after a lookup or create (its own cache expires on the same TTL, but it
//! also drops entries under memory pressure and after every write). Every local mutation invalidates
//! or replaces the entry it affects, so the TTL only bounds staleness against *other* clients.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferrum_proto::msg::attr::InodeAttr;
use ferrum_proto::InodeId;

pub struct AttrCache {
    ttl: Duration,
    capacity: usize,
    map: Mutex<HashMap<InodeId, (InodeAttr, Instant)>>,
}

impl AttrCache {
    pub fn new(ttl: Duration, capacity: usize) -> AttrCache {
        AttrCache { ttl, capacity, map: Mutex::new(HashMap::new()) }
    }

    pub fn get(&self, ino: InodeId) -> Option<InodeAttr> {
        if self.ttl.is_zero() {
            return None;
        }
        let map = self.map.lock().expect("attr cache lock");
        map.get(&ino).filter(|(_, at)| at.elapsed() < self.ttl).map(|(a, _)| a.clone())
    }

    pub fn put(&self, attr: &InodeAttr) {
        if self.ttl.is_zero() {
            return;
        }
        let mut map = self.map.lock().expect("attr cache lock");
        if map.len() >= self.capacity {
            // Expired entries go first; if all are fresh, start over (cheaper than LRU bookkeeping on
            // every hit, and a full cache of fresh entries only happens under a burst of lookups).
            map.retain(|_, (_, at)| at.elapsed() < self.ttl);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(attr.inode, (attr.clone(), Instant::now()));
    }

    /// A directory's attributes as a change to it left them: kept unless the cache holds a later state
    /// (another change of this client answered first).
    pub fn put_dir(&self, attr: &InodeAttr) {
        let newer =
            self.map.lock().expect("attr cache lock").get(&attr.inode).is_some_and(|(a, _)| a.ctime > attr.ctime);
        if !newer {
            self.put(attr);
        }
    }

    pub fn invalidate(&self, ino: InodeId) {
        self.map.lock().expect("attr cache lock").remove(&ino);
    }

    pub fn clear(&self) {
        self.map.lock().expect("attr cache lock").clear();
    }
}

#[cfg(test)]
mod tests {
    use ferrum_proto::msg::attr::{FileKind, Time};

    use super::*;

    fn attr(ino: u64) -> InodeAttr {
        InodeAttr {
            inode: InodeId(ino),
            kind: FileKind::File,
            mode: 0o644,
            nlink: 1,
            uid: 0,
            gid: 0,
            size: 0,
            rdev: 0,
            atime: Time::default(),
            mtime: Time::default(),
            ctime: Time::default(),
        }
    }

    #[test]
    fn hit_then_invalidate() {
        let c = AttrCache::new(Duration::from_secs(60), 10);
        c.put(&attr(5));
        assert_eq!(c.get(InodeId(5)).unwrap().inode, InodeId(5));
        c.invalidate(InodeId(5));
        assert!(c.get(InodeId(5)).is_none());
    }

    #[test]
    fn entries_expire_and_zero_ttl_disables() {
        let c = AttrCache::new(Duration::from_nanos(1), 10);
        c.put(&attr(5));
        std::thread::sleep(Duration::from_millis(1));
        assert!(c.get(InodeId(5)).is_none());
        let off = AttrCache::new(Duration::ZERO, 10);
        off.put(&attr(1));
        assert!(off.get(InodeId(1)).is_none());
    }

    #[test]
    fn capacity_is_bounded() {
        let c = AttrCache::new(Duration::from_secs(60), 4);
        for i in 0..100 {
            c.put(&attr(i));
        }
        assert!(c.map.lock().unwrap().len() <= 4);
        assert!(c.get(InodeId(99)).is_some(), "the newest entry survives");
    }
}
