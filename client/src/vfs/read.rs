//! Reads: resolve the range against the extent map, fetch the pieces from the datanodes in parallel,
//! then lay this client's unflushed writes over them.
//!
//! Sequential readers are served through read-ahead blocks: fetched ahead of the reader, a window that
//! doubles with every sequential read up to `readahead_max`, shared by all handles on the inode, dropped
//! once the reader has passed them. Random readers read exactly what they ask for (the kernel's page
//! cache keeps it).
//!
//! A read races with flushes (a flush moves bytes from the buffer into extents): it notes the node's
//! `data_gen` before fetching and overlays under the lock only if no flush finished meanwhile, else it
//! starts over.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::try_join_all;
use tokio::sync::OnceCell;

use super::extent_map::Segment;
use super::open_inode::{Block, InodeData, OpenInode};
use super::{Fh, Vfs};
use crate::backend::{DataBackend, MetaBackend};
use crate::error::Result;

/// Restarts allowed when flushes keep finishing under a read; the last attempt's bytes are returned.
const MAX_READ_ATTEMPTS: usize = 8;

impl<M: MetaBackend, D: DataBackend> Vfs<M, D> {
    /// Loads the extent map if needed, waiting for a flush in progress (see `load_extents_locked`).
    async fn ensure_extents(&self, node: &OpenInode) -> Result<()> {
        if node.lock().extents.is_some() {
            return Ok(());
        }
        let _serial = node.flush_lock.lock().await;
        self.load_extents_locked(node).await
    }

    pub async fn read(&self, fh: Fh, offset: u64, len: u32) -> Result<Bytes> {
        let h = self.file(fh)?;
        let node = &h.node;
        let cfg = &self.inner.cfg;
        let streak = {
            let mut p = h.pattern.lock().expect("read pattern lock");
            // Within a block of where the last read ended counts as sequential: the kernel's own
            // read-ahead and several FUSE threads deliver a sequential stream slightly out of order.
            let near = offset <= p.next + cfg.readahead_block && offset + cfg.readahead_block >= p.next;
            p.streak = if near { p.streak + 1 } else { 0 };
            p.next = if near { p.next.max(offset + u64::from(len)) } else { offset + u64::from(len) };
            p.streak
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.ensure_extents(node).await?;
            let (gen, size) = {
                let d = node.lock();
                match d.size() {
                    Some(size) => (d.data_gen, size),
                    // An open elsewhere dropped the map in between: load it again.
                    None if attempt < MAX_READ_ATTEMPTS => continue,
                    None => return Err(ferrum_proto::ErrorCode::Busy.into()),
                }
            };
            if offset >= size || len == 0 {
                return Ok(Bytes::new());
            }
            let n = u64::from(len).min(size - offset);
            let fetched = if streak > 0 && cfg.readahead_max > 0 {
                self.read_ahead(node, gen, offset, n, size, streak).await?
            } else {
                self.read_extents(node, offset, n).await?
            };
            let d = node.lock();
            if d.data_gen != gen && attempt < MAX_READ_ATTEMPTS {
                continue;
            }
            if !d.has_unflushed() && fetched.len() as u64 == n {
                return Ok(fetched);
            }
            let mut out = vec![0u8; n as usize];
            out[..fetched.len()].copy_from_slice(&fetched);
            d.overlay(offset, &mut out);
            return Ok(Bytes::from(out));
        }
    }

