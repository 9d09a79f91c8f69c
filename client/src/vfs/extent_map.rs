//! A file's extent keys as a map from file offsets to the extent bytes that hold them.
//!
//! The metanode returns keys in the order they were appended, where later keys win over earlier ones;
//! resolving a read against that list would be O(keys) per read. This map applies each key once, keeping
//! non-overlapping pieces ordered by file offset, so a read resolves in O(log n + pieces touched), and
//! adjacent pieces of one extent merge (a file written sequentially in many flushes stays one piece).

use std::collections::BTreeMap;

use ferrum_proto::msg::extent::ExtentKey;

use crate::backend::ExtentAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Piece {
    len: u64,
    at: ExtentAddr,
    extent_offset: u64,
}

/// Part of a byte range: stored bytes, or a hole that reads as zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    Data { file_offset: u64, len: u64, at: ExtentAddr, extent_offset: u64 },
    Hole { file_offset: u64, len: u64 },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtentMap {
    /// Keyed by file offset; pieces never overlap.
    pieces: BTreeMap<u64, Piece>,
}

impl ExtentMap {
    pub fn new() -> ExtentMap {
        ExtentMap::default()
    }

    /// Applies `keys` in order (later keys win).
    pub fn from_keys<'a>(keys: impl IntoIterator<Item = &'a ExtentKey>) -> ExtentMap {
        let mut map = ExtentMap::new();
        for k in keys {
            map.insert(k);
        }
        map
    }

    pub fn piece_count(&self) -> usize {
        self.pieces.len()
    }

    /// Makes `key` visible over whatever covered its range before.
    pub fn insert(&mut self, key: &ExtentKey) {
        if key.len == 0 {
            return;
        }
        let (start, end) = (key.file_offset, key.file_end());
        self.cut(start, end);
        let at = ExtentAddr::of(key);
        let (mut start, mut piece) = (start, Piece { len: key.len, at, extent_offset: key.extent_offset });
        if let Some((&ls, lp)) = self.pieces.range(..start).next_back() {
            if ls + lp.len == start && lp.at == at && lp.extent_offset + lp.len == piece.extent_offset {
                piece = Piece { len: lp.len + piece.len, at, extent_offset: lp.extent_offset };
                self.pieces.remove(&ls);
                start = ls;
            }
        }
        if let Some(rp) = self.pieces.get(&end).copied() {
            if rp.at == at && piece.extent_offset + piece.len == rp.extent_offset {
                piece.len += rp.len;
                self.pieces.remove(&end);
            }
        }
        self.pieces.insert(start, piece);
    }

    /// Forgets everything at or past `size`.
    pub fn truncate(&mut self, size: u64) {
        self.cut(size, u64::MAX);
    }

    /// Removes coverage of `[start, end)`, splitting pieces that straddle its edges.
    fn cut(&mut self, start: u64, end: u64) {
        let hit: Vec<u64> =
            self.pieces.range(..end).rev().take_while(|(s, p)| **s + p.len > start).map(|(s, _)| *s).collect();
        for s in hit {
            let p = self.pieces.remove(&s).expect("listed above");
            let e = s + p.len;
            if s < start {
                self.pieces.insert(s, Piece { len: start - s, ..p });
            }
            if e > end {
                self.pieces.insert(end, Piece { len: e - end, extent_offset: p.extent_offset + (end - s), ..p });
            }
        }
    }

    /// `[offset, offset + len)` as data pieces and holes, in order, covering the range exactly.
    pub fn resolve(&self, offset: u64, len: u64) -> Vec<Segment> {
        let end = offset.saturating_add(len);
        let mut out = Vec::new();
        let mut pos = offset;
        let first = self.pieces.range(..=offset).next_back().map_or(offset, |(s, _)| *s);
        for (&s, p) in self.pieces.range(first..end) {
            let e = s + p.len;
            if e <= pos {
                continue;
            }
            if s > pos {
                out.push(Segment::Hole { file_offset: pos, len: s - pos });
                pos = s;
            }
            let seg_end = e.min(end);
            out.push(Segment::Data {
                file_offset: pos,
                len: seg_end - pos,
                at: p.at,
                extent_offset: p.extent_offset + (pos - s),
            });
            pos = seg_end;
        }
        if pos < end {
            out.push(Segment::Hole { file_offset: pos, len: end - pos });
        }
        out
    }

    /// The first offset at or after `offset` that holds data.
    pub fn next_data(&self, offset: u64) -> Option<u64> {
        if let Some((&s, p)) = self.pieces.range(..=offset).next_back() {
            if s + p.len > offset {
                return Some(offset);
            }
        }
        self.pieces.range(offset..).next().map(|(s, _)| *s)
    }

    /// The first offset at or after `offset` that holds no data (pieces may touch: skip over runs).
    pub fn next_hole(&self, offset: u64) -> u64 {
        let mut pos = offset;
        if let Some((&s, p)) = self.pieces.range(..=pos).next_back() {
            pos = pos.max(s + p.len);
        }
        while let Some(p) = self.pieces.get(&pos) {
            pos += p.len;
        }
        pos
    }
}

