//! A file's data map: non-overlapping pieces (file range → extent range), kept in the EXTENT table
//! keyed by each piece's *end* offset. The pieces overlapping `[s, e)` are then exactly those found by
//! a forward scan from `end > s` up to the first piece starting at or after `e`, without a reverse seek.
//!
//! Writing a piece replaces what the file mapped there (later writes win); the replaced data is queued
//! for release on the datanodes unless it is the very same bytes (an in-place overwrite). Adjacent
//! pieces continuing the same extent are merged, so sequential writes keep the map small.

use ferrum_proto::msg::extent::ExtentKey;
use ferrum_proto::{ErrorCode, InodeId};

use crate::freed;
use crate::keys;
use crate::records::{decode, encode, FreedRec, PieceRec};
use crate::txn::{KvRead, Txn};

const BATCH: usize = 256;

fn piece_at(key: &[u8], value: &[u8]) -> Result<(u64, PieceRec), ErrorCode> {
    let end = u64::from_be_bytes(
        key.get(9..17)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ErrorCode::Internal("corrupt extent key".into()))?,
    );
    Ok((end, decode("extent", value)?))
}

/// Pieces of `ino` whose end is past `from`, in order, `limit` at most.
fn pieces_after(kv: &dyn KvRead, ino: InodeId, from: u64, limit: usize) -> Result<Vec<(u64, PieceRec)>, ErrorCode> {
    let prefix = keys::extent_prefix(ino);
    let start = keys::extent(ino, from.saturating_add(1));
    kv.scan(&prefix, &start, limit)?.iter().map(|(k, v)| piece_at(k, v)).collect()
}

/// The whole map, in file order.
pub fn list(kv: &dyn KvRead, ino: InodeId) -> Result<Vec<ExtentKey>, ErrorCode> {
    let mut out = Vec::new();
    let mut from = 0u64;
    loop {
        let batch = pieces_after(kv, ino, from, BATCH)?;
        let Some(&(last, _)) = batch.last() else { break };
        out.extend(batch.iter().map(|(end, p)| p.key(*end)));
        if batch.len() < BATCH {
            break;
        }
        from = last;
    }
    // `pieces_after(0)` skips a piece ending at 0, which cannot exist (pieces are never empty).
    Ok(out)
}

/// Whether the file maps no bytes at all.
pub fn list_is_empty(kv: &dyn KvRead, ino: InodeId) -> Result<bool, ErrorCode> {
    Ok(pieces_after(kv, ino, 0, 1)?.is_empty())
}

fn put_piece(txn: &mut Txn<'_>, ino: InodeId, end: u64, p: &PieceRec) {
    txn.put(keys::extent(ino, end), encode(p));
}

fn same_bytes(a: &ExtentKey, b: &ExtentKey) -> bool {
    a.partition == b.partition
        && a.extent == b.extent
        && a.extent_offset < b.extent_offset + b.len
        && b.extent_offset < a.extent_offset + a.len
}

/// Maps `key` into the file, replacing what overlapped it.
pub fn insert(txn: &mut Txn<'_>, ino: InodeId, key: &ExtentKey) -> Result<(), ErrorCode> {
    if key.len == 0 {
        return Ok(());
    }
    let (s, e) = (key.file_offset, key.file_offset.checked_add(key.len).ok_or(ErrorCode::FileTooBig)?);
    loop {
        let batch = pieces_after(txn, ino, s, BATCH)?;
        let overlapping: Vec<_> = batch.into_iter().take_while(|(_, p)| p.start < e).collect();
        if overlapping.is_empty() {
            break;
        }
        for (end, p) in overlapping {
            txn.delete(keys::extent(ino, end));
            if p.start < s {
                put_piece(txn, ino, s, &p);
            }
            if end > e {
                let right = PieceRec { start: e, extent_offset: p.extent_offset + (e - p.start), ..p };
                put_piece(txn, ino, end, &right);
            }
            let (fs, fe) = (p.start.max(s), end.min(e));
            let gone = ExtentKey {
                file_offset: fs,
                partition: p.partition,
                extent: p.extent,
                extent_offset: p.extent_offset + (fs - p.start),
                len: fe - fs,
            };
            // An in-place overwrite maps the same bytes again: they are still in use.
            if !same_bytes(&gone, key) {
                freed::push(txn, FreedRec { extent: gone, inode_evicted: false })?;
            }
        }
    }
    let mut new = PieceRec { start: s, partition: key.partition, extent: key.extent, extent_offset: key.extent_offset };
    let continues = |a: &PieceRec, a_end: u64, b: &PieceRec| {
        a.partition == b.partition && a.extent == b.extent && a.extent_offset + (a_end - a.start) == b.extent_offset
    };
    // Merge with the piece ending where this one starts, when it continues into it.
    if s > 0 {
        if let Some(v) = txn.get(&keys::extent(ino, s))? {
            let left: PieceRec = decode("extent", &v)?;
            if continues(&left, s, &new) {
                txn.delete(keys::extent(ino, s));
                new = left;
            }
        }
    }
    // And with the piece starting where this one ends.
    let mut end = e;
    if let Some((r_end, right)) = pieces_after(txn, ino, e, 1)?.into_iter().next() {
        if right.start == e && continues(&new, e, &right) {
            txn.delete(keys::extent(ino, r_end));
            end = r_end;
        }
    }
    put_piece(txn, ino, end, &new);
    Ok(())
}