    /// The stored bytes of `[offset, offset + len)`, zeros for holes; may be short if the extents are
    /// (the caller pads).
    async fn read_extents(&self, node: &OpenInode, offset: u64, len: u64) -> Result<Bytes> {
        let segments = {
            let d = node.lock();
            if let Some(inline) = &d.inline {
                // A small file: its bytes came with the map (zeros past them, which the caller pads).
                let from = (offset as usize).min(inline.len());
                return Ok(inline.slice(from..(offset + len).min(inline.len() as u64) as usize));
            }
            match &d.extents {
                Some((map, _)) => map.resolve(offset, len),
                None => return Ok(Bytes::new()),
            }
        };
        let chunk = self.inner.cfg.io_chunk as u64;
        // The common case: one piece of one extent, returned without a copy.
        if let [Segment::Data { at, extent_offset, len: seg_len, .. }] = segments.as_slice() {
            if *seg_len <= chunk {
                return Ok(self.inner.data.read(*at, *extent_offset, *seg_len as u32).await?);
            }
        }
        let mut reads = Vec::new();
        for seg in segments {
            if let Segment::Data { file_offset, len, at, extent_offset } = seg {
                let mut pos = 0;
                while pos < len {
                    let take = chunk.min(len - pos);
                    reads.push((file_offset + pos - offset, at, extent_offset + pos, take));
                    pos += take;
                }
            }
        }
        let data = &self.inner.data;
        let pieces = try_join_all(reads.iter().map(|(_, at, eoff, take)| data.read(*at, *eoff, *take as u32))).await?;
        let mut out = vec![0u8; len as usize];
        for ((dst, ..), bytes) in reads.iter().zip(pieces) {
            let dst = *dst as usize;
            let n = bytes.len().min(out.len() - dst);
            out[dst..dst + n].copy_from_slice(&bytes[..n]);
        }
        Ok(Bytes::from(out))
    }

    /// Serves `[offset, offset + len)` from read-ahead blocks, fetching missing ones and starting the
    /// fetch of the window ahead.
    async fn read_ahead(
        &self,
        node: &Arc<OpenInode>,
        gen: u64,
        offset: u64,
        len: u64,
        size: u64,
        streak: u32,
    ) -> Result<Bytes> {
        let cfg = &self.inner.cfg;
        let bs = cfg.readahead_block;
        let window = (bs << streak.min(16)).min(cfg.readahead_max);
        let last = (offset + len - 1) / bs * bs;
        let ahead_end = (offset + len + window).min(size);
        let planned = {
            let mut d = node.lock();
            (d.data_gen == gen).then(|| plan_blocks(&mut d, gen, bs, offset, last, ahead_end))
        };
        // A flush finished since the caller looked: blocks would be stale; read directly (the caller
        // sees the new generation and starts over anyway).
        let Some((needed, spawn)) = planned else { return self.read_extents(node, offset, len).await };
        for (start, block) in spawn {
            let (vfs, node) = (self.clone(), node.clone());
            let blen = bs.min(size - start);
            tokio::spawn(async move {
                let _ = block.get_or_init(|| async { vfs.read_extents(&node, start, blen).await }).await;
            });
        }
        let mut out = vec![0u8; len as usize];
        for (start, block) in needed {
            let blen = bs.min(size.saturating_sub(start));
            let bytes = match block.get_or_init(|| async { self.read_extents(node, start, blen).await }).await {
                Ok(b) => b.clone(),
                Err(e) => {
                    node.lock().blocks.remove(&start);
                    return Err(e.clone());
                }
            };
            let from = offset.max(start);
            let to = (offset + len).min(start + bytes.len() as u64);
            if from < to {
                out[(from - offset) as usize..(to - offset) as usize]
                    .copy_from_slice(&bytes[(from - start) as usize..(to - start) as usize]);
            }
        }
        Ok(Bytes::from(out))
    }
}

/// Picks the blocks a read of `[offset, last block]` needs and the read-ahead ones (up to `ahead_end`)
/// to start, creating the missing cells; forgets blocks behind the reader or from an older generation.
#[allow(clippy::type_complexity)]
fn plan_blocks(
    d: &mut InodeData,
    gen: u64,
    bs: u64,
    offset: u64,
    last: u64,
    ahead_end: u64,
) -> (Vec<(u64, Block)>, Vec<(u64, Block)>) {
    d.blocks.retain(|start, (g, _)| *g == gen && start + bs > offset);
    let mut needed = Vec::new();
    let mut spawn = Vec::new();
    let mut b = offset / bs * bs;
    while b < ahead_end.max(last + 1) {
        let (fresh, block) = match d.blocks.get(&b) {
            Some((_, block)) => (false, block.clone()),
            None => {
                let block: Block = Arc::new(OnceCell::new());
                d.blocks.insert(b, (gen, block.clone()));
                (true, block)
            }
        };
        if b <= last {
            needed.push((b, block));
        } else if fresh {
            spawn.push((b, block));
        }
        b += bs;
    }
    (needed, spawn)
}
