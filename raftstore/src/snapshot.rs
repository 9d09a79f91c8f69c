//! The snapshot file format: a group's keyspace as CRC-checked blocks, lz4-compressed or stored.
//!
//! ```text
//! "FRSNAP02"
//! block*: raw_len u32 | stored_len u32 | crc32(stored) u32 | kind u8 | stored bytes   (big-endian)
//!         kind 0: lz4 of the raw bytes; kind 1: the raw bytes (stored_len = raw_len)
//! end:    0 u32 | 0 u32 | 0 u32
//! a block holds pairs: key_len u32 | key | value_len u32 | value
//! ```
//! Keys and metadata compress well; file data (a data partition's extents, see
//! `crate::snapshot_send`) is written with [`SnapshotWriter::put_stored`], without lz4: most of it does
//! not compress, and lz4 over it cost more CPU than sending it. Files of format 1 ("FRSNAP01": no kind
//! byte, every block lz4) are still read.
//! openraft streams the file to a follower in chunks; the follower checks every block's CRC and the end
//! marker before anything replaces its state, so a torn or corrupted transfer is refused, never applied.

use std::io::{self, Read, Write};

const MAGIC: &[u8; 8] = b"FRSNAP02";
const MAGIC_V1: &[u8; 8] = b"FRSNAP01";
const KIND_LZ4: u8 = 0;
const KIND_STORED: u8 = 1;
/// Uncompressed block size: large enough for lz4 to work well, small enough to bound memory.
const BLOCK: usize = 1 << 20;
/// No block a writer produces is larger; a larger length in a file means corruption.
const MAX_BLOCK: usize = 64 << 20;

pub struct SnapshotWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    pairs: u64,
}

impl<W: Write> SnapshotWriter<W> {
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(MAGIC)?;
        Ok(SnapshotWriter { out, buf: Vec::with_capacity(BLOCK + 4096), pairs: 0 })
    }

    pub fn put(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        let (kl, vl) = (len32(key.len())?, len32(value.len())?);
        self.buf.extend_from_slice(&kl.to_be_bytes());
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(&vl.to_be_bytes());
        self.buf.extend_from_slice(value);
        self.pairs += 1;
        if self.buf.len() >= BLOCK {
            self.flush_block(KIND_LZ4)?;
        }
        Ok(())
    }

    /// Like [`SnapshotWriter::put`], in a block of its own that is not compressed (for file data).
    pub fn put_stored(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.flush_block(KIND_LZ4)?;
        self.put(key, value)?;
        self.flush_block(KIND_STORED)
    }

    fn flush_block(&mut self, kind: u8) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let comp;
        let stored = match kind {
            KIND_LZ4 => {
                comp = lz4_flex::block::compress(&self.buf);
                &comp[..]
            }
            _ => &self.buf[..],
        };
        self.out.write_all(&len32(self.buf.len())?.to_be_bytes())?;
        self.out.write_all(&len32(stored.len())?.to_be_bytes())?;
        self.out.write_all(&crc32fast::hash(stored).to_be_bytes())?;
        self.out.write_all(&[kind])?;
        self.out.write_all(stored)?;
        self.buf.clear();
        Ok(())
    }

    /// Writes the end marker and returns the sink and the number of pairs written.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.flush_block(KIND_LZ4)?;
        self.out.write_all(&[0u8; 12])?;
        self.out.flush()?;
        Ok((self.out, self.pairs))
    }
}

fn len32(n: usize) -> io::Result<u32> {
    u32::try_from(n).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "record over 4 GiB"))
}

fn corrupt(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("snapshot: {msg}"))
}

/// Reads pairs back; every block is verified before any of its pairs is returned.
pub struct SnapshotReader<R: Read> {
    input: R,
    /// Format 1: no kind byte, every block lz4.
    v1: bool,
    block: Vec<u8>,
    pos: usize,
    done: bool,
}

impl<R: Read> SnapshotReader<R> {
    pub fn new(mut input: R) -> io::Result<Self> {
        let mut magic = [0u8; 8];
        input.read_exact(&mut magic).map_err(|e| corrupt(format!("no header: {e}")))?;
        let v1 = &magic == MAGIC_V1;
        if &magic != MAGIC && !v1 {
            return Err(corrupt(format!("bad magic {magic:?}")));
        }
        Ok(SnapshotReader { input, v1, block: Vec::new(), pos: 0, done: false })
    }

