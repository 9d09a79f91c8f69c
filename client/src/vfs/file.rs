//! Open files: open/create, write (into the per-file buffer), flush/fsync/release (which make it
//! durable). Reads are in `read.rs`, the write-out pipeline in `flush.rs`.

use std::sync::{Arc, Mutex};

use ferrum_proto::msg::attr::{FileKind, InodeAttr, Time};
use ferrum_proto::msg::meta::AttrResp;
use ferrum_proto::msg::name::Name;
use ferrum_proto::{ErrorCode, InodeId};

use super::extent_map::ExtentMap;
use super::handles::{FileHandle, ReadPattern};
use super::open_inode::OpenInode;
use super::{Cred, Fh, Vfs};
use crate::backend::{DataBackend, MetaBackend, NewNode};
use crate::error::Result;

impl<M: MetaBackend, D: DataBackend> Vfs<M, D> {
    fn add_handle(&self, node: Arc<OpenInode>, flags: i32, cred: &Cred) -> Fh {
        let fh = self.next_fh();
        let handle = FileHandle { node, flags, cred: cred.clone(), pattern: Mutex::new(ReadPattern::default()) };
        self.inner.files.lock().expect("files lock").insert(fh, Arc::new(handle));
        fh
    }

    pub async fn open(&self, ino: InodeId, flags: i32, cred: &Cred) -> Result<Fh> {
        let node = self.acquire_node(ino);
        {
            let mut d = node.lock();
            // Close-to-open consistency: the first open of a file re-reads its extent map (lazily), so it
            // sees what other clients wrote and closed before.
            if node.opens() == 1 && !d.has_unflushed() {
                d.forget_extents();
                d.data_changed();
            }
        }
        Ok(self.add_handle(node, flags, cred))
    }

    /// Creates a regular file and opens it. If another client created the name first and `O_EXCL` was
    /// not asked for, opens that file instead, as `open(O_CREAT)` does locally.
    pub async fn create(
        &self,
        parent: InodeId,
        name: &Name,
        mode: u32,
        flags: i32,
        cred: &Cred,
    ) -> Result<(InodeAttr, Fh)> {
        let new = NewNode { kind: FileKind::File, mode: mode & 0o7777, rdev: 0 };
        let since = self.inner.attrs.epoch();
        let r = self.inner.meta.create(parent, name, &new, cred).await;
        if matches!(r, Err(ErrorCode::Exists)) {
            // Maybe a listing said the name was free: another client took it since.
            self.inner.statahead.forget(parent);
        }
        match r {
            Ok(AttrResp { attr, dir }) => {
                self.dir_changed(parent, dir, since);
                self.inner.statahead.added(parent, name, attr.inode, attr.kind);
                let node = self.acquire_node(attr.inode);
                // A new file has no extents: no need to ask the metanode before the first flush.
                node.lock().extents.get_or_insert_with(|| (ExtentMap::new(), 0));
                self.inner.xattrs.created(attr.inode);
                let fh = self.add_handle(node, flags, cred);
                Ok((self.seen_attr(attr), fh))
            }
            Err(ErrorCode::Exists) if flags & libc::O_EXCL == 0 => {
                let attr = self.lookup(parent, name, cred).await?;
                if attr.kind == FileKind::Dir {
                    return Err(ErrorCode::IsDir.into());
                }
                let fh = self.open(attr.inode, flags, cred).await?;
                Ok((attr, fh))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn seen_attr(&self, attr: InodeAttr) -> InodeAttr {
        self.inner.attrs.put(&attr);
        attr
    }

    /// Buffers `data` at `offset`; the bytes leave in large extent writes when the buffer fills, and on
    /// flush/fsync/release. With `O_SYNC`/`O_DSYNC` they are durable before this returns.
    pub async fn write(&self, fh: Fh, offset: u64, data: &[u8]) -> Result<u32> {
        let h = self.file(fh)?;
        let node = &h.node;
        let buffered = {
            let mut d = node.lock();
            // A failed background flush is reported to the next writer, like a failed writeback.
            d.take_error()?;
            d.dirty.write(offset, data);
            let end = offset + data.len() as u64;
            d.written_end = Some(d.written_end.map_or(end, |e| e.max(end)));
            d.mtime = Some(Time::now());
            if d.writer != h.cred {
                d.writer = h.cred.clone();
            }
            d.dirty.bytes()
        };
        if h.sync_writes() {
            self.flush_node(node).await?;
            self.sync_backends().await?;
        } else if buffered >= self.inner.cfg.flush_threshold {
            self.start_flush(node, buffered).await?;
        }
        Ok(data.len() as u32)
    }

    /// Starts a background flush; if one is already running and the buffer has grown to twice the
    /// threshold, waits instead (back-pressure bounds the memory a fast writer can pin).
    async fn start_flush(&self, node: &Arc<OpenInode>, buffered: usize) -> Result<()> {
        match node.flush_lock.clone().try_lock_owned() {
            Ok(guard) => {
                let (vfs, node) = (self.clone(), node.clone());
                tokio::spawn(async move {
                    // The error stays in the node for the next write/flush/fsync to report.
                    let _ = vfs.write_back(&node).await;
                    drop(guard);
                });
                Ok(())
            }
            Err(_) if buffered >= 2 * self.inner.cfg.flush_threshold => self.flush_node(node).await,
            Err(_) => Ok(()),
        }
    }

    /// `close(2)` (called for every close of a descriptor): the file's data and size are acknowledged by
    /// a majority of replicas when this returns (so other clients see them), and an earlier write-back
    /// failure is reported here.
    pub async fn flush(&self, fh: Fh) -> Result<()> {
        let h = self.file(fh)?;
        self.flush_node(&h.node).await
    }

    /// `fsync(2)`: flushes, then has a majority of every partition this client changed fsync its log, so
    /// the file survives a power loss everywhere. The size lives with the other metadata, so `datasync`
    /// makes no difference.
    pub async fn fsync(&self, fh: Fh, _datasync: bool) -> Result<()> {
        self.flush(fh).await?;
        self.sync_backends().await
    }

    /// `fsyncdir(2)`, and the second half of `fsync`: acknowledged changes reach a majority's disks.
    pub async fn sync_backends(&self) -> Result<()> {
        let (data, meta) = tokio::join!(self.inner.data.sync(), self.inner.meta.sync());
        data?;
        meta?;
        Ok(())
    }

    /// The last close of a descriptor: flushes, forgets the handle, and deletes the file if it was
    /// unlinked while open and this was its last handle here.
    pub async fn release(&self, fh: Fh) -> Result<()> {
        let h = self.file(fh)?;
        let flushed = self.flush_node_twice(&h.node).await;
        self.inner.files.lock().expect("files lock").remove(&fh);
        if self.release_node(&h.node) {
            self.evict_later(h.node.ino);
        }
        flushed
    }

    /// Flushes every open file (at unmount).
    pub async fn flush_all(&self) -> Result<()> {
        let nodes: Vec<Arc<OpenInode>> = self.inner.open.lock().expect("open lock").values().cloned().collect();
        let mut first_err = Ok(());
        for node in nodes {
            if let Err(e) = self.flush_node_twice(&node).await {
                tracing::error!(inode = %node.ino, error = %e, "flush at unmount failed; buffered writes lost");
                first_err = first_err.and(Err(e));
            }
        }
        first_err
    }
}
