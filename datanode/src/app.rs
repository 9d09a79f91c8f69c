//! The raftstore [`App`] of a data partition: applies committed commands to the extent files, and
//! plugs the extents into the raftstore's sync, snapshot and restore hooks.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use ferrum_proto::msg::data::MAX_EXTENT_SIZE;
use ferrum_proto::{ErrorCode, ExtentId, GroupId, OpId, PartitionId};
use ferrum_raftstore::store::tag;
use ferrum_raftstore::types::LogId;
use ferrum_raftstore::{App, GroupBatch, GroupView, Store};

use crate::cmd::{self, CmdOk, CmdReply, DataCmd};
use crate::context::DataContext;
use crate::dedupe::{self, Pos};
use crate::metrics::DataMetrics;
use crate::partition::{Partition, Usage};
use crate::snapshot::{self, Staging};
use crate::space::is_enospc;
use crate::{metrics, replay};

/// Usage of one partition, as the node agent reports it to the master.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartitionUsage {
    pub used_bytes: u64,
    pub extents: u64,
    /// Writes are refused (`NoSpace`) until the disk has room again.
    pub read_only: bool,
}

pub struct DataApp {
    id: PartitionId,
    group: GroupId,
    /// The instance's RocksDB, for the raftstore's applied log id (no `Arc<DataContext>` here: the
    /// context holds the apps).
    store: Store,
    metrics: DataMetrics,
    partition: Partition,
    read_only: AtomicBool,
}

impl DataApp {
    /// Opens the partition's extents and re-applies what a power loss may have taken from them.
    pub fn open(ctx: &DataContext, group: GroupId) -> io::Result<DataApp> {
        let id = PartitionId::from(group.get());
        let applied = applied_log_id(&ctx.store, group)?;
        let index = applied.map_or(0, |l| l.index);
        let root = ctx.partitions_dir.join(id.to_string());
        let partition = Partition::open(id, root, index, &marker(applied))?;
        let app = DataApp {
            id,
            group,
            store: ctx.store.clone(),
            metrics: ctx.metrics.clone(),
            partition,
            read_only: AtomicBool::new(false),
        };
        let synced = app.partition.synced_index();
        if index > synced {
            let n = replay::replay(&app, &ctx.store, group, synced + 1, index)?;
            let synced = app.partition.sync()?;
            tracing::info!(partition = %id, commands = n, synced, "re-applied log entries after the last sync");
        }
        Ok(app)
    }

    pub fn id(&self) -> PartitionId {
        self.id
    }

    pub fn group(&self) -> GroupId {
        self.group
    }

    pub fn metrics(&self) -> &DataMetrics {
        &self.metrics
    }

    pub fn partition(&self) -> &Partition {
        &self.partition
    }

    pub fn usage(&self) -> PartitionUsage {
        let Usage { used_bytes, extents } = self.partition.usage();
        PartitionUsage { used_bytes, extents, read_only: self.is_read_only() }
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only.load(Ordering::Relaxed)
    }

    /// Turns the partition read-only (disk full) or writable again.
    pub fn set_read_only(&self, ro: bool) {
        if self.read_only.swap(ro, Ordering::Relaxed) != ro {
            tracing::warn!(partition = %self.id, read_only = ro, "partition writability changed");
        }
        self.metrics.read_only.get_or_create(&metrics::partition(self.id)).set(ro as i64);
    }

    /// Applies a decoded command at log index `index`: the one place that decides, for `apply` and for
    /// `replay` alike, which mutations are retries (answered with their first outcome, not applied
    /// again). `batch` receives the outcome records (`None` when replaying: they are already there).
    pub(crate) fn run(
        &self,
        view: &GroupView<'_>,
        mut batch: Option<&mut GroupBatch<'_>>,
        index: u64,
        c: &DataCmd<'_>,
    ) -> Bytes {
        let mut seen = HashMap::new();
        match (c, c.op()) {
            (DataCmd::Batch(writes), _) => {
                let replies: Vec<CmdReply> = writes
                    .iter()
                    .enumerate()
                    .map(|(i, w)| {
                        let pos = Pos::new(index, i as u32);
                        let r = self.run_one(view, batch.as_deref_mut(), pos, w.op, &w.as_cmd(), &mut seen);
                        cmd::decode_reply(&r)
                    })
                    .collect();
                ferrum_proto::msg::encode(&replies)
            }
            (c, Some(op)) => self.run_one(view, batch, Pos::new(index, 0), op, c, &mut seen),
            (c, None) => cmd::encode_reply(&Err(ErrorCode::InvalidArgument(format!("{} without an op", c.kind())))),
        }
    }

    fn run_one(
        &self,
        view: &GroupView<'_>,
        batch: Option<&mut GroupBatch<'_>>,
        pos: Pos,
        op: OpId,
        c: &DataCmd<'_>,
        seen: &mut HashMap<OpId, Bytes>,
    ) -> Bytes {
        // A retry inside the same entry is not visible through `view` yet.
        if let Some(r) = seen.get(&op) {
            return r.clone();
        }
        let r = match dedupe::is_retry(view, op, pos) {
            Some(first) => first,
            None => {
                let r = cmd::encode_reply(&self.execute(pos.index, c));
                if let Some(b) = batch {
                    dedupe::record(b, pos, op, &r);
                }
                r
            }
        };
        seen.insert(op, r.clone());
        r
    }

