//! The datanode's request handler: Raft traffic to the groups, `DATA_*` requests to the partitions.
//!
//! Mutations are proposed to the partition's Raft group and answered once a majority persisted them
//! and this leader applied them. Many requests are in flight at once (the RPC server runs each in its
//! own task); openraft appends all entries waiting at a leader in one batch and RocksDB merges the
//! synced log writes (group commit), so throughput grows with concurrency instead of paying one fsync
//! per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use ferrum_proto::msg::data::{
    BlockCopy, CreateExtent, CreateExtentResp, Delete, PartitionStatus, PartitionStatusResp, PunchHole, Read,
    ReadBlocks, ReadBlocksResp, StatExtent, StatExtentResp, SyncPartition, Truncate, Write, MAX_READ, MAX_WRITE,
};
use ferrum_proto::rpc::{ConnPool, Handler, Incoming, Outgoing};
use ferrum_proto::{ErrorCode, Opcode, PartitionId};
use ferrum_raftstore::MultiRaft;
use tokio::sync::Semaphore;

use crate::app::DataApp;
use crate::batcher::{ClientWrite, WriteBatcher};
use crate::block::BLOCK_SIZE;
use crate::cmd::{self, CmdOk, DataCmd};
use crate::context::DataContext;
use crate::extent::ReadResult;
use crate::gate::ReadGate;
use crate::metrics;
use crate::repair::Repairer;

/// Read attempts when blocks fail their CRC (each followed by a repair).
const READ_ATTEMPTS: usize = 3;
/// Reads up to this size are tried from the page cache on the async thread first.
const INLINE_READ_MAX: u32 = 128 << 10;
/// Most blocks one `ReadBlocks` returns (16 MiB).
const MAX_READ_BLOCKS: u32 = ((16 << 20) / BLOCK_SIZE) as u32;

pub struct DataService {
    raft: Arc<MultiRaft>,
    ctx: Arc<DataContext>,
    repairer: Repairer,
    /// Write bytes being replicated; a permit per byte.
    inflight: Arc<Semaphore>,
    gates: Mutex<HashMap<PartitionId, Arc<ReadGate>>>,
    batchers: Mutex<HashMap<PartitionId, Arc<WriteBatcher>>>,
}

fn internal(e: impl std::fmt::Display) -> ErrorCode {
    ErrorCode::Internal(e.to_string())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> std::io::Result<T> + Send + 'static) -> Result<T, ErrorCode> {
    tokio::task::spawn_blocking(f).await.map_err(internal)?.map_err(internal)
}

impl DataService {
    pub fn new(raft: Arc<MultiRaft>, ctx: Arc<DataContext>, pool: ConnPool) -> Arc<DataService> {
        let permits = (ctx.config.max_inflight_write_bytes as usize).clamp(MAX_WRITE, Semaphore::MAX_PERMITS);
        Arc::new(DataService {
            repairer: Repairer::new(raft.clone(), pool),
            raft,
            ctx,
            inflight: Arc::new(Semaphore::new(permits)),
            gates: Mutex::new(HashMap::new()),
            batchers: Mutex::new(HashMap::new()),
        })
    }

    pub fn raft(&self) -> &Arc<MultiRaft> {
        &self.raft
    }

    pub fn context(&self) -> &Arc<DataContext> {
        &self.ctx
    }

    pub fn repairer(&self) -> &Repairer {
        &self.repairer
    }

    async fn serve(&self, req: Incoming) -> Result<Outgoing, ErrorCode> {
        let start = Instant::now();
        let kind = match req.opcode {
            op if op.is_raft() => return self.raft.handle_raft(req).await,
            Opcode::MASTER_CREATE_PARTITION | Opcode::MASTER_DELETE_PARTITION => {
                return crate::admin::handle(&self.raft, &self.ctx, req).await
            }
            Opcode::DATA_READ => "read",
            Opcode::DATA_WRITE => "write",
            Opcode::DATA_CREATE_EXTENT => "create",
            Opcode::DATA_TRUNCATE => "truncate",
            Opcode::DATA_DELETE_EXTENT => "delete",
            Opcode::DATA_PUNCH_HOLE => "punch",
            Opcode::DATA_READ_BLOCKS => "read_blocks",
            Opcode::DATA_STAT_EXTENT => "stat",
            Opcode::DATA_PARTITION_STATUS => "status",
            Opcode::DATA_SYNC => "sync",
            other => return Err(ErrorCode::UnknownOpcode(other.0)),
        };
        let r = self.serve_data(req).await;
        self.ctx.metrics.request_seconds.get_or_create(&metrics::op(kind)).observe(start.elapsed().as_secs_f64());
        r
    }

