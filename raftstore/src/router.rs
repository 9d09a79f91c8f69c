//! Multi-Raft: every Raft group hosted by one instance, keyed by group id, behind one port.
//!
//! Groups are created and removed at run time (the master asks an instance to host a partition); their
//! description is persisted so a restarted instance reopens exactly the groups it hosted, on its existing
//! RocksDB. Incoming Raft messages name their group and are dispatched here.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use ferrum_proto::msg::master::CreatePartition;
use ferrum_proto::msg::raft::RaftHeader;
use ferrum_proto::rpc::{ConnPool, Incoming, Outgoing};
use ferrum_proto::{msg, ErrorCode, GroupId, LeaderHint, NodeId, Opcode};
use openraft::error::{CheckIsLeaderError, ClientWriteError, ForwardToLeader, InitializeError, RaftError};
use openraft::{BasicNode, SnapshotPolicy};
use rocksdb::WriteBatch;
use serde::{Deserialize, Serialize};

use crate::app::{App, AppFactory, GroupView};
use crate::durability::{self, LastStop};
use crate::error::RaftStoreError;
use crate::handover::Handovers;
use crate::lease::ReadLeases;
use crate::log_store::LogStore;
use crate::network::Network;
use crate::receiving::Receiving;
use crate::recovery::{self, Recovering};
use crate::routes::Routes;
use crate::snapshot_send::Completer;
use crate::state_machine::StateMachine;
use crate::store::{tag, Store};
use crate::throttle::Throttle;
use crate::types::{Cmd, Raft};

/// What a group is, persisted with it; the [`AppFactory`] turns it into an [`App`] at (re)open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDesc {
    /// e.g. "master", "meta", "data", "kv".
    pub kind: String,
    /// App-specific parameters (e.g. a meta partition's inode range), encoded by the app.
    pub params: Vec<u8>,
}

/// Raft timing and log-retention settings shared by every group of an instance.
#[derive(Clone, Debug)]
pub struct MultiRaftConfig {
    pub node_id: NodeId,
    /// Our own `host:port`, as peers reach us.
    pub advertise: String,
    pub heartbeat: Duration,
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// Build a snapshot (and let the log be purged) after this many applied entries, or more for large
    /// groups (see [`crate::snapshot_policy`]).
    pub snapshot_after_logs: u64,
    /// Entries kept after a snapshot, so a briefly lagging follower catches up from the log.
    pub keep_logs_after_snapshot: u64,
    pub max_payload_entries: u64,
    /// fsync every appended entry instead of only membership changes and sync markers.
    pub sync_every_entry: bool,
    /// After a power loss, how long a recovering group waits for a leader before it votes again.
    pub recovery_timeout: Duration,
    /// Snapshot bytes per second this instance sends, over all groups (0: unlimited).
    pub snapshot_rate_bytes_per_sec: u64,
}

impl MultiRaftConfig {
    /// From an instance's `[raft]` settings.
    pub fn from_raft(node_id: NodeId, advertise: String, r: &crate::instance::RaftConfig) -> MultiRaftConfig {
        MultiRaftConfig {
            node_id,
            advertise,
            heartbeat: Duration::from_millis(r.heartbeat_ms),
            election_timeout_min: Duration::from_millis(r.election_timeout_min_ms),
            election_timeout_max: Duration::from_millis(r.election_timeout_max_ms),
            snapshot_after_logs: r.snapshot_after_logs,
            keep_logs_after_snapshot: r.keep_logs_after_snapshot,
            max_payload_entries: r.max_payload_entries,
            sync_every_entry: r.sync_every_entry,
            recovery_timeout: Duration::from_millis(r.recovery_timeout_ms),
            snapshot_rate_bytes_per_sec: r.snapshot_rate_bytes_per_sec,
        }
    }

    /// The openraft config every group of the instance runs with (validated).
    pub(crate) fn openraft(&self) -> Result<openraft::Config, RaftStoreError> {
        let c = openraft::Config {
            cluster_name: "ferrum".into(),
            heartbeat_interval: self.heartbeat.as_millis() as u64,
            election_timeout_min: self.election_timeout_min.as_millis() as u64,
            election_timeout_max: self.election_timeout_max.as_millis() as u64,
            // Each group's task triggers its snapshots (see `crate::snapshot_policy`).
            snapshot_policy: SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: self.keep_logs_after_snapshot,
            max_payload_entries: self.max_payload_entries,
            install_snapshot_timeout: 10_000,
            ..Default::default()
        };
        c.validate().map_err(|e| RaftStoreError::Config(e.to_string()))
    }
}