    /// Applies a command's effect on the extents. Deterministic: the reply depends only on the
    /// extents and the command. A full disk is waited out (the entry is committed and must be
    /// applied); any other I/O error stops the process, since this replica can no longer follow the
    /// log (the others keep the data, and a restart re-applies from the log).
    pub(crate) fn execute(&self, index: u64, c: &DataCmd<'_>) -> CmdReply {
        let mut backoff = Duration::from_millis(10);
        loop {
            match self.try_execute(index, c) {
                Ok(r) => return r,
                Err(e) if is_enospc(&e) => {
                    self.set_read_only(true);
                    tracing::error!(partition = %self.id, index, "disk full while applying {}: waiting for space", c.kind());
                    block_briefly(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) => panic!("partition {}: applying {} at log index {index}: {e}", self.id, c.kind()),
            }
        }
    }

    fn try_execute(&self, index: u64, c: &DataCmd<'_>) -> io::Result<CmdReply> {
        let p = &self.partition;
        let too_big = |end: Option<u64>| end.is_none_or(|e| e > MAX_EXTENT_SIZE);
        let r = match *c {
            DataCmd::Create { .. } => {
                let id = ExtentId::from(index);
                p.create_extent(id)?;
                Ok(CmdOk { extent: id, size: 0 })
            }
            DataCmd::Write { extent, offset, data, .. } => match p.extent(extent) {
                None => Err(ErrorCode::NotFound),
                Some(_) if too_big(offset.checked_add(data.len() as u64)) => Err(ErrorCode::FileTooBig),
                Some(e) => {
                    let before = e.size();
                    e.write(index, offset, data)?;
                    p.mark_dirty(&e);
                    p.resized(before, e.size());
                    Ok(CmdOk { extent, size: e.size() })
                }
            },
            DataCmd::Truncate { extent, size, .. } => match p.extent(extent) {
                None => Err(ErrorCode::NotFound),
                Some(_) if too_big(Some(size)) => Err(ErrorCode::FileTooBig),
                Some(e) => {
                    let before = e.size();
                    e.truncate(index, size)?;
                    p.mark_dirty(&e);
                    p.resized(before, size);
                    Ok(CmdOk { extent, size })
                }
            },
            DataCmd::PunchHole { extent, offset, len, .. } => match p.extent(extent) {
                None => Err(ErrorCode::NotFound),
                Some(e) => {
                    e.punch(index, offset, len)?;
                    p.mark_dirty(&e);
                    Ok(CmdOk { extent, size: e.size() })
                }
            },
            DataCmd::Delete { extent, .. } => match p.delete_extent(extent)? {
                true => Ok(CmdOk { extent, size: 0 }),
                false => Err(ErrorCode::NotFound),
            },
            DataCmd::Batch(_) => Err(ErrorCode::InvalidArgument("nested batch".into())),
        };
        Ok(r)
    }

    fn applied_now(&self) -> io::Result<Option<LogId>> {
        applied_log_id(&self.store, self.group)
    }
}

impl App for DataApp {
    /// The group was removed from this instance: its extents go too. (Requests for the partition fail
    /// with `GroupNotFound` from here on: writes and reads both go through the group, which is gone.)
    fn on_remove(&self) {
        let root = self.partition.root();
        match std::fs::remove_dir_all(root) {
            Ok(()) => tracing::info!(partition = %self.id, "removed the partition's extents"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::error!(partition = %self.id, "cannot remove {}: {e}", root.display()),
        }
    }

    fn usage(&self, _view: &GroupView<'_>) -> ferrum_raftstore::Usage {
        let u = self.partition.usage();
        ferrum_raftstore::Usage { used_bytes: u.used_bytes, items: u.extents, read_only: self.is_read_only() }
    }

    fn apply(&self, view: &GroupView<'_>, batch: &mut GroupBatch<'_>, index: u64, cmd: &[u8]) -> Bytes {
        let reply = match cmd::decode(cmd) {
            // Every replica rejects a malformed command alike.
            Err(e) => cmd::encode_reply(&Err(e)),
            Ok(c) => self.run(view, Some(batch), index, &c),
        };
        dedupe::expire(view, batch, index);
        self.partition.note_applied(index);
        reply
    }

    fn sync_external(&self) -> io::Result<()> {
        self.partition.sync().map(drop)
    }

    fn has_external(&self) -> bool {
        true
    }

    fn dump_external(&self, sink: &mut dyn FnMut(&[u8], &[u8]) -> io::Result<()>) -> io::Result<()> {
        snapshot::dump(&self.partition, sink)
    }

    fn begin_restore(&self) -> io::Result<()> {
        Staging::begin(&self.partition, &marker(self.applied_now()?))
    }

    fn restore_external(&self, key: &[u8], value: &[u8]) -> io::Result<()> {
        Staging::put(&self.partition, key, value)
    }

    fn finish_restore(&self) -> io::Result<()> {
        // The raftstore committed the snapshot's applied index before calling this.
        let applied = self.applied_now()?.map_or(0, |l| l.index);
        Staging::finish(&self.partition, applied)?;
        tracing::info!(partition = %self.id, applied, "extents restored from a snapshot");
        Ok(())
    }
}

/// The raftstore's applied log id of `group`.
fn applied_log_id(store: &Store, group: GroupId) -> io::Result<Option<LogId>> {
    let v: Option<Option<LogId>> = store.meta_get(group, tag::APPLIED).map_err(io::Error::other)?;
    Ok(v.flatten())
}

/// An applied log id as bytes, to compare with the one a staging generation recorded.
fn marker(applied: Option<LogId>) -> Vec<u8> {
    postcard::to_stdvec(&applied).expect("encoding a log id cannot fail")
}

/// Sleeps in the middle of an apply without starving the async runtime's other tasks.
fn block_briefly(d: Duration) {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| std::thread::sleep(d))
        }
        _ => std::thread::sleep(d),
    }
}