#[cfg(test)]
mod tests {
    use ferrum_proto::{ExtentId, PartitionId};

    use super::*;

    fn at(e: u64) -> ExtentAddr {
        ExtentAddr { partition: PartitionId(1), extent: ExtentId(e) }
    }

    fn key(file_offset: u64, e: u64, extent_offset: u64, len: u64) -> ExtentKey {
        ExtentKey { file_offset, partition: PartitionId(1), extent: ExtentId(e), extent_offset, len }
    }

    fn data(file_offset: u64, len: u64, e: u64, extent_offset: u64) -> Segment {
        Segment::Data { file_offset, len, at: at(e), extent_offset }
    }

    fn hole(file_offset: u64, len: u64) -> Segment {
        Segment::Hole { file_offset, len }
    }

    #[test]
    fn later_keys_win_and_split_earlier_ones() {
        let m = ExtentMap::from_keys(&[key(0, 1, 0, 100), key(40, 2, 0, 20)]);
        assert_eq!(m.resolve(0, 100), vec![data(0, 40, 1, 0), data(40, 20, 2, 0), data(60, 40, 1, 60)]);
        assert_eq!(m.resolve(50, 20), vec![data(50, 10, 2, 10), data(60, 10, 1, 60)]);
    }

    #[test]
    fn holes_between_and_after_pieces() {
        let m = ExtentMap::from_keys(&[key(10, 1, 0, 10), key(30, 1, 10, 10)]);
        assert_eq!(
            m.resolve(0, 50),
            vec![hole(0, 10), data(10, 10, 1, 0), hole(20, 10), data(30, 10, 1, 10), hole(40, 10)]
        );
        assert_eq!(ExtentMap::new().resolve(5, 5), vec![hole(5, 5)]);
    }

    #[test]
    fn sequential_appends_merge_into_one_piece() {
        let mut m = ExtentMap::new();
        for i in 0..100 {
            m.insert(&key(i * 4096, 7, i * 4096, 4096));
        }
        assert_eq!(m.piece_count(), 1);
        assert_eq!(m.resolve(0, 409_600), vec![data(0, 409_600, 7, 0)]);
        // Same file range but not contiguous in the extent: no merge.
        m.insert(&key(409_600, 7, 0, 10));
        assert_eq!(m.piece_count(), 2);
    }

    #[test]
    fn a_key_covering_several_pieces_replaces_them() {
        let mut m = ExtentMap::from_keys(&[key(0, 1, 0, 10), key(20, 2, 0, 10), key(40, 3, 0, 10)]);
        m.insert(&key(5, 4, 0, 40));
        assert_eq!(m.resolve(0, 50), vec![data(0, 5, 1, 0), data(5, 40, 4, 0), data(45, 5, 3, 5)]);
    }

    #[test]
    fn truncate_cuts_straddling_pieces() {
        let mut m = ExtentMap::from_keys(&[key(0, 1, 0, 100)]);
        m.truncate(30);
        assert_eq!(m.resolve(0, 100), vec![data(0, 30, 1, 0), hole(30, 70)]);
        m.truncate(0);
        assert_eq!(m.piece_count(), 0);
    }

    #[test]
    fn seek_data_and_hole() {
        let m = ExtentMap::from_keys(&[key(100, 1, 0, 50), key(150, 2, 0, 50), key(400, 3, 0, 10)]);
        assert_eq!(m.next_data(0), Some(100));
        assert_eq!(m.next_data(120), Some(120));
        assert_eq!(m.next_data(200), Some(400));
        assert_eq!(m.next_data(410), None);
        assert_eq!(m.next_hole(0), 0);
        assert_eq!(m.next_hole(100), 200, "touching pieces of different extents are one data run");
        assert_eq!(m.next_hole(405), 410);
    }
}
