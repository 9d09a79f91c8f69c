//! A data partition's directory on disk, and the small files that make its state crash-safe.
//!
//! ```text
//! <data-dir>/partitions/<partition>/
//!   FORMAT            "ferrum-datanode-partition <version> block_size <n>", written once
//!   CURRENT           the name of the live generation, e.g. "gen-3"; replaced atomically
//!   gen-<n>/extents/  <extent>.ext (sparse data) and <extent>.crc (one record per block)
//!   gen-<n>/SYNCED    log index up to which the extents are known to be on disk (fsynced)
//!   gen-<n+1>/        a snapshot being restored: BASE, COMPLETE, extents/ (see `restore`)
//! ```
//!
//! A generation is only ever made live by rewriting CURRENT (write, fsync, rename, fsync the dir), so a
//! crash leaves either the old or the new one live, never a mix.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::block::BLOCK_SIZE;

pub const FORMAT_VERSION: u32 = 1;
const FORMAT: &str = "FORMAT";
const CURRENT: &str = "CURRENT";
const SYNCED: &str = "SYNCED";
pub const EXTENTS: &str = "extents";

fn format_line() -> String {
    format!("ferrum-datanode-partition {FORMAT_VERSION} block_size {BLOCK_SIZE}\n")
}

fn ctx(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// fsyncs a directory, so that entries created, renamed or removed in it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| ctx(dir, e))
}

/// Replaces `path` with `content` atomically and durably.
pub fn write_atomic(path: &Path, content: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(|e| ctx(&tmp, e))?;
    f.write_all(content).and_then(|_| f.sync_all()).map_err(|e| ctx(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| ctx(path, e))?;
    sync_dir(path.parent().expect("file in a dir"))
}

/// Paths of one partition.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: PathBuf) -> Layout {
        Layout { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn gen_dir(&self, gen: u64) -> PathBuf {
        self.root.join(format!("gen-{gen}"))
    }

    pub fn extents_dir(&self, gen: u64) -> PathBuf {
        self.gen_dir(gen).join(EXTENTS)
    }

    /// Opens the partition dir, creating generation 1 on first use; returns the live generation.
    /// Refuses a dir written with another format or block size.
    pub fn open_or_create(&self) -> io::Result<u64> {
        fs::create_dir_all(&self.root).map_err(|e| ctx(&self.root, e))?;
        let format = self.root.join(FORMAT);
        match fs::read_to_string(&format) {
            Ok(s) if s == format_line() => {}
            Ok(s) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: found {:?}, this build writes {:?}", format.display(), s.trim(), format_line().trim()),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => write_atomic(&format, format_line().as_bytes())?,
            Err(e) => return Err(ctx(&format, e)),
        }
        match self.current()? {
            Some(gen) => Ok(gen),
            None => {
                fs::create_dir_all(self.extents_dir(1)).map_err(|e| ctx(&self.root, e))?;
                sync_dir(&self.gen_dir(1))?;
                self.set_current(1)?;
                Ok(1)
            }
        }
    }

    pub fn current(&self) -> io::Result<Option<u64>> {
        let path = self.root.join(CURRENT);
        match fs::read_to_string(&path) {
            Ok(s) => s.trim().strip_prefix("gen-").and_then(|n| n.parse().ok()).map(Some).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, format!("{}: bad content {s:?}", path.display()))
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ctx(&path, e)),
        }
    }

    /// Makes `gen` the live generation (atomic and durable).
    pub fn set_current(&self, gen: u64) -> io::Result<()> {
        write_atomic(&self.root.join(CURRENT), format!("gen-{gen}\n").as_bytes())
    }

    /// Generation numbers present on disk.
    pub fn generations(&self) -> io::Result<Vec<u64>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.root).map_err(|e| ctx(&self.root, e))? {
            let name = e?.file_name();
            if let Some(n) = name.to_str().and_then(|s| s.strip_prefix("gen-")).and_then(|n| n.parse().ok()) {
                out.push(n);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    pub fn remove_gen(&self, gen: u64) -> io::Result<()> {
        let dir = self.gen_dir(gen);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(ctx(&dir, e)),
            _ => Ok(()),
        }
    }

    /// The log index recorded by [`Layout::set_synced`] for `gen` (0 if none).
    pub fn synced(&self, gen: u64) -> io::Result<u64> {
        let path = self.gen_dir(gen).join(SYNCED);
        match fs::read(&path) {
            Ok(b) if b.len() == 12 && crc32fast::hash(&b[..8]).to_be_bytes() == b[8..12] => {
                Ok(u64::from_be_bytes(b[..8].try_into().expect("8 bytes")))
            }
            Ok(_) => Err(io::Error::new(io::ErrorKind::InvalidData, format!("{}: corrupt", path.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(ctx(&path, e)),
        }
    }

    pub fn set_synced(&self, gen: u64, index: u64) -> io::Result<()> {
        let mut b = index.to_be_bytes().to_vec();
        b.extend_from_slice(&crc32fast::hash(&b).to_be_bytes());
        write_atomic(&self.gen_dir(gen).join(SYNCED), &b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_reopen_and_generations() {
        let dir = tempfile::tempdir().unwrap();
        let l = Layout::new(dir.path().join("p1"));
        assert_eq!(l.open_or_create().unwrap(), 1);
        assert!(l.extents_dir(1).is_dir());
        assert_eq!(l.synced(1).unwrap(), 0);
        l.set_synced(1, 77).unwrap();
        assert_eq!(l.synced(1).unwrap(), 77);
        fs::create_dir_all(l.extents_dir(2)).unwrap();
        assert_eq!(l.generations().unwrap(), vec![1, 2]);
        l.set_current(2).unwrap();
        assert_eq!(l.open_or_create().unwrap(), 2);
        l.remove_gen(1).unwrap();
        assert_eq!(l.generations().unwrap(), vec![2]);
    }

    #[test]
    fn refuses_another_format() {
        let dir = tempfile::tempdir().unwrap();
        let l = Layout::new(dir.path().to_path_buf());
        fs::write(dir.path().join(FORMAT), "ferrum-datanode-partition 9 block_size 4096\n").unwrap();
        let e = l.open_or_create().unwrap_err().to_string();
        assert!(e.contains("FORMAT"), "{e}");
    }
}
