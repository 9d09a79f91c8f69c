//! Space: statfs, fallocate (preallocate, punch hole, zero range), lseek SEEK_DATA/SEEK_HOLE.

use bytes::Bytes;
use ferrum_proto::ErrorCode;
use ferrum_proto::InodeId;

use super::extent_map::Segment;
use super::{Fh, Vfs};
use crate::backend::{DataBackend, MetaBackend};
use crate::error::{FsError, Result};

/// Reported when the data side cannot tell the volume's size: large enough never to stop an
/// application that checks free space first.
pub const UNKNOWN_CAPACITY: u64 = 1 << 50;
/// Most free inodes reported: more confuses tools that print it, and is never the limit in practice.
const FREE_INODES: u64 = 1 << 32;
pub const BLOCK_SIZE: u32 = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatFs {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
    pub namelen: u32,
    pub frsize: u32,
}

/// `fallocate(2)` modes this filesystem implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FallocateMode(pub i32);

impl FallocateMode {
    pub fn keep_size(self) -> bool {
        self.0 & libc::FALLOC_FL_KEEP_SIZE != 0
    }
    pub fn punch_hole(self) -> bool {
        self.0 & libc::FALLOC_FL_PUNCH_HOLE != 0
    }
    pub fn zero_range(self) -> bool {
        self.0 & libc::FALLOC_FL_ZERO_RANGE != 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whence {
    Data,
    Hole,
}

impl<M: MetaBackend, D: DataBackend> Vfs<M, D> {
    pub async fn statfs(&self) -> Result<StatFs> {
        let usage = self.inner.meta.stat_fs().await?;
        let total = self.inner.data.capacity().await?.unwrap_or(UNKNOWN_CAPACITY);
        let free = total.saturating_sub(usage.bytes);
        let free_inodes = usage.free_inodes.unwrap_or(FREE_INODES).min(FREE_INODES);
        let bs = u64::from(BLOCK_SIZE);
        Ok(StatFs {
            blocks: total / bs,
            bfree: free / bs,
            bavail: free / bs,
            files: usage.inodes + free_inodes,
            ffree: free_inodes,
            bsize: BLOCK_SIZE,
            namelen: ferrum_proto::msg::name::Name::MAX_LEN as u32,
            frsize: BLOCK_SIZE,
        })
    }

    /// Allocation is thin (space is taken when written), so plain preallocation only sets the size.
    /// Punching and zeroing free the covered extent bytes on the datanodes. Collapse, insert and
    /// unshare are not supported.
    pub async fn fallocate(&self, fh: Fh, offset: u64, len: u64, mode: FallocateMode) -> Result<()> {
        let known = libc::FALLOC_FL_KEEP_SIZE | libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_ZERO_RANGE;
        if mode.0 & !known != 0 || (mode.punch_hole() && (!mode.keep_size() || mode.zero_range())) {
            return Err(ErrorCode::NotSupported.into());
        }
        let h = self.file(fh)?;
        let node = &h.node;
        self.flush_node(node).await?;
        let end = offset.checked_add(len).ok_or(ErrorCode::FileTooBig)?;
        {
            let _serial = node.flush_lock.lock().await;
            self.load_extents_locked(node).await?;
        }
        let size = node.lock().size().unwrap_or(0);
        let inline_len = node.lock().inline.as_ref().map(|b| b.len() as u64);
        if let (Some(n), true) = (inline_len, mode.punch_hole() || mode.zero_range()) {
            // A small file's bytes are inline: zero them there (past them the file already reads as
            // zeros).
            if offset < n {
                let zeros = vec![0u8; (end.min(n) - offset) as usize];
                node.lock().dirty.write(offset, &zeros);
                self.flush_node(node).await?;
            }
        } else if mode.punch_hole() || mode.zero_range() {
            let segments = match &node.lock().extents {
                Some((map, _)) => map.resolve(offset, end.min(size).saturating_sub(offset)),
                None => Vec::new(),
            };
            for seg in segments {
                if let Segment::Data { len, at, extent_offset, .. } = seg {
                    match self.inner.data.punch_hole(at, extent_offset, len).await {
                        Ok(()) => {}
                        // A datanode without hole punching: write the zeros instead.
                        Err(ErrorCode::NotSupported) => self.write_zeros(at, extent_offset, len).await?,
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            node.lock().data_changed();
        }
        if !mode.keep_size() && end > size {
            self.inner.meta.truncate(node.ino, end).await?;
            self.truncated(node, end);
        }
        self.inner.attrs.invalidate(node.ino);
        Ok(())
    }

    async fn write_zeros(&self, at: crate::backend::ExtentAddr, offset: u64, len: u64) -> Result<()> {
        let chunk = self.inner.cfg.io_chunk as u64;
        let zeros = Bytes::from(vec![0u8; chunk.min(len) as usize]);
        let mut pos = 0;
        while pos < len {
            let take = chunk.min(len - pos);
            self.inner.data.write(at, offset + pos, zeros.slice(..take as usize)).await?;
            pos += take;
        }
        Ok(())
    }

    /// `SEEK_DATA`/`SEEK_HOLE`: the end of the file counts as a hole; at or past it is `ENXIO`.
    pub async fn lseek(&self, fh: Fh, offset: u64, whence: Whence) -> Result<u64> {
        let h = self.file(fh)?;
        let node = &h.node;
        self.flush_node(node).await?;
        {
            let _serial = node.flush_lock.lock().await;
            self.load_extents_locked(node).await?;
        }
        let d = node.lock();
        let size = d.size().unwrap_or(0);
        if offset >= size {
            return Err(FsError::PastEof);
        }
        let map = &d.extents.as_ref().expect("loaded above").0;
        if d.inline.is_some() {
            // Inline bytes count as data up to the end (allowed: holes may be reported as data).
            return Ok(match whence {
                Whence::Data => offset,
                Whence::Hole => size,
            });
        }
        match whence {
            Whence::Data => match map.next_data(offset) {
                Some(o) if o < size => Ok(o),
                _ => Err(FsError::PastEof),
            },
            Whence::Hole => Ok(map.next_hole(offset).min(size)),
        }
    }

    /// For tests: the inode behind a handle.
    pub fn handle_inode(&self, fh: Fh) -> Result<InodeId> {
        Ok(self.file(fh)?.node.ino)
    }
}
