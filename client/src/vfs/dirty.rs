//! Written bytes not yet sent to the datanodes: a set of disjoint byte ranges.
//!
//! Small writes (a 4 KiB-write workload) land here and leave as a few large extent writes. Overlapping
//! and touching writes merge, so a sequential writer builds one growing buffer and pays one copy per
//! byte; the common "append at the end" case extends the buffer in place.

use std::collections::BTreeMap;

use bytes::Bytes;

#[derive(Debug, Default)]
pub struct Dirty {
    ranges: BTreeMap<u64, Vec<u8>>,
    bytes: usize,
}

impl Dirty {
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Buffered bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    #[cfg(test)]
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    /// The end of the last buffered range.
    pub fn end(&self) -> Option<u64> {
        self.ranges.iter().next_back().map(|(s, b)| s + b.len() as u64)
    }

    pub fn write(&mut self, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let end = offset + data.len() as u64;
        // Every range that overlaps or touches [offset, end] merges into one.
        let touching: Vec<u64> = self
            .ranges
            .range(..=end)
            .rev()
            .take_while(|(s, b)| **s + b.len() as u64 >= offset)
            .map(|(s, _)| *s)
            .collect();
        let Some(&first) = touching.last() else {
            self.ranges.insert(offset, data.to_vec());
            self.bytes += data.len();
            return;
        };
        let start = first.min(offset);
        let last_end = touching.iter().map(|s| s + self.ranges[s].len() as u64).max().unwrap_or(end);
        let new_len = (end.max(last_end) - start) as usize;
        // Reuse the buffer of the range that starts the merged one, so appending never copies old bytes.
        let mut buf = if first == start {
            let b = self.ranges.remove(&first).expect("listed");
            self.bytes -= b.len();
            b
        } else {
            Vec::new()
        };
        if (offset - start) as usize == buf.len() && touching.len() == 1 && first == start {
            buf.extend_from_slice(data);
        } else {
            buf.resize(new_len.max(buf.len()), 0);
            for s in touching.iter().filter(|s| **s != start || first != start) {
                let b = self.ranges.remove(s).expect("listed");
                self.bytes -= b.len();
                let at = (s - start) as usize;
                buf[at..at + b.len()].copy_from_slice(&b);
            }
            let at = (offset - start) as usize;
            buf[at..at + data.len()].copy_from_slice(data);
        }
        self.bytes += buf.len();
        self.ranges.insert(start, buf);
    }

    /// Copies buffered bytes over `out`, which holds the file's bytes from `offset`.
    pub fn overlay(&self, offset: u64, out: &mut [u8]) {
        overlay(self.ranges.iter().map(|(s, b)| (*s, b.as_slice())), offset, out);
    }

    /// Drops what lies at or past `size`.
    pub fn truncate(&mut self, size: u64) {
        let past: Vec<u64> = self.ranges.range(size..).map(|(s, _)| *s).collect();
        for s in past {
            self.bytes -= self.ranges.remove(&s).expect("listed").len();
        }
        if let Some((s, b)) = self.ranges.range_mut(..size).next_back() {
            let keep = (size - s) as usize;
            if b.len() > keep {
                self.bytes -= b.len() - keep;
                b.truncate(keep);
            }
        }
    }

    /// Everything buffered, in offset order, leaving the buffer empty.
    pub fn take(&mut self) -> Vec<(u64, Bytes)> {
        self.bytes = 0;
        std::mem::take(&mut self.ranges).into_iter().map(|(s, b)| (s, Bytes::from(b))).collect()
    }
}

/// Copies each `(start, bytes)` range over the part of `out` (the file from `offset`) it covers.
pub fn overlay<'a>(ranges: impl IntoIterator<Item = (u64, &'a [u8])>, offset: u64, out: &mut [u8]) {
    let end = offset + out.len() as u64;
    for (s, b) in ranges {
        let e = s + b.len() as u64;
        if e <= offset || s >= end {
            continue;
        }
        let from = offset.max(s);
        let to = end.min(e);
        out[(from - offset) as usize..(to - offset) as usize]
            .copy_from_slice(&b[(from - s) as usize..(to - s) as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain byte-array model to check the buffer against.
    fn model_check(writes: &[(u64, Vec<u8>)]) {
        let mut d = Dirty::default();
        let mut model = vec![None::<u8>; 256];
        for (off, data) in writes {
            d.write(*off, data);
            for (i, b) in data.iter().enumerate() {
                model[*off as usize + i] = Some(*b);
            }
        }
        let mut out = vec![0xEEu8; 256];
        d.overlay(0, &mut out);
        for (i, m) in model.iter().enumerate() {
            assert_eq!(out[i], m.unwrap_or(0xEE), "byte {i} after {writes:?}");
        }
        assert_eq!(d.bytes(), model.iter().filter(|m| m.is_some()).count());
        // Ranges are disjoint and never touch.
        let taken = d.take();
        for w in taken.windows(2) {
            assert!(w[0].0 + (w[0].1.len() as u64) < w[1].0, "{taken:?}");
        }
    }

    #[test]
    fn merges_like_a_byte_array() {
        model_check(&[(0, vec![1; 10]), (10, vec![2; 10])]);
        model_check(&[(10, vec![1; 10]), (0, vec![2; 10])]);
        model_check(&[(10, vec![1; 10]), (5, vec![2; 30])]);
        model_check(&[(0, vec![1; 10]), (20, vec![2; 10]), (40, vec![3; 10]), (5, vec![4; 40])]);
        model_check(&[(0, vec![1; 10]), (20, vec![2; 10]), (15, vec![3; 2])]);
        model_check(&[(50, vec![1; 10]), (0, vec![2; 5]), (52, vec![3; 2]), (60, vec![4; 1])]);
        model_check(&[(100, vec![9; 50]), (120, vec![8; 5])]);
    }

    #[test]
    fn sequential_small_writes_become_one_range() {
        let mut d = Dirty::default();
        for i in 0..1000u64 {
            d.write(i * 4096, &[i as u8; 4096]);
        }
        assert_eq!(d.range_count(), 1);
        assert_eq!(d.bytes(), 4096 * 1000);
        assert_eq!(d.end(), Some(4096 * 1000));
        let taken = d.take();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].1[4096 * 999], 231);
        assert!(d.is_empty());
    }

    #[test]
    fn truncate_trims_and_drops() {
        let mut d = Dirty::default();
        d.write(0, &[1; 10]);
        d.write(20, &[2; 10]);
        d.truncate(5);
        assert_eq!(d.bytes(), 5);
        assert_eq!(d.end(), Some(5));
        d.truncate(0);
        assert!(d.is_empty());
    }
}