    fn next_block(&mut self) -> io::Result<bool> {
        let mut h = [0u8; 12];
        self.input.read_exact(&mut h).map_err(|e| corrupt(format!("truncated (no end marker): {e}")))?;
        let raw = u32::from_be_bytes(h[0..4].try_into().expect("4")) as usize;
        let comp = u32::from_be_bytes(h[4..8].try_into().expect("4")) as usize;
        let crc = u32::from_be_bytes(h[8..12].try_into().expect("4"));
        if raw == 0 && comp == 0 {
            return Ok(false);
        }
        if raw > MAX_BLOCK || comp > MAX_BLOCK {
            return Err(corrupt(format!("block length {raw}/{comp} too large")));
        }
        let mut kind = [KIND_LZ4];
        if !self.v1 {
            self.input.read_exact(&mut kind).map_err(|e| corrupt(format!("truncated block: {e}")))?;
        }
        let mut data = vec![0u8; comp];
        self.input.read_exact(&mut data).map_err(|e| corrupt(format!("truncated block: {e}")))?;
        let actual = crc32fast::hash(&data);
        if actual != crc {
            return Err(corrupt(format!("block checksum {actual:#x} != {crc:#x}")));
        }
        self.block = match kind[0] {
            KIND_LZ4 => lz4_flex::block::decompress(&data, raw).map_err(|e| corrupt(format!("lz4: {e}")))?,
            KIND_STORED if comp == raw => data,
            k => return Err(corrupt(format!("block kind {k} ({raw} bytes raw, {comp} stored)"))),
        };
        self.pos = 0;
        Ok(true)
    }

    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.block.len() - self.pos < n {
            return Err(corrupt("pair crosses block end".into()));
        }
        let s = &self.block[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// The next pair, `None` after the end marker.
    pub fn next_pair(&mut self) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
        while !self.done && self.pos >= self.block.len() {
            if !self.next_block()? {
                self.done = true;
            }
        }
        if self.done {
            return Ok(None);
        }
        let kl = u32::from_be_bytes(self.take(4)?.try_into().expect("4")) as usize;
        let k = self.take(kl)?.to_vec();
        let vl = u32::from_be_bytes(self.take(4)?.try_into().expect("4")) as usize;
        let v = self.take(vl)?.to_vec();
        Ok(Some((k, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        let mut w = SnapshotWriter::new(Vec::new()).unwrap();
        for (k, v) in pairs {
            w.put(k, v).unwrap();
        }
        w.finish().unwrap().0
    }

    fn read_all(bytes: &[u8]) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut r = SnapshotReader::new(bytes)?;
        let mut out = Vec::new();
        while let Some(p) = r.next_pair()? {
            out.push(p);
        }
        Ok(out)
    }

    #[test]
    fn round_trip_many_blocks() {
        let pairs: Vec<_> = (0..30_000u32)
            .map(|i| (format!("key{i:08}").into_bytes(), vec![(i % 251) as u8; (i % 200) as usize]))
            .collect();
        let bytes = write(&pairs);
        assert_eq!(read_all(&bytes).unwrap(), pairs);
        assert_eq!(read_all(&write(&[])).unwrap(), vec![]);
    }

    #[test]
    fn stored_blocks_mix_with_compressed_ones_and_format_1_is_still_read() {
        let mut w = SnapshotWriter::new(Vec::new()).unwrap();
        w.put(b"a", &[1u8; 1000]).unwrap();
        w.put_stored(b"file", &[2u8; 100_000]).unwrap();
        w.put(b"b", b"x").unwrap();
        let bytes = w.finish().unwrap().0;
        let want = vec![
            (b"a".to_vec(), vec![1u8; 1000]),
            (b"file".to_vec(), vec![2u8; 100_000]),
            (b"b".to_vec(), b"x".to_vec()),
        ];
        assert_eq!(read_all(&bytes).unwrap(), want);
        assert!(bytes.len() > 100_000, "the stored pair is not compressed");

        // Format 1, as its writer made it: one lz4 block without a kind byte.
        let mut block = Vec::new();
        for (k, v) in [(&b"k"[..], &b"old"[..])] {
            block.extend_from_slice(&(k.len() as u32).to_be_bytes());
            block.extend_from_slice(k);
            block.extend_from_slice(&(v.len() as u32).to_be_bytes());
            block.extend_from_slice(v);
        }
        let comp = lz4_flex::block::compress(&block);
        let mut v1 = MAGIC_V1.to_vec();
        v1.extend_from_slice(&(block.len() as u32).to_be_bytes());
        v1.extend_from_slice(&(comp.len() as u32).to_be_bytes());
        v1.extend_from_slice(&crc32fast::hash(&comp).to_be_bytes());
        v1.extend_from_slice(&comp);
        v1.extend_from_slice(&[0u8; 12]);
        assert_eq!(read_all(&v1).unwrap(), vec![(b"k".to_vec(), b"old".to_vec())]);
    }

    #[test]
    fn corruption_and_truncation_are_refused() {
        let pairs: Vec<_> = (0..1000u32).map(|i| (i.to_be_bytes().to_vec(), vec![7u8; 100])).collect();
        let bytes = write(&pairs);
        let mut flipped = bytes.clone();
        flipped[30] ^= 0x40;
        assert!(read_all(&flipped).is_err());
        let truncated = &bytes[..bytes.len() - 12];
        let err = read_all(truncated).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        assert!(read_all(b"NOTASNAPxxxx").is_err());
    }
}
