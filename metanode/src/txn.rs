//! Read-your-writes over a group's keyspace while one command is applied.
//!
//! The raftstore hands an `apply` a read view of the committed state and a write batch that cannot be
//! read back. An operation such as rename reads what it has just written (the same directory record
//! twice, the usage counter after an inode was freed), so the writes collect in an ordered overlay that
//! every read consults first; the overlay becomes the batch only when the command succeeds, which also
//! makes a failed command leave no trace.

use std::collections::BTreeMap;

use ferrum_proto::ErrorCode;
use ferrum_raftstore::{GroupBatch, GroupView};

/// Key/value pairs in key order.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Reads of a keyspace: the committed view of a group, or a [`Txn`] over it.
pub trait KvRead {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ErrorCode>;

    /// Pairs with `key >= start` in key order while `key` starts with `prefix`, at most `limit`.
    fn scan(&self, prefix: &[u8], start: &[u8], limit: usize) -> Result<Pairs, ErrorCode>;
}

fn storage(e: impl std::fmt::Display) -> ErrorCode {
    ErrorCode::Internal(format!("storage: {e}"))
}

impl KvRead for GroupView<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ErrorCode> {
        GroupView::get(self, key).map_err(storage)
    }

    fn scan(&self, prefix: &[u8], start: &[u8], limit: usize) -> Result<Pairs, ErrorCode> {
        GroupView::scan(self, prefix, start, limit).map_err(storage)
    }
}

/// Pending writes over a base view: `Some(value)` puts, `None` deletes.
pub struct Txn<'a> {
    base: &'a dyn KvRead,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

/// The writes of a finished [`Txn`].
pub struct Writes(BTreeMap<Vec<u8>, Option<Vec<u8>>>);

/// A point to roll back to (see [`Txn::savepoint`]).
pub struct Savepoint(BTreeMap<Vec<u8>, Option<Vec<u8>>>);

impl<'a> Txn<'a> {
    pub fn new(base: &'a dyn KvRead) -> Txn<'a> {
        Txn { base, writes: BTreeMap::new() }
    }

    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// The writes so far; cheap while they are few, which is the case when savepoints are taken.
    pub fn savepoint(&self) -> Savepoint {
        Savepoint(self.writes.clone())
    }

    pub fn rollback(&mut self, sp: Savepoint) {
        self.writes = sp.0;
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Moves the writes into the group's batch (committed with the applied index by the raftstore).
    pub fn commit(self, batch: &mut GroupBatch<'_>) {
        for (k, v) in self.writes {
            match v {
                Some(v) => batch.put(&k, &v),
                None => batch.delete(&k),
            }
        }
    }

    /// The pending writes, to [`Txn::absorb`] into an enclosing transaction.
    pub fn into_writes(self) -> Writes {
        Writes(self.writes)
    }

    /// Takes over the writes of a transaction that ran over this one.
    pub fn absorb(&mut self, w: Writes) {
        self.writes.extend(w.0);
    }
}

impl KvRead for Txn<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ErrorCode> {
        match self.writes.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.base.get(key),
        }
    }

    fn scan(&self, prefix: &[u8], start: &[u8], limit: usize) -> Result<Pairs, ErrorCode> {
        let start = start.max(prefix);
        let pending: Vec<(&Vec<u8>, &Option<Vec<u8>>)> =
            self.writes.range(start.to_vec()..).take_while(|(k, _)| k.starts_with(prefix)).collect();
        // Each pending delete may hide one base pair: ask the base for that many more.
        let deletes = pending.iter().filter(|(_, v)| v.is_none()).count();
        let base = self.base.scan(prefix, start, limit.saturating_add(deletes))?;
        let mut out = Vec::with_capacity(limit.min(base.len() + pending.len()));
        let (mut b, mut p) = (base.into_iter().peekable(), pending.into_iter().peekable());
        while out.len() < limit {
            let take_pending = match (b.peek(), p.peek()) {
                (None, None) => break,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((bk, _)), Some((pk, _))) => *pk <= bk,
            };
            if take_pending {
                let (k, v) = p.next().expect("peeked");
                if b.peek().is_some_and(|(bk, _)| bk == k) {
                    b.next(); // shadowed by the pending write
                }
                if let Some(v) = v {
                    out.push((k.clone(), v.clone()));
                }
            } else {
                out.push(b.next().expect("peeked"));
            }
        }
        Ok(out)
    }
}

