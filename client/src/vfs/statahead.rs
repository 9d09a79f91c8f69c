//! Statahead: a process that walks a directory's names one by one (`ls -l`, `find`, a build, `stat`
//! over a tree) would cost one metanode round trip per name. Once lookups keep missing in a directory,
//! the client reads the whole directory with its entries' attributes (`ReadDirPlus`, a few large pages)
//! and answers the next lookups there from that listing, for the entry TTL.
//!
//! A listing is what the kernel's own dentry cache would hold for the same TTL, so it adds no new kind
//! of staleness: changes made by other clients show after at most the TTL; this client's own creates,
//! removals and renames update it at once. A complete listing also answers "no such name" (what a
//! negative dentry does). Permissions need no check here: mounts use `default_permissions`, so the
//! kernel has checked search permission on the directory before it asks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferrum_proto::msg::attr::FileKind;
use ferrum_proto::msg::name::Name;
use ferrum_proto::InodeId;

/// Lookups that must miss in one directory (within the TTL) before it is listed: one stray lookup
/// does not pay for a listing.
pub const MISSES_BEFORE_LISTING: u32 = 2;
/// Largest directory listed (one page); past it a listing holds the first names only and answers no
/// negatives. Bounds the cost of a listing that random lookups in a huge directory would not use.
pub const MAX_LISTED: u32 = 4096;
/// Directories listed at once, per client.
const MAX_DIRS: usize = 1024;

/// What a listing says about one name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Found(InodeId),
    Missing,
}

struct Listing {
    names: HashMap<Name, (InodeId, FileKind)>,
    complete: bool,
}

struct Dir {
    since: Instant,
    misses: u32,
    listing: Option<Listing>,
    /// Changes with every local change to the directory: a listing read across one is dropped (it may
    /// or may not hold the change).
    generation: u64,
}

pub struct Statahead {
    ttl: Duration,
    dirs: Mutex<HashMap<InodeId, Dir>>,
    generations: AtomicU64,
}

impl Statahead {
    pub fn new(ttl: Duration) -> Statahead {
        Statahead { ttl, dirs: Mutex::new(HashMap::new()), generations: AtomicU64::new(1) }
    }

    fn fresh_dir(&self) -> Dir {
        Dir {
            since: Instant::now(),
            misses: 0,
            listing: None,
            generation: self.generations.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Marks a local change to `dir`, and returns its listing if it has one to update.
    fn changed<'a>(&self, dirs: &'a mut HashMap<InodeId, Dir>, dir: InodeId) -> Option<&'a mut Listing> {
        let d = dirs.get_mut(&dir)?;
        d.generation = self.generations.fetch_add(1, Ordering::Relaxed);
        d.listing.as_mut()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<InodeId, Dir>> {
        self.dirs.lock().expect("statahead lock")
    }

    /// The listing's answer for `name`, if `parent` has a fresh listing that knows.
    pub fn answer(&self, parent: InodeId, name: &Name) -> Option<Answer> {
        let dirs = self.lock();
        let d = dirs.get(&parent).filter(|d| d.since.elapsed() < self.ttl)?;
        let l = d.listing.as_ref()?;
        match l.names.get(name) {
            Some((ino, _)) => Some(Answer::Found(*ino)),
            None if l.complete => Some(Answer::Missing),
            None => None,
        }
    }

    /// A lookup in `parent` had to ask the metanode; true when the directory should now be listed.
    pub fn missed(&self, parent: InodeId) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        let mut dirs = self.lock();
        if dirs.len() >= MAX_DIRS && !dirs.contains_key(&parent) {
            dirs.retain(|_, d| d.since.elapsed() < self.ttl);
            if dirs.len() >= MAX_DIRS {
                dirs.clear();
            }
        }
        let fresh = self.fresh_dir();
        let d = dirs.entry(parent).or_insert(fresh);
        if d.since.elapsed() >= self.ttl {
            *d = self.fresh_dir();
        }
        d.misses += 1;
        d.listing.is_none() && d.misses >= MISSES_BEFORE_LISTING
    }

    /// Call before reading a listing of `dir`: the token to hand to [`Statahead::listed`].
    pub fn begin(&self, dir: InodeId) -> (u64, Instant) {
        let fresh = self.fresh_dir();
        (self.lock().entry(dir).or_insert(fresh).generation, Instant::now())
    }

    /// Stores a listing of `dir` read since `begin` returned `token`, unless this client changed the
    /// directory meanwhile (the listing may then miss the change).
    pub fn listed(
        &self,
        dir: InodeId,
        token: (u64, Instant),
        names: HashMap<Name, (InodeId, FileKind)>,
        complete: bool,
    ) {
        let mut dirs = self.lock();
        if let Some(d) = dirs.get_mut(&dir).filter(|d| d.generation == token.0) {
            d.since = token.1;
            d.listing = Some(Listing { names, complete });
        }
    }

    /// Drops `dir`'s listing: a call found it wrong (another client changed the directory).
    pub fn forget(&self, dir: InodeId) {
        if let Some(d) = self.lock().get_mut(&dir) {
            d.generation = self.generations.fetch_add(1, Ordering::Relaxed);
            d.listing = None;
        }
    }

    /// This client created `name` (or linked it) in `parent`.
    pub fn added(&self, parent: InodeId, name: &Name, ino: InodeId, kind: FileKind) {
        if let Some(l) = self.changed(&mut self.lock(), parent) {
            l.names.insert(name.clone(), (ino, kind));
        }
    }