/// Drops the map past `size` (trimming the piece that straddles it), queueing the data for release.
pub fn truncate(txn: &mut Txn<'_>, ino: InodeId, size: u64) -> Result<(), ErrorCode> {
    loop {
        let batch = pieces_after(txn, ino, size, BATCH)?;
        if batch.is_empty() {
            break;
        }
        for (end, p) in batch {
            txn.delete(keys::extent(ino, end));
            let from = p.start.max(size);
            if p.start < size {
                put_piece(txn, ino, size, &p);
            }
            let gone = ExtentKey {
                file_offset: from,
                partition: p.partition,
                extent: p.extent,
                extent_offset: p.extent_offset + (from - p.start),
                len: end - from,
            };
            freed::push(txn, FreedRec { extent: gone, inode_evicted: false })?;
        }
    }
    Ok(())
}

/// Drops the whole map of an inode being deleted.
pub fn free_all(txn: &mut Txn<'_>, ino: InodeId) -> Result<(), ErrorCode> {
    loop {
        let batch = pieces_after(txn, ino, 0, BATCH)?;
        if batch.is_empty() {
            break;
        }
        for (end, p) in batch {
            txn.delete(keys::extent(ino, end));
            freed::push(txn, FreedRec { extent: p.key(end), inode_evicted: true })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ferrum_proto::{ExtentId, PartitionId};

    use super::*;
    use crate::txn::MemKv;

    fn k(off: u64, ext: u64, eoff: u64, len: u64) -> ExtentKey {
        ExtentKey { file_offset: off, partition: PartitionId(9), extent: ExtentId(ext), extent_offset: eoff, len }
    }

    const I: InodeId = InodeId(7);

    /// Applies `f` to a fresh map and returns (map, freed pieces).
    fn run(f: impl FnOnce(&mut Txn<'_>)) -> (Vec<ExtentKey>, Vec<ExtentKey>) {
        let base = MemKv(BTreeMap::new());
        let mut t = Txn::new(&base);
        f(&mut t);
        let map = list(&t, I).unwrap();
        let freed = freed::list(&t, 100).unwrap().into_iter().map(|p| p.extent).collect();
        (map, freed)
    }

    #[test]
    fn sequential_appends_merge() {
        let (map, freed) = run(|t| {
            insert(t, I, &k(0, 1, 0, 100)).unwrap();
            insert(t, I, &k(100, 1, 100, 50)).unwrap();
            insert(t, I, &k(150, 1, 150, 10)).unwrap();
        });
        assert_eq!(map, vec![k(0, 1, 0, 160)]);
        assert!(freed.is_empty());
    }

    #[test]
    fn a_write_in_the_middle_splits_and_frees() {
        let (map, freed) = run(|t| {
            insert(t, I, &k(0, 1, 0, 100)).unwrap();
            insert(t, I, &k(40, 2, 0, 20)).unwrap();
        });
        assert_eq!(map, vec![k(0, 1, 0, 40), k(40, 2, 0, 20), k(60, 1, 60, 40)]);
        assert_eq!(freed, vec![k(40, 1, 40, 20)]);
    }

    #[test]
    fn an_in_place_overwrite_frees_nothing() {
        let (map, freed) = run(|t| {
            insert(t, I, &k(0, 1, 0, 100)).unwrap();
            insert(t, I, &k(10, 1, 10, 20)).unwrap();
        });
        assert!(freed.is_empty());
        // Split and merged back: the same single piece.
        assert_eq!(map, vec![k(0, 1, 0, 100)]);
    }

    #[test]
    fn a_write_over_many_pieces_replaces_them_all() {
        let (map, freed) = run(|t| {
            for i in 0..10 {
                insert(t, I, &k(i * 10, 100 + i, 0, 10)).unwrap();
            }
            insert(t, I, &k(15, 5, 0, 70)).unwrap();
        });
        assert_eq!(map, vec![k(0, 100, 0, 10), k(10, 101, 0, 5), k(15, 5, 0, 70), k(85, 108, 5, 5), k(90, 109, 0, 10)]);
        let freed_len: u64 = freed.iter().map(|f| f.len).sum();
        assert_eq!(freed_len, 70);
    }

    #[test]
    fn holes_stay_holes() {
        let (map, _) = run(|t| {
            insert(t, I, &k(1000, 1, 0, 10)).unwrap();
            insert(t, I, &k(0, 1, 10, 10)).unwrap();
        });
        assert_eq!(map, vec![k(0, 1, 10, 10), k(1000, 1, 0, 10)]);
    }

    #[test]
    fn truncate_trims_and_frees() {
        let (map, freed) = run(|t| {
            insert(t, I, &k(0, 1, 0, 100)).unwrap();
            insert(t, I, &k(200, 2, 0, 100)).unwrap();
            truncate(t, I, 50).unwrap();
        });
        assert_eq!(map, vec![k(0, 1, 0, 50)]);
        assert_eq!(freed, vec![k(50, 1, 50, 50), k(200, 2, 0, 100)]);
    }

    #[test]
    fn free_all_empties_the_map() {
        let (map, freed) = run(|t| {
            insert(t, I, &k(0, 1, 0, 100)).unwrap();
            insert(t, I, &k(300, 2, 0, 100)).unwrap();
            free_all(t, I).unwrap();
        });
        assert!(map.is_empty());
        assert_eq!(freed.len(), 2);
    }
}
