//! CRC blocks: the unit of checksumming, and the 16-byte record the sidecar file keeps per block.
//!
//! Block size: 4 KiB, the page size. Every read verifies whole blocks, and a write that covers only
//! part of a block re-reads the rest of it to recompute its CRC. At 4 KiB a page-aligned write (what
//! the kernel and the client send) never re-reads anything, and a 4 KiB random read reads 4 KiB, not
//! a larger block, from the disk: with 64 KiB blocks, random 4 KiB writes on files larger than the page
//! cache cost a disk read each. The sidecar is 16 bytes per block: 0.4% of the data (4 MiB per GiB),
//! still small enough for the page cache; the CRC work per byte is the same at any block size.
//!
//! Record layout (big-endian): `crc u32 | flags u32 | index u64`.
//! - `index` is the Raft log index of the mutation that last wrote the block. Replicas apply the same
//!   log, so two replicas' copies of a block at the same index must be identical: that is how a repair
//!   knows a peer's copy is the version it lost. 0 means a hole: the block reads as zeros.
//! - `crc` is the CRC32 of the block's bytes, whose length is `min(BLOCK_SIZE, size - block start)`.
//! - `flags`: [`FLAG_SUSPECT`] when the CRC was computed over bytes that could not be verified.

use std::ops::Range;

pub const BLOCK_SIZE: u64 = 4 * 1024;
pub const ENTRY_LEN: usize = 16;

/// The block's CRC covers bytes that were merged with an old copy that failed its own check (a
/// partial write onto a corrupt block), or that a restart found half-written; it must be confirmed by
/// a peer holding the same version before it is served.
pub const FLAG_SUSPECT: u32 = 1;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockEntry {
    pub crc: u32,
    pub flags: u32,
    pub index: u64,
}

impl BlockEntry {
    pub const HOLE: BlockEntry = BlockEntry { crc: 0, flags: 0, index: 0 };

    pub fn written(index: u64, content: &[u8]) -> BlockEntry {
        BlockEntry { crc: crc32fast::hash(content), flags: 0, index }
    }

    pub fn is_hole(&self) -> bool {
        *self == BlockEntry::HOLE
    }

    pub fn is_suspect(&self) -> bool {
        self.flags & FLAG_SUSPECT != 0
    }

    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        b[0..4].copy_from_slice(&self.crc.to_be_bytes());
        b[4..8].copy_from_slice(&self.flags.to_be_bytes());
        b[8..16].copy_from_slice(&self.index.to_be_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> BlockEntry {
        BlockEntry {
            crc: u32::from_be_bytes(b[0..4].try_into().expect("4 bytes")),
            flags: u32::from_be_bytes(b[4..8].try_into().expect("4 bytes")),
            index: u64::from_be_bytes(b[8..16].try_into().expect("8 bytes")),
        }
    }

    /// Whether `content` (the block's bytes as stored) is what this record describes. A suspect block
    /// never verifies on its own.
    pub fn verifies(&self, content: &[u8]) -> bool {
        if self.is_suspect() {
            return false;
        }
        if self.is_hole() {
            return content.iter().all(|&b| b == 0);
        }
        crc32fast::hash(content) == self.crc
    }
}

/// Number of blocks of an extent of `size` bytes.
pub fn blocks_for(size: u64) -> u64 {
    size.div_ceil(BLOCK_SIZE)
}

/// Byte range of block `b` in an extent of `size` bytes (shorter for the last block).
pub fn block_range(b: u64, size: u64) -> Range<u64> {
    let start = b * BLOCK_SIZE;
    start..(start + BLOCK_SIZE).min(size).max(start)
}

/// Blocks overlapping `range` (empty for an empty range).
pub fn blocks_of(range: Range<u64>) -> Range<u64> {
    if range.start >= range.end {
        return 0..0;
    }
    range.start / BLOCK_SIZE..(range.end - 1) / BLOCK_SIZE + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_round_trip_and_hole() {
        let e = BlockEntry { crc: 0xdead_beef, flags: FLAG_SUSPECT, index: 42 };
        assert_eq!(BlockEntry::decode(&e.encode()), e);
        assert!(BlockEntry::decode(&[0u8; 16]).is_hole());
        assert!(BlockEntry::HOLE.verifies(&[0u8; 100]));
        assert!(!BlockEntry::HOLE.verifies(&[0, 1]));
        assert!(!e.verifies(b"anything"));
        let w = BlockEntry::written(3, b"abc");
        assert!(w.verifies(b"abc") && !w.verifies(b"abd"));
    }

    #[test]
    fn ranges() {
        assert_eq!(blocks_for(0), 0);
        assert_eq!(blocks_for(1), 1);
        assert_eq!(blocks_for(BLOCK_SIZE), 1);
        assert_eq!(blocks_for(BLOCK_SIZE + 1), 2);
        assert_eq!(block_range(1, BLOCK_SIZE + 10), BLOCK_SIZE..BLOCK_SIZE + 10);
        assert_eq!(block_range(0, 5), 0..5);
        assert_eq!(blocks_of(0..0), 0..0);
        assert_eq!(blocks_of(0..1), 0..1);
        assert_eq!(blocks_of(BLOCK_SIZE - 1..BLOCK_SIZE + 1), 0..2);
        assert_eq!(blocks_of(BLOCK_SIZE..2 * BLOCK_SIZE), 1..2);
    }
}
