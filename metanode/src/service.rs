//! The metanode's request handler: every `META_*` opcode, as typed methods (which tests call directly)
//! and as a [`Handler`] (the node agent routes Raft and master traffic itself).
//!
//! Reads run on the partition's leader after a read barrier; single-partition mutations are one Raft
//! command; namespace mutations go through [`crate::coord`], which is also one command when everything
//! involved lives in the serving partition.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ferrum_proto::msg::attr::{FileKind, InodeAttr, SetAttrFields};
use ferrum_proto::msg::master::{SplitMetaPartition, SplitMetaPartitionResp};
use ferrum_proto::msg::meta::*;
use ferrum_proto::msg::Rpc;
use ferrum_proto::rpc::{ConnPool, Handler, Incoming, Outgoing, RetryPolicy};
use ferrum_proto::{ErrorCode, InodeId, OpId, Opcode, PartitionId};
use ferrum_raftstore::MultiRaft;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::cmd::{Body, OpKey, Outcome};
use crate::coord::{self, Coord, CreateReq, RenameReq};
use crate::failpoint::Failpoints;
use crate::peers::Peers;
use crate::wire::{InodeInfo, InodeInfoResp, Scan, ScanResp, TxnStep};
use crate::{ops, read, steps};

/// The `[metanode]` section of the config file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetaConfig {
    /// How old a prepare or outbox left by a coordinator must be before recovery finishes it. Only
    /// liveness depends on it (recovery fences what it aborts), so it just needs to exceed the time a
    /// healthy coordinator takes.
    pub recovery_grace_ms: u64,
    /// How often each partition leader looks for leftovers.
    pub sweep_interval_ms: u64,
    /// How long the outcome of a mutation is remembered for retries: longer than any client keeps
    /// retrying a request (and than any request may be delayed behind a newer one of its client).
    pub op_ttl_secs: u64,
    /// How long outcomes of cross-partition steps are remembered: longer than any partition outage
    /// after which a pending step must still be recognised as applied.
    pub protocol_ttl_secs: u64,
    /// Bound of one local Raft write or read barrier (no quorum → `Timeout`, which the client retries).
    pub local_timeout_ms: u64,
}

impl Default for MetaConfig {
    fn default() -> Self {
        MetaConfig {
            recovery_grace_ms: 30_000,
            sweep_interval_ms: 1_000,
            op_ttl_secs: 600,
            protocol_ttl_secs: 86_400,
            local_timeout_ms: 10_000,
        }
    }
}

pub struct MetaService {
    peers: Arc<Peers>,
    fail: std::sync::RwLock<Failpoints>,
}

impl MetaService {
    pub fn new(raft: Arc<MultiRaft>, pool: ConnPool, cfg: &MetaConfig, fail: Failpoints) -> MetaService {
        let peers = Peers::new(raft, pool, RetryPolicy::default(), Duration::from_millis(cfg.local_timeout_ms));
        MetaService { peers: Arc::new(peers), fail: std::sync::RwLock::new(fail) }
    }

    /// Replaces the failpoints (tests arm them after setting up a tree).
    pub fn set_failpoints(&self, fail: Failpoints) {
        *self.fail.write().expect("failpoints lock") = fail;
    }

    pub fn peers(&self) -> &Arc<Peers> {
        &self.peers
    }

    async fn write<T: DeserializeOwned>(&self, p: PartitionId, op: OpId, body: Body) -> Result<T, ErrorCode> {
        self.peers.propose(p, Some(OpKey::new(op, steps::DECIDE)), body).await?.into_result()
    }