    async fn serve_data(&self, req: Incoming) -> Result<Outgoing, ErrorCode> {
        match req.opcode {
            Opcode::DATA_READ => self.read(req.decode()?).await,
            Opcode::DATA_WRITE => {
                let w: Write = req.decode()?;
                if req.data.len() > MAX_WRITE {
                    return Err(ErrorCode::InvalidArgument(format!("write of {} bytes > {MAX_WRITE}", req.data.len())));
                }
                let app = self.ctx.partition(w.partition)?;
                self.admit(&app, req.data.len() as u64)?;
                let _permit = self.inflight.acquire_many(req.data.len().max(1) as u32).await.map_err(internal)?;
                let batcher = self.batchers.lock().expect("batchers lock").entry(app.id()).or_default().clone();
                let len = req.data.len() as u64;
                let cw = ClientWrite { op: w.op, extent: w.extent, offset: w.offset, data: req.data };
                batcher.write(&self.raft, &app, cw).await?;
                self.ctx.metrics.bytes_written.get_or_create(&metrics::partition(app.id())).inc_by(len);
                Ok(Outgoing::msg(&()))
            }
            Opcode::DATA_CREATE_EXTENT => {
                let c: CreateExtent = req.decode()?;
                let app = self.ctx.partition(c.partition)?;
                self.admit(&app, 0)?;
                let ok = self.propose(&app, cmd::encode(&DataCmd::Create { op: c.op })).await?;
                Ok(Outgoing::msg(&CreateExtentResp { extent: ok.extent }))
            }
            Opcode::DATA_TRUNCATE => {
                let t: Truncate = req.decode()?;
                let app = self.ctx.partition(t.partition)?;
                self.propose(&app, cmd::encode(&DataCmd::Truncate { op: t.op, extent: t.extent, size: t.size }))
                    .await?;
                Ok(Outgoing::msg(&()))
            }
            Opcode::DATA_DELETE_EXTENT => {
                let d: Delete = req.decode()?;
                let app = self.ctx.partition(d.partition)?;
                self.propose(&app, cmd::encode(&DataCmd::Delete { op: d.op, extent: d.extent })).await?;
                Ok(Outgoing::msg(&()))
            }
            Opcode::DATA_PUNCH_HOLE => {
                let p: PunchHole = req.decode()?;
                let app = self.ctx.partition(p.partition)?;
                let c = DataCmd::PunchHole { op: p.op, extent: p.extent, offset: p.offset, len: p.len };
                self.propose(&app, cmd::encode(&c)).await?;
                Ok(Outgoing::msg(&()))
            }
            Opcode::DATA_READ_BLOCKS => self.read_blocks(req.decode()?).await,
            Opcode::DATA_STAT_EXTENT => {
                let s: StatExtent = req.decode()?;
                let app = self.ctx.partition(s.partition)?;
                self.barrier(&app).await?;
                let ext = app.partition().extent(s.extent).ok_or(ErrorCode::NotFound)?;
                Ok(Outgoing::msg(&StatExtentResp { size: ext.size() }))
            }
            Opcode::DATA_PARTITION_STATUS => {
                let s: PartitionStatus = req.decode()?;
                Ok(Outgoing::msg(&self.status(s.partition)?))
            }
            Opcode::DATA_SYNC => {
                let s: SyncPartition = req.decode()?;
                let app = self.ctx.partition(s.partition)?;
                self.raft.sync(app.group()).await?;
                Ok(Outgoing::msg(&()))
            }
            other => Err(ErrorCode::UnknownOpcode(other.0)),
        }
    }

    /// Refuses a mutation that adds data when the disk is (nearly) full.
    fn admit(&self, app: &DataApp, bytes: u64) -> Result<(), ErrorCode> {
        let space = &self.ctx.space;
        if app.is_read_only() {
            if !space.recovered() {
                return Err(ErrorCode::NoSpace);
            }
            app.set_read_only(false);
        }
        if !space.admits(bytes) {
            app.set_read_only(true);
            return Err(ErrorCode::NoSpace);
        }
        Ok(())
    }