    /// This client removed `name` from `parent`.
    pub fn removed(&self, parent: InodeId, name: &Name) {
        if let Some(l) = self.changed(&mut self.lock(), parent) {
            l.names.remove(name);
        }
    }

    /// This client renamed `parent/name` to `new_parent/new_name` (`exchange`: swapped the two).
    /// Returns the inodes that moved (their ctime changed), when the listings knew them.
    pub fn renamed(
        &self,
        parent: InodeId,
        name: &Name,
        new_parent: InodeId,
        new_name: &Name,
        exchange: bool,
    ) -> Option<Vec<InodeId>> {
        let mut dirs = self.lock();
        let src = self.changed(&mut dirs, parent).map(|l| l.names.remove(name));
        let dst = self.changed(&mut dirs, new_parent).map(|l| l.names.remove(new_name));
        let mut put = |dir: InodeId, n: &Name, v: (InodeId, FileKind)| {
            if let Some(l) = dirs.get_mut(&dir).and_then(|d| d.listing.as_mut()) {
                l.names.insert(n.clone(), v);
            }
        };
        match (src, dst) {
            (Some(Some(s)), Some(d)) if !exchange || d.is_some() => {
                put(new_parent, new_name, s);
                match (exchange, d) {
                    (true, Some(d)) => {
                        put(parent, name, d);
                        Some(vec![s.0, d.0])
                    }
                    _ => Some(vec![s.0]),
                }
            }
            // A side not in any listing is unknown: drop both listings rather than guess.
            _ => {
                for dir in [parent, new_parent] {
                    if let Some(d) = dirs.get_mut(&dir) {
                        d.listing = None;
                    }
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::from(s)
    }

    const P: InodeId = InodeId(10);
    const Q: InodeId = InodeId(11);

    fn listed(s: &Statahead, dir: InodeId, names: &[(&str, u64)], complete: bool) {
        let names = names.iter().map(|(k, i)| (n(k), (InodeId(*i), FileKind::File))).collect();
        let token = s.begin(dir);
        s.listed(dir, token, names, complete);
    }

    #[test]
    fn a_directory_is_listed_after_repeated_misses_and_answers_then() {
        let s = Statahead::new(Duration::from_secs(60));
        assert_eq!(s.answer(P, &n("a")), None);
        assert!(!s.missed(P), "one miss is not a pattern");
        assert!(s.missed(P));
        listed(&s, P, &[("a", 1), ("b", 2)], true);
        assert_eq!(s.answer(P, &n("a")), Some(Answer::Found(InodeId(1))));
        assert_eq!(s.answer(P, &n("zz")), Some(Answer::Missing));
        assert!(!s.missed(P), "listed already");
    }

    #[test]
    fn an_incomplete_listing_answers_only_what_it_holds() {
        let s = Statahead::new(Duration::from_secs(60));
        listed(&s, P, &[("a", 1)], false);
        assert_eq!(s.answer(P, &n("a")), Some(Answer::Found(InodeId(1))));
        assert_eq!(s.answer(P, &n("b")), None);
    }

    #[test]
    fn a_listing_expires_with_the_ttl() {
        let s = Statahead::new(Duration::from_millis(30));
        listed(&s, P, &[("a", 1)], true);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(s.answer(P, &n("a")), None);
    }

    #[test]
    fn local_changes_update_listings() {
        let s = Statahead::new(Duration::from_secs(60));
        listed(&s, P, &[("a", 1), ("b", 2)], true);
        listed(&s, Q, &[("x", 9)], true);
        s.added(P, &n("c"), InodeId(3), FileKind::File);
        s.removed(P, &n("b"));
        assert_eq!(s.answer(P, &n("c")), Some(Answer::Found(InodeId(3))));
        assert_eq!(s.answer(P, &n("b")), Some(Answer::Missing));
        assert_eq!(s.renamed(P, &n("a"), Q, &n("x"), false), Some(vec![InodeId(1)]));
        assert_eq!(s.answer(P, &n("a")), Some(Answer::Missing));
        assert_eq!(s.answer(Q, &n("x")), Some(Answer::Found(InodeId(1))), "replaced the target");
        assert_eq!(s.renamed(P, &n("c"), Q, &n("x"), true), Some(vec![InodeId(3), InodeId(1)]));
        assert_eq!(s.answer(P, &n("c")), Some(Answer::Found(InodeId(1))), "exchanged");
        assert_eq!(s.answer(Q, &n("x")), Some(Answer::Found(InodeId(3))));
        // A rename from a directory without a listing: the other side cannot be known.
        assert_eq!(s.renamed(InodeId(99), &n("m"), P, &n("c"), false), None);
        assert_eq!(s.answer(P, &n("c")), None);
    }

    #[test]
    fn a_listing_read_across_a_local_change_is_dropped() {
        let s = Statahead::new(Duration::from_secs(60));
        let token = s.begin(P);
        s.added(P, &n("new"), InodeId(5), FileKind::File);
        let names = HashMap::from([(n("old"), (InodeId(1), FileKind::File))]);
        s.listed(P, token, names.clone(), true);
        assert_eq!(s.answer(P, &n("new")), None, "the read may have missed it: no listing");
        let token = s.begin(P);
        s.listed(P, token, names, true);
        assert_eq!(s.answer(P, &n("old")), Some(Answer::Found(InodeId(1))));
    }
}
