//! Reaching meta partitions: the ones hosted here through [`MultiRaft`] directly, the others through
//! their replicas' RPC ports (following `NotLeader` hints).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrum_proto::msg::attr::Time;
use ferrum_proto::msg::meta::MetaRoute;
use ferrum_proto::msg::Rpc;
use ferrum_proto::rpc::{ConnPool, LeaderClient, RetryPolicy};
use ferrum_proto::{ErrorCode, GroupId, InodeId, PartitionId};
use ferrum_raftstore::MultiRaft;

use crate::app::partition_info;
use crate::batch::Batcher;
use crate::cmd::{Body, MetaCmd, OpKey, Outcome};
use crate::keys;
use crate::read;
use crate::state::{self, PartitionInfo};
use crate::txn::KvRead;
use crate::wire::{InodeInfo, InodeInfoResp, TxnStep};

pub struct Peers {
    raft: Arc<MultiRaft>,
    batcher: Batcher,
    pool: ConnPool,
    policy: RetryPolicy,
    /// Bounds a local Raft write or read barrier, which otherwise waits as long as there is no quorum.
    local_timeout: Duration,
    leaders: Mutex<HashMap<PartitionId, LeaderClient>>,
}

/// The partition's error for a group-level error.
fn partition_err(p: PartitionId) -> impl Fn(ErrorCode) -> ErrorCode {
    move |e| match e {
        ErrorCode::GroupNotFound(_) => ErrorCode::PartitionNotFound(p),
        other => other,
    }
}

impl Peers {
    pub fn new(raft: Arc<MultiRaft>, pool: ConnPool, policy: RetryPolicy, local_timeout: Duration) -> Peers {
        Peers {
            batcher: Batcher::new(raft.clone()),
            raft,
            pool,
            policy,
            local_timeout,
            leaders: Mutex::new(HashMap::new()),
        }
    }

    pub fn raft(&self) -> &Arc<MultiRaft> {
        &self.raft
    }

    pub fn pool(&self) -> &ConnPool {
        &self.pool
    }

    pub fn hosts(&self, p: PartitionId) -> bool {
        self.raft.handle(GroupId::from(p)).is_some_and(|h| h.desc.kind == crate::app::KIND)
    }

    /// The inode range of a partition hosted here (`PartitionNotFound` otherwise), as far as this
    /// replica applied its split, if any (the commands themselves check against the committed end).
    pub fn local_info(&self, p: PartitionId) -> Result<PartitionInfo, ErrorCode> {
        let described = self.described_info(p)?;
        let view = self.raft.view(GroupId::from(p)).map_err(partition_err(p))?;
        state::effective(&view, &described)
    }

    fn described_info(&self, p: PartitionId) -> Result<PartitionInfo, ErrorCode> {
        let group = GroupId::from(p);
        let h = self.raft.handle(group).ok_or(ErrorCode::PartitionNotFound(p))?;
        partition_info(group, &h.desc)
    }

    /// How other metanodes reach a partition hosted here: its current members, the leader first.
    pub fn self_route(&self, p: PartitionId) -> Result<MetaRoute, ErrorCode> {
        let info = self.local_info(p)?;
        let status = self.raft.status(GroupId::from(p)).map_err(partition_err(p))?;
        let mut replicas: Vec<String> = Vec::new();
        if let Some((_, addr)) = status.members.iter().find(|(n, _)| Some(*n) == status.leader) {
            replicas.push(addr.clone());
        }
        for (_, addr) in &status.members {
            if !replicas.contains(addr) {
                replicas.push(addr.clone());
            }
        }
        Ok(MetaRoute { partition: p, inodes: info.range, replicas })
    }

    /// Returns once a majority of a partition hosted here fsynced its log (see `raftstore::durability`).
    pub async fn sync(&self, p: PartitionId) -> Result<(), ErrorCode> {
        self.local_info(p)?;
        self.raft.sync(GroupId::from(p)).await
    }

