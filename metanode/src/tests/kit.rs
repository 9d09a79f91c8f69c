//! In-process partitions for tests: one instance (one RocksDB in a temp dir, one `MultiRaft`) hosting
//! single-replica meta partitions, served by a [`MetaService`] called through its typed methods. Every
//! command goes through Raft and is applied to RocksDB exactly as in production; only the network is
//! absent (every partition is local, so the coordinator reaches all of them directly).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use ferrum_proto::msg::attr::{FileKind, InodeAttr, SetAttrFields};
use ferrum_proto::msg::meta::*;
use ferrum_proto::msg::name::Name;
use ferrum_proto::msg::topology::{InodeRange, Replica};
use ferrum_proto::rpc::{ClientConfig, ConnPool};
use ferrum_proto::{ClientId, ErrorCode, GroupId, InodeId, NodeId, OpId, PartitionId, RequestId, VolumeId};
use ferrum_raftstore::{MultiRaft, MultiRaftConfig, Store};

use crate::app::{meta_app_factory, partition_desc};
use crate::failpoint::Failpoints;
use crate::fsck::{self, FsckOptions, FsckReport};
use crate::service::{MetaConfig, MetaService};
use crate::sweeper;

pub const ADDR: &str = "127.0.0.1:1";
pub const T: Duration = Duration::from_secs(20);

pub struct Kit {
    pub svc: MetaService,
    pub routes: Vec<MetaRoute>,
    next: AtomicU64,
    pub client: ClientId,
    pub raft: std::sync::Arc<MultiRaft>,
    // Last: the dir outlives the store.
    pub dir: tempfile::TempDir,
}

pub fn root() -> Cred {
    Cred::root()
}

pub fn user(uid: u32) -> Cred {
    Cred::user(uid, uid)
}

pub fn n(s: &str) -> Name {
    Name::from(s)
}

/// Calls here are not retried: a generous bound keeps a loaded test machine from failing them.
fn config() -> MetaConfig {
    MetaConfig { local_timeout_ms: 120_000, ..MetaConfig::default() }
}

async fn open(dir: &std::path::Path) -> std::sync::Arc<MultiRaft> {
    let cfg = MultiRaftConfig {
        node_id: NodeId(1),
        advertise: ADDR.into(),
        heartbeat: Duration::from_millis(50),
        election_timeout_min: Duration::from_millis(150),
        election_timeout_max: Duration::from_millis(300),
        snapshot_after_logs: 100_000,
        keep_logs_after_snapshot: 1000,
        sync_every_entry: false,
        recovery_timeout: Duration::from_secs(60),
        max_payload_entries: 64,
        snapshot_rate_bytes_per_sec: 0,
    };
    let store = Store::open(dir).expect("open store");
    MultiRaft::open(cfg, store, ConnPool::new(ClientConfig::default()), meta_app_factory())
        .await
        .expect("open multiraft")
}

impl Kit {
    /// One partition holding every inode.
    pub async fn one() -> Kit {
        Kit::with(&[(1, 1, u64::MAX)], Failpoints::none()).await
    }

    /// Partitions `(id, first inode, end)`.
    pub async fn with(parts: &[(u64, u64, u64)], fail: Failpoints) -> Kit {
        let dir = tempfile::tempdir().expect("tempdir");
        let raft = open(dir.path()).await;
        let mut routes = Vec::new();
        for &(id, start, end) in parts {
            let p = PartitionId(id);
            let range = InodeRange { start: InodeId(start), end: InodeId(end) };
            let desc = partition_desc(p, VolumeId(1), range, vec![Replica { node: NodeId(1), addr: ADDR.into() }]);
            let members = BTreeMap::from([(NodeId(1), ADDR.to_string())]);
            raft.create_group(GroupId::from(p), desc, members).await.expect("create group");
            routes.push(MetaRoute { partition: p, inodes: range, replicas: vec![ADDR.into()] });
        }
        let svc = MetaService::new(raft.clone(), ConnPool::new(ClientConfig::default()), &config(), fail);
        let kit = Kit { svc, routes, next: AtomicU64::new(1), client: ClientId(7), raft, dir };
        for r in &kit.routes {
            kit.wait_leader(r.partition).await;
        }
        kit
    }