    /// Replicates a command and returns its outcome once this leader applied it.
    async fn propose(&self, app: &DataApp, c: Bytes) -> Result<CmdOk, ErrorCode> {
        let start = Instant::now();
        let reply = self.raft.write(app.group(), c).await?;
        self.ctx.metrics.commit_seconds.observe(start.elapsed().as_secs_f64());
        cmd::decode_reply(&reply)
    }

    /// Before a leader read: nothing within the read lease (see `ferrum_raftstore::lease`), else one
    /// barrier shared by the reads waiting for it.
    async fn barrier(&self, app: &DataApp) -> Result<(), ErrorCode> {
        if self.raft.read_lease_holds(app.group()) {
            return Ok(());
        }
        let gate = self.gates.lock().expect("gates lock").entry(app.id()).or_default().clone();
        gate.barrier(&self.raft, app.group()).await
    }

    async fn read(&self, r: Read) -> Result<Outgoing, ErrorCode> {
        if r.len > MAX_READ {
            return Err(ErrorCode::InvalidArgument(format!("read of {} bytes > {MAX_READ}", r.len)));
        }
        let app = self.ctx.partition(r.partition)?;
        self.barrier(&app).await?;
        let ext = app.partition().extent(r.extent).ok_or(ErrorCode::NotFound)?;
        let mut bad = Vec::new();
        for attempt in 0..READ_ATTEMPTS {
            // Small reads of cached blocks are served right here (see `Extent::read_cached`); larger
            // ones would hold this async thread for their copy and CRC check.
            let cached = if attempt == 0 && r.len <= INLINE_READ_MAX {
                ext.read_cached(r.offset, r.len as u64).map_err(internal)?
            } else {
                None
            };
            let read = match cached {
                Some(read) => read,
                None => {
                    let e = ext.clone();
                    blocking(move || e.read(r.offset, r.len as u64)).await?
                }
            };
            match read {
                ReadResult::Data(data) => {
                    let labels = metrics::partition(app.id());
                    self.ctx.metrics.bytes_read.get_or_create(&labels).inc_by(data.len() as u64);
                    return Ok(Outgoing::msg(&()).with_data(data));
                }
                ReadResult::Corrupt(b) => {
                    bad = b;
                    if self.repairer.repair(&app, &ext, &bad).await == 0 {
                        break;
                    }
                }
            }
        }
        let blocks: Vec<u64> = bad.iter().map(|b| b.block).collect();
        Err(ErrorCode::Checksum {
            detail: format!("partition {} extent {} blocks {blocks:?}: no healthy copy", r.partition, r.extent),
        })
    }

    async fn read_blocks(&self, r: ReadBlocks) -> Result<Outgoing, ErrorCode> {
        let app = self.ctx.partition(r.partition)?;
        let ext = app.partition().extent(r.extent).ok_or(ErrorCode::NotFound)?;
        let applied = app.partition().applied();
        let count = r.count.min(MAX_READ_BLOCKS) as u64;
        let (size, stored) = blocking(move || ext.stored_blocks(r.first_block, count)).await?;
        let mut data = Vec::new();
        let blocks = stored
            .into_iter()
            .map(|s| {
                let valid = s.content.is_some();
                if let Some(c) = s.content {
                    data.extend_from_slice(&c);
                }
                BlockCopy { index: s.entry.index, crc: s.entry.crc, suspect: s.entry.is_suspect(), valid }
            })
            .collect();
        let resp = ReadBlocksResp { block_size: BLOCK_SIZE as u32, size, applied, blocks };
        Ok(Outgoing::msg(&resp).with_data(Bytes::from(data)))
    }

    pub fn status(&self, p: PartitionId) -> Result<PartitionStatusResp, ErrorCode> {
        let app = self.ctx.partition(p)?;
        let s = self.raft.status(app.group())?;
        let u = app.usage();
        Ok(PartitionStatusResp {
            partition: p,
            leader: s.leader,
            term: s.term,
            applied: s.last_applied.unwrap_or(0),
            used_bytes: u.used_bytes,
            extents: u.extents,
            read_only: u.read_only,
            members: s.members.into_iter().map(|(n, _)| n).collect(),
        })
    }
}

impl Handler for DataService {
    fn handle(&self, req: Incoming) -> impl std::future::Future<Output = Result<Outgoing, ErrorCode>> + Send {
        self.serve(req)
    }
}