    /// Proposes a command to a partition hosted here; `NotLeader` on a follower.
    pub async fn propose(&self, p: PartitionId, key: Option<OpKey>, body: Body) -> Result<Outcome, ErrorCode> {
        let cmd = MetaCmd { op: key, now: Time::now(), body };
        tokio::time::timeout(self.local_timeout, self.batcher.propose(p, cmd))
            .await
            .map_err(|_| ErrorCode::Timeout)?
            .map_err(partition_err(p))
    }

    /// Runs `f` over a partition hosted here, on its leader, linearizably: after a read barrier, or
    /// within the read lease a barrier grants (see `ferrum_raftstore::lease`). A partition that never
    /// applied a command is initialised first, so its root directory exists.
    pub async fn read<T>(
        &self,
        p: PartitionId,
        f: impl FnOnce(&dyn KvRead, &PartitionInfo) -> Result<T, ErrorCode>,
    ) -> Result<T, ErrorCode> {
        let described = self.described_info(p)?;
        let group = GroupId::from(p);
        tokio::time::timeout(self.local_timeout, self.raft.lease_or_barrier(group))
            .await
            .map_err(|_| ErrorCode::Timeout)?
            .map_err(partition_err(p))?;
        let initialised = KvRead::get(&self.raft.view(group).map_err(partition_err(p))?, keys::FORMAT)?.is_some();
        if !initialised {
            self.propose(p, None, Body::Init).await?.into_result::<()>()?;
        }
        let view = self.raft.view(group).map_err(partition_err(p))?;
        let info = state::effective(&view, &described)?;
        f(&view, &info)
    }

    fn leader(&self, route: &MetaRoute) -> Result<LeaderClient, ErrorCode> {
        if route.replicas.is_empty() {
            return Err(ErrorCode::InvalidArgument(format!("no replica known for partition {}", route.partition)));
        }
        let mut map = self.leaders.lock().expect("leaders lock");
        let lc = map
            .entry(route.partition)
            .or_insert_with(|| LeaderClient::new(self.pool.clone(), route.replicas.clone(), self.policy.clone()));
        let mut known = lc.addrs();
        known.sort();
        let mut given = route.replicas.clone();
        given.sort();
        given.dedup();
        if known != given {
            lc.set_addrs(route.replicas.clone());
        }
        Ok(lc.clone())
    }

    async fn call<R: Rpc>(&self, route: &MetaRoute, req: &R) -> Result<R::Response, ErrorCode> {
        self.leader(route)?.call(req).await.map_err(|e| e.code())
    }

    /// Applies a step in the partition of `route`, here when this node leads it.
    pub async fn step(&self, route: &MetaRoute, key: OpKey, body: Body) -> Result<Outcome, ErrorCode> {
        if self.hosts(route.partition) {
            match self.propose(route.partition, Some(key), body.clone()).await {
                Err(ErrorCode::NotLeader { .. }) => {}
                other => return other,
            }
        }
        self.call(route, &TxnStep { partition: route.partition, op: key.op, step: key.step, body }).await
    }

    pub async fn inode_info(&self, route: &MetaRoute, ino: InodeId) -> Result<InodeInfoResp, ErrorCode> {
        if self.hosts(route.partition) {
            match self.read(route.partition, |kv, part| read::inode_info(kv, part, ino)).await {
                Err(ErrorCode::NotLeader { .. }) => {}
                other => return other,
            }
        }
        self.call(route, &InodeInfo { partition: route.partition, inode: ino }).await
    }

    /// `NotLeader` with the leader this node knows of.
    pub fn not_leader(&self, p: PartitionId) -> ErrorCode {
        let leader = self.raft.status(GroupId::from(p)).ok().and_then(|s| {
            let id = s.leader?;
            let addr = s.members.iter().find(|(n, _)| *n == id)?.1.clone();
            Some(ferrum_proto::LeaderHint { node: id, addr })
        });
        ErrorCode::NotLeader { leader }
    }

    /// Whether this node currently leads partition `p` (for background work only the leader does).
    pub fn is_leader(&self, p: PartitionId) -> bool {
        self.raft.status(GroupId::from(p)).is_ok_and(|s| s.leader == Some(self.raft.node_id()))
    }
}
