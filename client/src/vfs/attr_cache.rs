//! Inode attributes this client saw recently, trusted for a TTL. Saves a metanode round trip when the
//! kernel asks again shortly after a lookup or create (its own cache expires on the same TTL, but it
//! also drops entries under memory pressure and after every write). Every local mutation invalidates
//! or replaces the entry it affects, so the TTL only bounds staleness against *other* clients.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferrum_proto::msg::attr::InodeAttr;
use ferrum_proto::InodeId;

enum Slot {
    Attr(InodeAttr, Instant),
    /// Invalidated at this epoch: a read that started before must not put back what it saw.
    Invalidated(u64),
}

struct State {
    map: HashMap<InodeId, Slot>,
    /// Counts invalidations; a read notes it before asking the metanode (see [`AttrCache::put_since`]).
    epoch: u64,
    /// Everything invalidated up to here (`clear`, or a full cache that was emptied).
    cleared: u64,
}

pub struct AttrCache {
    ttl: Duration,
    capacity: usize,
    state: Mutex<State>,
}

impl AttrCache {
    pub fn new(ttl: Duration, capacity: usize) -> AttrCache {
        AttrCache { ttl, capacity, state: Mutex::new(State { map: HashMap::new(), epoch: 0, cleared: 0 }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("attr cache lock")
    }

    pub fn get(&self, ino: InodeId) -> Option<InodeAttr> {
        if self.ttl.is_zero() {
            return None;
        }
        match self.lock().map.get(&ino) {
            Some(Slot::Attr(a, at)) if at.elapsed() < self.ttl => Some(a.clone()),
            _ => None,
        }
    }

    /// Note this before reading attributes from the metanode, and hand it to [`AttrCache::put_since`].
    pub fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// Attributes this client knows to be current (it just made the change that produced them).
    pub fn put(&self, attr: &InodeAttr) {
        let mut st = self.lock();
        self.insert(&mut st, attr);
    }

    /// Attributes read from the metanode by a read that began at `since`: dropped if this client
    /// invalidated the inode meanwhile (the read may predate the change; a listing or a lookup racing a
    /// write-back would otherwise bring back the size from before it).
    pub fn put_since(&self, attr: &InodeAttr, since: u64) {
        let mut st = self.lock();
        let stale = st.cleared > since || matches!(st.map.get(&attr.inode), Some(Slot::Invalidated(at)) if *at > since);
        if !stale {
            self.insert(&mut st, attr);
        }
    }

    /// A directory's attributes as a change to it left them (read at `since`, see `put_since`): kept
    /// unless the cache holds a later state (another change of this client answered first).
    pub fn put_dir(&self, attr: &InodeAttr, since: u64) {
        let newer = matches!(self.lock().map.get(&attr.inode), Some(Slot::Attr(a, _)) if a.ctime > attr.ctime);
        if !newer {
            self.put_since(attr, since);
        }
    }

    fn insert(&self, st: &mut State, attr: &InodeAttr) {
        if self.ttl.is_zero() {
            return;
        }
        if st.map.len() >= self.capacity {
            // Expired entries go first; if all are fresh, start over (cheaper than LRU bookkeeping on
            // every hit, and a full cache of fresh entries only happens under a burst of lookups).
            let (ttl, epoch) = (self.ttl, st.epoch);
            st.map.retain(|_, slot| match slot {
                Slot::Attr(_, at) => at.elapsed() < ttl,
                Slot::Invalidated(_) => false,
            });
            // Dropped tombstones: count them as a clear, so reads older than now are refused.
            st.cleared = epoch;
            if st.map.len() >= self.capacity {
                st.map.clear();
            }
        }
        st.map.insert(attr.inode, Slot::Attr(attr.clone(), Instant::now()));
    }

    pub fn invalidate(&self, ino: InodeId) {
        let mut st = self.lock();
        st.epoch += 1;
        let epoch = st.epoch;
        st.map.insert(ino, Slot::Invalidated(epoch));
    }

    pub fn clear(&self) {
        let mut st = self.lock();
        st.epoch += 1;
        st.cleared = st.epoch;
        st.map.clear();
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
    fn a_read_older_than_an_invalidation_is_not_put_back() {
        let c = AttrCache::new(Duration::from_secs(60), 10);
        let since = c.epoch();
        c.invalidate(InodeId(5));
        c.put_since(&attr(5), since);
        assert!(c.get(InodeId(5)).is_none(), "the read may predate the change");
        c.put_since(&attr(6), since);
        assert!(c.get(InodeId(6)).is_some(), "other inodes are unaffected");
        let since = c.epoch();
        c.put_since(&attr(5), since);
        assert!(c.get(InodeId(5)).is_some(), "a read begun after it is fine");
        let since = c.epoch();
        c.clear();
        c.put_since(&attr(7), since);
        assert!(c.get(InodeId(7)).is_none());
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
        assert!(c.lock().map.len() <= 4);
        assert!(c.get(InodeId(99)).is_some(), "the newest entry survives");
    }
}