/// An in-memory keyspace, for tests of code written against [`KvRead`].
#[cfg(test)]
pub struct MemKv(pub BTreeMap<Vec<u8>, Vec<u8>>);

#[cfg(test)]
impl KvRead for MemKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ErrorCode> {
        Ok(self.0.get(key).cloned())
    }

    fn scan(&self, prefix: &[u8], start: &[u8], limit: usize) -> Result<Pairs, ErrorCode> {
        let start = start.max(prefix);
        Ok(self
            .0
            .range(start.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> MemKv {
        let mut m = BTreeMap::new();
        for k in ["a1", "a2", "a3", "a5", "b1"] {
            m.insert(k.as_bytes().to_vec(), k.to_uppercase().into_bytes());
        }
        MemKv(m)
    }

    fn keys(v: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<String> {
        v.into_iter()
            .map(|(k, v)| format!("{}={}", String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
            .collect()
    }

    #[test]
    fn reads_see_pending_writes_and_deletes() {
        let b = base();
        let mut t = Txn::new(&b);
        t.put(b"a2".to_vec(), b"new".to_vec());
        t.delete(b"a3".to_vec());
        t.put(b"a4".to_vec(), b"A4".to_vec());
        assert_eq!(t.get(b"a2").unwrap(), Some(b"new".to_vec()));
        assert_eq!(t.get(b"a3").unwrap(), None);
        assert_eq!(t.get(b"a1").unwrap(), Some(b"A1".to_vec()));
        assert_eq!(keys(t.scan(b"a", b"", 10).unwrap()), ["a1=A1", "a2=new", "a4=A4", "a5=A5"]);
        assert_eq!(keys(t.scan(b"a", b"a2", 2).unwrap()), ["a2=new", "a4=A4"]);
        assert_eq!(keys(t.scan(b"b", b"", 10).unwrap()), ["b1=B1"]);
    }

    #[test]
    fn deletes_do_not_shorten_a_page() {
        let b = base();
        let mut t = Txn::new(&b);
        t.delete(b"a1".to_vec());
        t.delete(b"a2".to_vec());
        assert_eq!(keys(t.scan(b"a", b"", 2).unwrap()), ["a3=A3", "a5=A5"]);
    }

    #[test]
    fn rollback_forgets_later_writes() {
        let b = base();
        let mut t = Txn::new(&b);
        t.put(b"x".to_vec(), b"1".to_vec());
        let sp = t.savepoint();
        t.put(b"y".to_vec(), b"2".to_vec());
        t.delete(b"a1".to_vec());
        t.rollback(sp);
        assert_eq!(t.get(b"y").unwrap(), None);
        assert_eq!(t.get(b"a1").unwrap(), Some(b"A1".to_vec()));
        assert_eq!(t.into_writes().0.len(), 1);
    }

    #[test]
    fn a_nested_transaction_reads_through_and_hands_its_writes_up() {
        let b = base();
        let mut outer = Txn::new(&b);
        outer.delete(b"a1".to_vec());
        let w = {
            let mut inner = Txn::new(&outer);
            assert_eq!(inner.get(b"a1").unwrap(), None);
            inner.put(b"a9".to_vec(), b"9".to_vec());
            inner.into_writes()
        };
        outer.absorb(w);
        assert_eq!(keys(outer.scan(b"a", b"", 10).unwrap()), ["a2=A2", "a3=A3", "a5=A5", "a9=9"]);
    }
}