    fn coord(
        &self,
        p: PartitionId,
        op: OpId,
        routes: Vec<MetaRoute>,
        name: &'static str,
    ) -> Result<Coord<'_>, ErrorCode> {
        let fail = self.fail.read().expect("failpoints lock").clone();
        Coord::new(&self.peers, fail, p, op, routes, name)
    }

    /// `dir`'s attributes as of now, read here right after a change to it (a leader's read within its
    /// lease: no round trip), for the client to cache; `None` if it is not held here or unreadable.
    async fn dir_attr(&self, p: PartitionId, dir: InodeId) -> Option<InodeAttr> {
        self.peers.read(p, move |kv, part| read::getattr(kv, part, dir)).await.ok()
    }

    pub async fn lookup(&self, r: Lookup) -> Result<LookupResp, ErrorCode> {
        self.peers.read(r.partition, |kv, part| read::lookup(kv, part, r.parent, &r.name, &r.cred)).await
    }

    pub async fn get_attr(&self, r: GetAttr) -> Result<AttrResp, ErrorCode> {
        let attr = self.peers.read(r.partition, |kv, part| read::getattr(kv, part, r.inode)).await?;
        Ok(AttrResp { attr, dir: None })
    }

    pub async fn set_attr(&self, r: SetAttr) -> Result<AttrResp, ErrorCode> {
        let body = Body::SetAttr { ino: r.inode, set: r.set, cred: r.cred, handle: r.handle };
        Ok(AttrResp { attr: self.write(r.partition, r.op, body).await?, dir: None })
    }

    pub async fn truncate(&self, r: Truncate) -> Result<AttrResp, ErrorCode> {
        let set = SetAttrFields { size: Some(r.size), ..Default::default() };
        let body = Body::SetAttr { ino: r.inode, set, cred: Cred::root(), handle: true };
        Ok(AttrResp { attr: self.write(r.partition, r.op, body).await?, dir: None })
    }

    pub async fn create(&self, r: Create) -> Result<AttrResp, ErrorCode> {
        if matches!(r.kind, FileKind::Dir | FileKind::Symlink) {
            return Err(ErrorCode::InvalidArgument("use Mkdir or Symlink".into()));
        }
        let (p, parent) = (r.partition, r.parent);
        let c = self.coord(r.partition, r.op, r.routes, "create")?;
        let req = CreateReq {
            cred: r.cred,
            parent: r.parent,
            name: r.name,
            kind: r.kind,
            mode: r.mode,
            rdev: r.rdev,
            target: None,
            inode_partition: r.inode_partition,
        };
        let attr = coord::create(&c, req).await?;
        Ok(AttrResp { attr, dir: self.dir_attr(p, parent).await })
    }

    pub async fn mkdir(&self, r: Mkdir) -> Result<AttrResp, ErrorCode> {
        let (p, parent) = (r.partition, r.parent);
        let c = self.coord(r.partition, r.op, r.routes, "mkdir")?;
        let req = CreateReq {
            cred: r.cred,
            parent: r.parent,
            name: r.name,
            kind: FileKind::Dir,
            mode: r.mode,
            rdev: 0,
            target: None,
            inode_partition: r.inode_partition,
        };
        let attr = coord::create(&c, req).await?;
        Ok(AttrResp { attr, dir: self.dir_attr(p, parent).await })
    }

    pub async fn symlink(&self, r: Symlink) -> Result<AttrResp, ErrorCode> {
        let (p, parent) = (r.partition, r.parent);
        let c = self.coord(r.partition, r.op, r.routes, "symlink")?;
        let req = CreateReq {
            cred: r.cred,
            parent: r.parent,
            name: r.name,
            kind: FileKind::Symlink,
            mode: 0o777,
            rdev: 0,
            target: Some(r.target),
            inode_partition: r.inode_partition,
        };
        let attr = coord::create(&c, req).await?;
        Ok(AttrResp { attr, dir: self.dir_attr(p, parent).await })
    }

    pub async fn link(&self, r: Link) -> Result<AttrResp, ErrorCode> {
        let (p, parent) = (r.partition, r.new_parent);
        let c = self.coord(r.partition, r.op, r.routes, "link")?;
        let attr = coord::link(&c, r.cred, r.inode, r.new_parent, r.new_name).await?;
        Ok(AttrResp { attr, dir: self.dir_attr(p, parent).await })
    }

    pub async fn unlink(&self, r: Unlink) -> Result<Unlinked, ErrorCode> {
        let c = self.coord(r.partition, r.op, r.routes, "unlink")?;
        if r.open_here.as_ref().is_some_and(|o| o.len() > MAX_OPEN_HERE) {
            return Err(ErrorCode::InvalidArgument(format!("more than {MAX_OPEN_HERE} open inodes listed")));
        }
        let mut gone = coord::unlink(&c, r.cred, r.parent, r.name, r.open_here).await?;
        gone.dir = self.dir_attr(r.partition, r.parent).await;
        Ok(gone)
    }

    pub async fn rmdir(&self, r: Rmdir) -> Result<(), ErrorCode> {
        let c = self.coord(r.partition, r.op, r.routes, "rmdir")?;
        coord::rmdir(&c, r.cred, r.parent, r.name).await
    }

    pub async fn rename(&self, r: Rename) -> Result<RenameResp, ErrorCode> {
        let (p, dirs) = (r.partition, [r.parent, r.new_parent]);
        let c = self.coord(r.partition, r.op, r.routes, "rename")?;
        let req = RenameReq {
            cred: r.cred,
            parent: r.parent,
            name: r.name,
            new_parent: r.new_parent,
            new_name: r.new_name,
            flags: r.flags,
        };
        let mut resp = coord::rename(&c, req).await?;
        let n = if dirs[0] == dirs[1] { 1 } else { 2 };
        for dir in &dirs[..n] {
            resp.dirs.extend(self.dir_attr(p, *dir).await);
        }
        Ok(resp)
    }

    pub async fn readlink(&self, r: Readlink) -> Result<ReadlinkResp, ErrorCode> {
        let target = self.peers.read(r.partition, |kv, part| read::readlink(kv, part, r.inode)).await?;
        Ok(ReadlinkResp { target })
    }

    pub async fn read_dir(&self, r: ReadDir) -> Result<ReadDirResp, ErrorCode> {
        self.peers.read(r.partition, |kv, part| read::readdir(kv, part, &r)).await
    }

    pub async fn read_dir_plus(&self, r: ReadDirPlus) -> Result<ReadDirPlusResp, ErrorCode> {
        self.peers.read(r.partition, |kv, part| read::readdir_plus(kv, part, &r)).await
    }

    pub async fn get_xattr(&self, r: GetXattr) -> Result<XattrValue, ErrorCode> {
        let value = self
            .peers
            .read(r.partition, |kv, part| {
                part.check_holds(r.inode)?;
                ops::xattr_get(kv, r.inode, &r.name, &r.cred)
            })
            .await?;
        Ok(XattrValue { value })
    }

    pub async fn set_xattr(&self, r: SetXattr) -> Result<(), ErrorCode> {
        let body = Body::SetXattr { ino: r.inode, name: r.name, value: r.value, flags: r.flags, cred: r.cred };
        self.write(r.partition, r.op, body).await
    }

    pub async fn list_xattr(&self, r: ListXattr) -> Result<ListXattrResp, ErrorCode> {
        let names = self
            .peers
            .read(r.partition, |kv, part| {
                part.check_holds(r.inode)?;
                ops::xattr_list(kv, r.inode, &r.cred)
            })
            .await?;
        Ok(ListXattrResp { names })
    }

    pub async fn remove_xattr(&self, r: RemoveXattr) -> Result<(), ErrorCode> {
        self.write(r.partition, r.op, Body::RemoveXattr { ino: r.inode, name: r.name, cred: r.cred }).await
    }

    pub async fn stat_fs(&self, r: StatFs) -> Result<StatFsResp, ErrorCode> {
        self.peers.read(r.partition, read::statfs).await
    }

    pub async fn sync(&self, r: SyncPartition) -> Result<(), ErrorCode> {
        self.peers.sync(r.partition).await
    }

    pub async fn extent_append(&self, r: ExtentAppend) -> Result<(), ErrorCode> {
        let body = Body::ExtentAppend { ino: r.inode, extents: r.extents, inline: r.inline, cred: r.cred };
        self.write(r.partition, r.op, body).await
    }

    pub async fn extent_list(&self, r: ExtentList) -> Result<ExtentListResp, ErrorCode> {
        self.peers.read(r.partition, |kv, part| read::extent_list(kv, part, r.inode)).await
    }

    pub async fn evict(&self, r: Evict) -> Result<(), ErrorCode> {
        self.write(r.partition, r.op, Body::Evict { ino: r.inode }).await
    }

    pub async fn freed_list(&self, r: FreedList) -> Result<FreedListResp, ErrorCode> {
        self.peers.read(r.partition, |kv, _| read::freed_list(kv, r.limit)).await
    }

    pub async fn freed_ack(&self, r: FreedAck) -> Result<(), ErrorCode> {
        self.write(r.partition, r.op, Body::FreedAck { upto: r.upto }).await
    }

    /// A step of a cross-partition operation coordinated elsewhere (or a repair from fsck).
    pub async fn txn_step(&self, r: TxnStep) -> Result<Outcome, ErrorCode> {
        self.peers.propose(r.partition, Some(OpKey::new(r.op, r.step)), r.body).await
    }

    pub async fn inode_info(&self, r: InodeInfo) -> Result<InodeInfoResp, ErrorCode> {
        self.peers.read(r.partition, |kv, part| read::inode_info(kv, part, r.inode)).await
    }

    pub async fn scan(&self, r: Scan) -> Result<ScanResp, ErrorCode> {
        self.peers.read(r.partition, |kv, _| read::scan(kv, r.table, r.after.as_deref(), r.limit)).await
    }

    /// The master splits a partition led here: its range ends, committed through its Raft group so
    /// that every replica refuses allocations past the same end. Idempotent (see `Body::EndRange`).
    pub async fn split(&self, r: SplitMetaPartition) -> Result<SplitMetaPartitionResp, ErrorCode> {
        let end: InodeId =
            self.peers.propose(r.partition, None, Body::EndRange { step: r.step }).await?.into_result()?;
        tracing::info!(partition = %r.partition, %end, "inode range ended for a split");
        Ok(SplitMetaPartitionResp { end })
    }

    async fn serve(&self, req: Incoming) -> Result<Outgoing, ErrorCode> {
        match req.opcode {
            Opcode::META_LOOKUP => typed(&req, |r| self.lookup(r)).await,
            Opcode::META_GET_ATTR => typed(&req, |r| self.get_attr(r)).await,
            Opcode::META_SET_ATTR => typed(&req, |r| self.set_attr(r)).await,
            Opcode::META_CREATE => typed(&req, |r| self.create(r)).await,
            Opcode::META_MKDIR => typed(&req, |r| self.mkdir(r)).await,
            Opcode::META_UNLINK => typed(&req, |r| self.unlink(r)).await,
            Opcode::META_RMDIR => typed(&req, |r| self.rmdir(r)).await,
            Opcode::META_RENAME => typed(&req, |r| self.rename(r)).await,
            Opcode::META_LINK => typed(&req, |r| self.link(r)).await,
            Opcode::META_SYMLINK => typed(&req, |r| self.symlink(r)).await,
            Opcode::META_READLINK => typed(&req, |r| self.readlink(r)).await,
            Opcode::META_READ_DIR => typed(&req, |r| self.read_dir(r)).await,
            Opcode::META_GET_XATTR => typed(&req, |r| self.get_xattr(r)).await,
            Opcode::META_SET_XATTR => typed(&req, |r| self.set_xattr(r)).await,
            Opcode::META_LIST_XATTR => typed(&req, |r| self.list_xattr(r)).await,
            Opcode::META_REMOVE_XATTR => typed(&req, |r| self.remove_xattr(r)).await,
            Opcode::META_STAT_FS => typed(&req, |r| self.stat_fs(r)).await,
            Opcode::META_EXTENT_APPEND => typed(&req, |r| self.extent_append(r)).await,
            Opcode::META_EXTENT_LIST => typed(&req, |r| self.extent_list(r)).await,
            Opcode::META_TRUNCATE => typed(&req, |r| self.truncate(r)).await,
            Opcode::META_EVICT => typed(&req, |r| self.evict(r)).await,
            Opcode::META_FREED_LIST => typed(&req, |r| self.freed_list(r)).await,
            Opcode::META_FREED_ACK => typed(&req, |r| self.freed_ack(r)).await,
            Opcode::META_TXN_STEP => typed(&req, |r| self.txn_step(r)).await,
            Opcode::META_INODE_INFO => typed(&req, |r| self.inode_info(r)).await,
            Opcode::META_READ_DIR_PLUS => typed(&req, |r| self.read_dir_plus(r)).await,
            Opcode::META_SCAN => typed(&req, |r| self.scan(r)).await,
            Opcode::META_SYNC => typed(&req, |r| self.sync(r)).await,
            Opcode::MASTER_SPLIT_META_PARTITION => typed(&req, |r| self.split(r)).await,
            other => Err(ErrorCode::UnknownOpcode(other.0)),
        }
    }
}

/// Decodes the request as `R`, runs `f`, encodes its reply.
async fn typed<R, F, Fut>(req: &Incoming, f: F) -> Result<Outgoing, ErrorCode>
where
    R: Rpc,
    F: FnOnce(R) -> Fut,
    Fut: Future<Output = Result<R::Response, ErrorCode>>,
{
    let r: R = req.decode()?;
    Ok(Outgoing::msg(&f(r).await?))
}

impl Handler for MetaService {
    fn handle(&self, req: Incoming) -> impl Future<Output = Result<Outgoing, ErrorCode>> + Send {
        self.serve(req)
    }
}