#[derive(Clone)]
pub struct GroupHandle {
    pub raft: Raft,
    pub app: Arc<dyn App>,
    pub desc: GroupDesc,
    /// Writes and read barriers admitted and not finished (a handover waits for them).
    pub(crate) inflight: Arc<std::sync::atomic::AtomicUsize>,
}

/// A group's state as this instance sees it (for status pages and tests).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GroupStatus {
    pub group: GroupId,
    pub kind: String,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub last_applied: Option<u64>,
    pub members: Vec<(NodeId, String)>,
    /// Restarted after a power loss and not yet caught up with a leader: does not vote.
    pub recovering: bool,
}

pub struct MultiRaft {
    /// This instance, for the tasks of its groups (see [`crate::snapshot_policy`]).
    me: std::sync::Weak<MultiRaft>,
    cfg: MultiRaftConfig,
    raft_config: Arc<openraft::Config>,
    /// The same with elections off, for groups that start recovering.
    recovering_config: Arc<openraft::Config>,
    recovering: Recovering,
    /// Groups receiving a snapshot, with their elections off (see [`crate::receiving`]).
    receiving: Receiving,
    /// Groups whose leadership this instance is handing to another replica (see [`crate::handover`]).
    pub(crate) handovers: Handovers,
    /// Read leases of the groups led here (see [`crate::lease`]).
    leases: ReadLeases,
    store: Store,
    pool: ConnPool,
    /// Peers' current addresses, shared by every group's network.
    routes: Arc<Routes>,
    factory: AppFactory,
    throttle: Arc<Throttle>,
    groups: RwLock<HashMap<GroupId, GroupHandle>>,
    /// Serialises create/remove so two concurrent requests for one group cannot both start it.
    admin: tokio::sync::Mutex<()>,
}