    /// Reopens the same RocksDB in a new instance (a restart), with a new service.
    pub async fn restart(self, fail: Failpoints) -> Kit {
        let Kit { svc, routes, next, client, raft, dir } = self;
        drop(svc);
        raft.shutdown().await;
        drop(raft);
        let raft = open(dir.path()).await;
        let svc = MetaService::new(raft.clone(), ConnPool::new(ClientConfig::default()), &config(), fail);
        let kit = Kit { svc, routes, next, client, raft, dir };
        for r in &kit.routes {
            kit.wait_leader(r.partition).await;
        }
        kit
    }

    pub async fn wait_leader(&self, p: PartitionId) {
        let deadline = tokio::time::Instant::now() + T;
        while !self.svc.peers().is_leader(p) {
            assert!(tokio::time::Instant::now() < deadline, "partition {p} elected no leader");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn op(&self) -> OpId {
        OpId::new(self.client, RequestId(self.next.fetch_add(1, Ordering::Relaxed)))
    }

    pub fn p(&self, ino: InodeId) -> PartitionId {
        self.routes.iter().find(|r| r.inodes.contains(ino)).expect("a partition holds it").partition
    }

    pub fn part(&self, i: usize) -> PartitionId {
        self.routes[i].partition
    }

    /// Finishes every leftover at once, as the sweepers would after the grace.
    pub async fn recover(&self) {
        for r in &self.routes {
            sweeper::sweep(self.svc.peers().as_ref(), r, Duration::ZERO).await.expect("sweep");
        }
    }

    pub async fn fsck(&self, repair: bool) -> FsckReport {
        let opts = FsckOptions { repair, grace: Duration::ZERO, evict_orphans_older_than: None };
        fsck::fsck(self.svc.peers().as_ref(), &self.routes, &opts).await.expect("fsck")
    }

    /// Prepares and outboxes present in all partitions.
    pub async fn leftovers(&self) -> usize {
        let mut n = 0;
        for r in &self.routes {
            for t in [crate::wire::Table::Prepared, crate::wire::Table::Outbox] {
                n += crate::cluster::scan_all(self.svc.peers().as_ref(), r, t).await.expect("scan").len();
            }
        }
        n
    }

    /// fsck finds nothing wrong, and no operation left anything behind.
    pub async fn assert_clean(&self) {
        let r = self.fsck(false).await;
        assert!(r.is_clean(), "fsck found problems: {:#?}", r.problems);
    }

    // --- Operations with defaults: root caller, the inode in the directory's partition.

    pub async fn mkdir(&self, parent: InodeId, name: &str) -> Result<InodeAttr, ErrorCode> {
        self.mkdir_as(parent, name, 0o755, root(), self.p(parent)).await
    }

    pub async fn mkdir_as(
        &self,
        parent: InodeId,
        name: &str,
        mode: u32,
        cred: Cred,
        at: PartitionId,
    ) -> Result<InodeAttr, ErrorCode> {
        let r = Mkdir {
            partition: self.p(parent),
            op: self.op(),
            parent,
            name: n(name),
            mode,
            cred,
            inode_partition: at,
            routes: self.routes.clone(),
        };
        Ok(self.svc.mkdir(r).await?.attr)
    }

    pub async fn create(&self, parent: InodeId, name: &str) -> Result<InodeAttr, ErrorCode> {
        self.create_as(parent, name, FileKind::File, 0o644, root(), self.p(parent)).await
    }

    pub async fn create_as(
        &self,
        parent: InodeId,
        name: &str,
        kind: FileKind,
        mode: u32,
        cred: Cred,
        at: PartitionId,
    ) -> Result<InodeAttr, ErrorCode> {
        let r = Create {
            partition: self.p(parent),
            op: self.op(),
            parent,
            name: n(name),
            kind,
            mode,
            rdev: 0x0801,
            cred,
            inode_partition: at,
            routes: self.routes.clone(),
        };
        Ok(self.svc.create(r).await?.attr)
    }

    pub async fn symlink(
        &self,
        parent: InodeId,
        name: &str,
        target: &[u8],
        at: PartitionId,
    ) -> Result<InodeAttr, ErrorCode> {
        let r = Symlink {
            partition: self.p(parent),
            op: self.op(),
            parent,
            name: n(name),
            target: Bytes::copy_from_slice(target),
            cred: root(),
            inode_partition: at,
            routes: self.routes.clone(),
        };
        Ok(self.svc.symlink(r).await?.attr)
    }

    pub async fn link(
        &self,
        inode: InodeId,
        new_parent: InodeId,
        name: &str,
        cred: Cred,
    ) -> Result<InodeAttr, ErrorCode> {
        let r = Link {
            partition: self.p(new_parent),
            op: self.op(),
            inode,
            new_parent,
            new_name: n(name),
            cred,
            routes: self.routes.clone(),
        };
        Ok(self.svc.link(r).await?.attr)
    }

    pub async fn unlink(&self, parent: InodeId, name: &str, cred: Cred) -> Result<Unlinked, ErrorCode> {
        self.unlink_with(parent, name, cred, None).await
    }

    pub async fn unlink_with(
        &self,
        parent: InodeId,
        name: &str,
        cred: Cred,
        open_here: Option<Vec<InodeId>>,
    ) -> Result<Unlinked, ErrorCode> {
        let r = Unlink {
            partition: self.p(parent),
            op: self.op(),
            parent,
            name: n(name),
            cred,
            routes: self.routes.clone(),
            open_here,
        };
        self.svc.unlink(r).await
    }

    pub async fn rmdir(&self, parent: InodeId, name: &str, cred: Cred) -> Result<(), ErrorCode> {
        let r = Rmdir {
            partition: self.p(parent),
            op: self.op(),
            parent,
            name: n(name),
            cred,
            routes: self.routes.clone(),
        };
        self.svc.rmdir(r).await
    }

    pub fn rename_req(
        &self,
        parent: InodeId,
        name: &str,
        new_parent: InodeId,
        new_name: &str,
        flags: u32,
        cred: Cred,
    ) -> Rename {
        Rename {
            partition: self.p(new_parent),
            op: self.op(),
            parent,
            name: n(name),
            new_parent,
            new_name: n(new_name),
            flags,
            cred,
            routes: self.routes.clone(),
        }
    }

    pub async fn rename(
        &self,
        parent: InodeId,
        name: &str,
        new_parent: InodeId,
        new_name: &str,
        flags: u32,
    ) -> Result<RenameResp, ErrorCode> {
        self.svc.rename(self.rename_req(parent, name, new_parent, new_name, flags, root())).await
    }

    pub async fn lookup(&self, parent: InodeId, name: &str) -> Result<LookupResp, ErrorCode> {
        self.svc.lookup(Lookup { partition: self.p(parent), parent, name: n(name), cred: root() }).await
    }

    /// The entry's inode, or `NotFound`.
    pub async fn ino(&self, parent: InodeId, name: &str) -> Result<InodeId, ErrorCode> {
        Ok(self.lookup(parent, name).await?.inode)
    }

    pub async fn getattr(&self, ino: InodeId) -> Result<InodeAttr, ErrorCode> {
        Ok(self.svc.get_attr(GetAttr { partition: self.p(ino), inode: ino }).await?.attr)
    }

    pub async fn setattr(&self, ino: InodeId, set: SetAttrFields, cred: Cred) -> Result<InodeAttr, ErrorCode> {
        let r = SetAttr { partition: self.p(ino), op: self.op(), inode: ino, set, cred, handle: false };
        Ok(self.svc.set_attr(r).await?.attr)
    }

    /// All entry names of a directory, paging with `page` entries.
    pub async fn names(&self, dir: InodeId, page: u32) -> Result<Vec<String>, ErrorCode> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let r = self.svc.read_dir(ReadDir { partition: self.p(dir), inode: dir, cursor, limit: page }).await?;
            out.extend(r.entries.iter().map(|e| e.name.to_string()));
            match r.next {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }
}