impl MultiRaft {
    /// Opens every group persisted in `store`.
    pub async fn open(
        cfg: MultiRaftConfig,
        store: Store,
        pool: ConnPool,
        factory: AppFactory,
    ) -> Result<Arc<MultiRaft>, RaftStoreError> {
        let raft_config = Arc::new(cfg.openraft()?);
        let recovering_config = Arc::new(openraft::Config { enable_elect: false, ..(*raft_config).clone() });
        // Nothing acknowledged can be missing when every entry was synced, or without a reboot.
        let lost_tail = store.last_stop() == LastStop::MayHaveLostTail && !cfg.sync_every_entry;
        let throttle = Arc::new(Throttle::new(cfg.snapshot_rate_bytes_per_sec));
        let mr = Arc::new_cyclic(|me| MultiRaft {
            me: me.clone(),
            throttle,
            cfg,
            raft_config,
            recovering_config,
            recovering: Recovering::default(),
            receiving: Receiving::default(),
            handovers: Handovers::default(),
            leases: ReadLeases::default(),
            store,
            pool,
            routes: Arc::default(),
            factory,
            groups: RwLock::new(HashMap::new()),
            admin: tokio::sync::Mutex::new(()),
        });
        for group in mr.store.hosted_groups()? {
            let desc: GroupDesc =
                mr.store.meta_get(group, tag::GROUP_DESC)?.ok_or(RaftStoreError::GroupNotFound(group))?;
            if lost_tail {
                mr.recovering.add(group);
            }
            mr.start(group, desc).await?;
        }
        if !mr.recovering.is_empty() {
            tracing::warn!(
                groups = mr.groups().len(),
                "restarted after a power loss: groups do not vote until a leader has caught them up"
            );
            let weak = Arc::downgrade(&mr);
            let wait = mr.cfg.recovery_timeout;
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                if let Some(mr) = weak.upgrade() {
                    for group in mr.recovering.drain() {
                        tracing::warn!(%group, "no leader caught this group up in {wait:?}: voting again");
                        mr.resume_elections(group);
                    }
                }
            });
        }
        Ok(mr)
    }

    fn resume_elections(&self, group: GroupId) {
        if let Some(h) = self.handle(group) {
            h.raft.runtime_config().elect(true);
        }
    }

    pub fn node_id(&self) -> NodeId {
        self.cfg.node_id
    }

    pub(crate) fn config(&self) -> &MultiRaftConfig {
        &self.cfg
    }

    pub(crate) fn pool(&self) -> &ConnPool {
        &self.pool
    }

    pub(crate) fn is_recovering(&self, group: GroupId) -> bool {
        self.recovering.contains(group)
    }

    /// The leader of `group` as this instance knows it, at its current address.
    pub(crate) fn leader_hint(&self, group: GroupId) -> Option<LeaderHint> {
        let h = self.handle(group)?;
        let m = h.raft.metrics().borrow().clone();
        let id = m.current_leader?;
        let node = m.membership_config.membership().get_node(&id)?.clone();
        Some(LeaderHint { node: NodeId::from(id), addr: self.routes.resolve(NodeId::from(id), &node.addr) })
    }

    /// Counts a request in (see [`crate::handover::Admitted`]), or refuses it while the group's
    /// leadership is being handed over, naming the new leader.
    fn admit(&self, h: &GroupHandle, group: GroupId) -> Result<crate::handover::Admitted, ErrorCode> {
        let admitted = crate::handover::Admitted::new(&h.inflight);
        match self.handovers.target(group) {
            Some(to) => Err(ErrorCode::NotLeader { leader: Some(to) }),
            None => Ok(admitted),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Snapshot bytes this instance sent to other replicas (rebuilds and lagging followers).
    pub fn snapshot_bytes_sent(&self) -> u64 {
        self.throttle.sent()
    }

    /// Peers' current addresses (see [`Routes`]).
    pub fn routes(&self) -> &Arc<Routes> {
        &self.routes
    }

    async fn start(&self, group: GroupId, desc: GroupDesc) -> Result<GroupHandle, RaftStoreError> {
        let app = (self.factory)(group, &desc);
        let log = LogStore::new(group, self.store.clone(), app.clone())?;
        let sm = StateMachine::open(group, self.store.clone(), app.clone())
            .map_err(|e| RaftStoreError::Raft { group, detail: e.to_string() })?;
        let snapshot_size = sm.snapshot_size();
        let mut net = Network::new(group, self.pool.clone(), self.throttle.clone(), self.routes.clone());
        if app.has_external() {
            net = net.completing(Completer::new(app.clone(), self.store.snapshot_dir(group)));
        }
        let config =
            if self.recovering.contains(group) { self.recovering_config.clone() } else { self.raft_config.clone() };
        let log = log.sync_every_entry(self.cfg.sync_every_entry).recovering(self.recovering.contains(group));
        let raft = Raft::new(self.cfg.node_id.get(), config, net, log, sm)
            .await
            .map_err(|e| RaftStoreError::Raft { group, detail: e.to_string() })?;
        crate::snapshot_policy::spawn(group, self.me.clone(), self.cfg.snapshot_after_logs, snapshot_size);
        let h = GroupHandle { raft, app, desc, inflight: Arc::default() };
        self.groups.write().expect("groups lock").insert(group, h.clone());
        Ok(h)
    }

    /// Hosts `group` here with the given initial members (node id -> `host:port`). Idempotent: creating a
    /// group that already exists with the same description succeeds. When this instance is among the
    /// members the group is initialised with exactly that membership (every member does the same, which
    /// openraft allows); otherwise it waits to be added by the leader (as a learner).
    pub async fn create_group(
        &self,
        group: GroupId,
        desc: GroupDesc,
        members: BTreeMap<NodeId, String>,
    ) -> Result<(), ErrorCode> {
        self.create_group_led(group, desc, members, None).await
    }

    /// [`MultiRaft::create_group`], where only the member `first` initialises the group at once (and so
    /// campaigns first and leads, without a contested election): the caller creates it on `first` after
    /// the others. Another member initialises it itself only if it is still untouched after two
    /// election timeouts (`first` failed before campaigning).
    pub async fn create_group_led(
        &self,
        group: GroupId,
        desc: GroupDesc,
        members: BTreeMap<NodeId, String>,
        first: Option<NodeId>,
    ) -> Result<(), ErrorCode> {
        let _g = self.admin.lock().await;
        let h = match self.handle(group) {
            Some(h) if h.desc == desc => h,
            Some(h) => {
                return Err(ErrorCode::InvalidArgument(format!(
                    "group {group} exists here as {:?}, not {:?}",
                    h.desc.kind, desc.kind
                )))
            }
            None => {
                let mut b = WriteBatch::default();
                self.store.meta_put(&mut b, group, tag::GROUP_DESC, &desc);
                self.store.write_sync(b).map_err(|e| ErrorCode::Internal(e.to_string()))?;
                self.start(group, desc).await.map_err(|e| e.code())?
            }
        };
        let me = self.cfg.node_id;
        if !members.contains_key(&me) {
            return Ok(());
        }
        let nodes: BTreeMap<u64, BasicNode> =
            members.iter().map(|(id, addr)| (id.get(), BasicNode { addr: addr.clone() })).collect();
        if first.is_none_or(|f| f == me || !members.contains_key(&f)) {
            return initialize(&h.raft, group, nodes).await;
        }
        let (raft, wait) = (h.raft.clone(), self.cfg.election_timeout_max * 2);
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let m = raft.metrics().borrow().clone();
            if m.current_term == 0 && m.last_log_index.is_none() {
                tracing::info!(%group, "the first member did not start the group: starting it here");
                if let Err(e) = initialize(&raft, group, nodes).await {
                    tracing::debug!(%group, error = %e, "initialising a group after its first member");
                }
            }
        });
        Ok(())
    }

    /// Hosts a partition's replica as the master's `CreatePartition` asks, under the group kind `kind`;
    /// the description keeps the request. Its first member starts the group (see
    /// [`MultiRaft::create_group_led`]).
    pub async fn create_partition_group(&self, cp: &CreatePartition, kind: &str) -> Result<(), ErrorCode> {
        let members: BTreeMap<NodeId, String> = cp.members.iter().map(|r| (r.node, r.addr.clone())).collect();
        let desc = GroupDesc { kind: kind.into(), params: msg::encode(cp).to_vec() };
        let first = cp.members.first().map(|r| r.node);
        self.create_group_led(GroupId::from(cp.partition), desc, members, first).await
    }

    /// Stops the group and deletes its log, state and snapshots from this instance.
    pub async fn remove_group(&self, group: GroupId) -> Result<(), ErrorCode> {
        let _g = self.admin.lock().await;
        let h = self.groups.write().expect("groups lock").remove(&group);
        let Some(h) = h else { return Err(ErrorCode::GroupNotFound(group)) };
        self.leases.drop_group(group);
        let _ = h.raft.shutdown().await;
        self.store.purge_group(group).map_err(|e| e.code())?;
        h.app.on_remove();
        Ok(())
    }

    pub fn handle(&self, group: GroupId) -> Option<GroupHandle> {
        self.groups.read().expect("groups lock").get(&group).cloned()
    }

    fn get(&self, group: GroupId) -> Result<GroupHandle, ErrorCode> {
        self.handle(group).ok_or(ErrorCode::GroupNotFound(group))
    }

    pub fn groups(&self) -> Vec<GroupId> {
        let mut v: Vec<_> = self.groups.read().expect("groups lock").keys().copied().collect();
        v.sort();
        v
    }

    /// Proposes `cmd` to `group` and returns the app's reply once a majority committed and this leader
    /// applied it. On a follower: `NotLeader` with the leader's address when known.
    pub async fn write(&self, group: GroupId, cmd: Bytes) -> Result<Bytes, ErrorCode> {
        let h = self.get(group)?;
        let _admitted = self.admit(&h, group)?;
        let (start, term) = (std::time::Instant::now(), self.leading_term(&h));
        match h.raft.client_write(Cmd(cmd)).await {
            Ok(resp) => {
                // A commit is a quorum's acknowledgement of entries sent after `start`, just like a
                // barrier's heartbeat round: it grants the same read lease, so a read that follows a
                // write (a changed directory's attributes, the next lookup) needs no round of its own.
                // Only when this node led throughout, in one term.
                if let Some(t) = term.filter(|_| self.leading_term(&h) == term) {
                    self.grant_lease(group, t, start);
                }
                Ok(resp.data.0)
            }
            Err(e) => Err(self.write_error(group, e)),
        }
    }

    /// A quorum acknowledged this leader's messages of `term` sent after `start` (see [`crate::lease`]).
    fn grant_lease(&self, group: GroupId, term: u64, start: std::time::Instant) {
        self.leases.grant(group, term, start, self.cfg.election_timeout_min / 2);
    }

    /// The current term if this node leads the group.
    fn leading_term(&self, h: &GroupHandle) -> Option<u64> {
        let m = h.raft.metrics();
        let m = m.borrow();
        (m.current_leader == Some(self.cfg.node_id.get())).then_some(m.current_term)
    }

    /// Returns once a majority of the group has fsynced its log up to (at least) every entry committed
    /// before the call: what a client's `fsync` waits for (see [`crate::durability`]).
    pub async fn sync(&self, group: GroupId) -> Result<(), ErrorCode> {
        self.write(group, durability::SYNC).await.map(|_| ())
    }

    pub(crate) fn write_error(&self, group: GroupId, e: RaftError<u64, ClientWriteError<u64, BasicNode>>) -> ErrorCode {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => not_leader(&f, &self.routes),
            RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
                ErrorCode::InvalidArgument(format!("group {group}: {e}"))
            }
            RaftError::Fatal(e) => ErrorCode::Unavailable(format!("group {group}: {e}")),
        }
    }

    /// Returns once this instance is the leader and has applied everything committed before the call,
    /// so a read that follows sees every acknowledged write (read-index). A success grants a read lease
    /// (see [`MultiRaft::read_lease_holds`]).
    pub async fn read_barrier(&self, group: GroupId) -> Result<(), ErrorCode> {
        let h = self.get(group)?;
        // Its heartbeat round would renew the followers' leases that a handover waits out.
        let _admitted = self.admit(&h, group)?;
        let start = std::time::Instant::now();
        match h.raft.ensure_linearizable().await {
            Ok(_) => {
                if let Some(term) = self.leading_term(&h) {
                    self.grant_lease(group, term, start);
                }
                Ok(())
            }
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => Err(not_leader(&f, &self.routes)),
            Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_))) => Err(ErrorCode::NoQuorum),
            Err(RaftError::Fatal(e)) => Err(ErrorCode::Unavailable(format!("group {group}: {e}"))),
        }
    }

    /// Whether a local read of `group` is linearizable without a barrier: a barrier succeeded less
    /// than `election_timeout_min / 2` ago and this instance still leads in the same term (see
    /// [`crate::lease`]).
    pub fn read_lease_holds(&self, group: GroupId) -> bool {
        let Some(h) = self.handle(group) else { return false };
        let Some(term) = self.leading_term(&h) else { return false };
        self.handovers.target(group).is_none() && self.leases.holds(group, term)
    }

    /// [`MultiRaft::read_barrier`], skipped within a read lease.
    pub async fn lease_or_barrier(&self, group: GroupId) -> Result<(), ErrorCode> {
        if self.read_lease_holds(group) {
            return Ok(());
        }
        self.read_barrier(group).await
    }

    /// Local, possibly stale read access to a group's keyspace (after [`MultiRaft::read_barrier`] it is
    /// linearizable).
    pub fn view(&self, group: GroupId) -> Result<GroupView<'_>, ErrorCode> {
        self.get(group)?;
        Ok(GroupView::new(&self.store, group))
    }

    pub fn status(&self, group: GroupId) -> Result<GroupStatus, ErrorCode> {
        let h = self.get(group)?;
        let m = h.raft.metrics().borrow().clone();
        // Current addresses: those who call them need to reach them.
        let members = m
            .membership_config
            .membership()
            .nodes()
            .map(|(id, n)| (NodeId::from(*id), self.routes.resolve(NodeId::from(*id), &n.addr)))
            .collect();
        Ok(GroupStatus {
            group,
            kind: h.desc.kind.clone(),
            leader: m.current_leader.map(NodeId::from),
            term: m.current_term,
            last_log_index: m.last_log_index,
            last_applied: m.last_applied.map(|l| l.index),
            members,
            recovering: self.recovering.contains(group),
        })
    }

    /// Serves a Raft message from a peer (opcodes `RAFT_*`).
    pub async fn handle_raft(&self, req: Incoming) -> Result<Outgoing, ErrorCode> {
        let hdr: RaftHeader = msg::decode(&req.meta)?;
        let h = self.get(hdr.group)?;
        let bad = |e: postcard::Error| ErrorCode::InvalidArgument(format!("malformed raft message: {e}"));
        match req.opcode {
            Opcode::RAFT_APPEND => {
                let rpc = crate::types::decode_shared(&req.data).map_err(bad)?;
                let target = self.recovering.contains(hdr.group).then(|| recovery::catch_up_target(&rpc)).flatten();
                let resp = h.raft.append_entries(rpc).await;
                if recovery::caught_up(target, &resp) && self.recovering.remove(hdr.group) {
                    tracing::info!(group = %hdr.group, "caught up with the leader after a power loss: voting again");
                    h.raft.runtime_config().elect(true);
                }
                Ok(Outgoing::msg(&resp))
            }
            Opcode::RAFT_VOTE if self.recovering.contains(hdr.group) => Err(ErrorCode::Unavailable(format!(
                "group {} is recovering after a power loss and does not vote until a leader caught it up",
                hdr.group
            ))),
            Opcode::RAFT_VOTE => {
                let rpc = postcard::from_bytes(&req.data).map_err(bad)?;
                Ok(Outgoing::msg(&h.raft.vote(rpc).await))
            }
            Opcode::RAFT_SNAPSHOT => {
                let rpc: openraft::raft::InstallSnapshotRequest<crate::types::TypeConfig> =
                    postcard::from_bytes(&req.data).map_err(bad)?;
                let (vote, done) = (rpc.vote, rpc.done);
                let resp = h.raft.install_snapshot(rpc).await;
                // Accepted from a leader: no vote of ours is newer than its.
                if matches!(&resp, Ok(r) if r.vote <= vote) && !done {
                    self.receiving_chunk(hdr.group, &h.raft);
                } else if self.receiving.done(hdr.group) {
                    self.transfer_ended(hdr.group, &h.raft);
                }
                Ok(Outgoing::msg(&resp))
            }
            Opcode::RAFT_ELECT => {
                self.campaign(hdr.group).await?;
                Ok(Outgoing::msg(&()))
            }
            other => Err(ErrorCode::UnknownOpcode(other.0)),
        }
    }

    /// A snapshot chunk from the leader arrived: elections stay off until the transfer ends or stalls.
    fn receiving_chunk(&self, group: GroupId, raft: &crate::types::Raft) {
        if !self.receiving.chunk(group) {
            return;
        }
        raft.runtime_config().elect(false);
        let (me, raft, quiet) = (self.me.clone(), raft.clone(), self.cfg.election_timeout_max);
        tokio::spawn(async move {
            loop {
                let Some(mr) = me.upgrade() else { return };
                let Some(wait) = mr.receiving.quiet_for(group, quiet) else {
                    tracing::info!(%group, "no snapshot chunk for {quiet:?}: elections back on");
                    mr.transfer_ended(group, &raft);
                    return;
                };
                drop(mr);
                tokio::time::sleep(wait).await;
            }
        });
    }

    /// Elections back on after a snapshot transfer, unless the group waits for a leader after a power
    /// loss (`crate::recovery` turns them on then).
    fn transfer_ended(&self, group: GroupId, raft: &crate::types::Raft) {
        if !self.recovering.contains(group) {
            raft.runtime_config().elect(true);
        }
    }

    /// Stops every group (on instance shutdown), syncs the log and records a clean stop.
    pub async fn shutdown(&self) {
        let all: Vec<GroupHandle> = self.groups.read().expect("groups lock").values().cloned().collect();
        for h in all {
            let _ = h.raft.shutdown().await;
        }
        if let Err(e) = self.store.close_cleanly() {
            tracing::error!("recording a clean stop failed (the next start after a reboot will be cautious): {e}");
        }
    }
}

fn not_leader(f: &ForwardToLeader<u64, BasicNode>, routes: &Routes) -> ErrorCode {
    let leader = match (f.leader_id, &f.leader_node) {
        (Some(id), Some(n)) => {
            Some(LeaderHint { node: NodeId::from(id), addr: routes.resolve(NodeId::from(id), &n.addr) })
        }
        _ => None,
    };
    ErrorCode::NotLeader { leader }
}

/// Initialises a group with `nodes` as its voters; one already initialised (a retry, a restart, or a
/// vote or entry from another member) is fine.
async fn initialize(raft: &Raft, group: GroupId, nodes: BTreeMap<u64, BasicNode>) -> Result<(), ErrorCode> {
    match raft.initialize(nodes).await {
        Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
        Err(e) => Err(ErrorCode::Internal(format!("initialize group {group}: {e}"))),
    }
}
