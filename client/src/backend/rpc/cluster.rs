//! A client's connection to one volume: its view, and a leader-following client per partition.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use ferrum_proto::msg::master::{GetVolume, GetVolumeView, VolumeViewReply};
use ferrum_proto::msg::meta::MetaRoute;
use ferrum_proto::msg::topology::{Replica, VolumeView};
use ferrum_proto::msg::Rpc;
use ferrum_proto::rpc::{ClientConfig, ConnPool, LeaderClient, RetryPolicy, RpcError};
use ferrum_proto::{ErrorCode, InodeId, LeaderHint, PartitionId};
use tokio::time::Instant;

use super::ops::OpIds;
use crate::backend::deadline;

/// `ferrum mount --op-timeout`'s default: long enough to ride out leader elections, a node's restart
/// and a loaded cluster; short enough that a lost majority is reported within a minute.
pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// TCP connect and handshake, per attempt.
    pub connect_timeout: Duration,
    /// One request, from sending to the reply: a dead or wedged node never holds a call longer.
    pub request_timeout: Duration,
    /// The bound on every call to the cluster (`ferrum mount --op-timeout`): a call keeps retrying
    /// (other replicas, new leaders, a majority coming back) for this long after it started, then
    /// fails, and the application gets `EIO`. The attempt in flight is cut there too, so a leader that
    /// lost its majority (it accepts a write and never commits it) cannot hold a call longer.
    pub op_timeout: Duration,
    /// How often the view is re-fetched even when nothing failed (to learn of new partitions).
    pub view_refresh: Duration,
    /// How often the metanodes' queues of freed file data are drained.
    pub reclaim_every: Duration,
    /// How long mounting keeps trying to reach a master: long enough to ride out a master election
    /// (a few rounds of the election timeout, which is seconds), short enough that "no reachable
    /// master" is reported promptly.
    pub connect_deadline: Duration,
}

impl ClusterConfig {
    /// Retries within [`ClusterConfig::op_timeout`], backing off from 20 ms to 500 ms.
    fn policy(&self) -> RetryPolicy {
        RetryPolicy { deadline: self.op_timeout, ..RetryPolicy::default() }
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            connect_timeout: Duration::from_secs(3),
            // Long enough for a multi-MiB write to a loaded, 3-way replicated partition; a dead node
            // is noticed sooner (refused connections, NotLeader from the others).
            request_timeout: Duration::from_secs(20),
            op_timeout: DEFAULT_OP_TIMEOUT,
            view_refresh: Duration::from_secs(5),
            reclaim_every: Duration::from_secs(2),
            connect_deadline: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("volume {0:?} does not exist")]
    UnknownVolume(String),
    #[error("no reachable master among {addrs}: {reason}")]
    NoMaster { addrs: String, reason: String },
    #[error("the master refused the volume view: {0}")]
    Master(ErrorCode),
    #[error("volume {0:?} has no meta partition holding the root inode (is it fully created?)")]
    NoRoot(String),
}

/// Where each partition is, as of one view version.
struct Routes {
    view: Arc<VolumeView>,
    meta: HashMap<PartitionId, LeaderClient>,
    data: HashMap<PartitionId, LeaderClient>,
    /// The meta partitions as metanodes need them to coordinate operations that span partitions.
    meta_routes: Arc<Vec<MetaRoute>>,
    /// Data partitions that answered `NoSpace`/`ReadOnly` since the last view: no new extents there.
    full: HashSet<PartitionId>,
    /// Meta partitions whose inode range is used up: new inodes go elsewhere.
    exhausted: HashSet<PartitionId>,
}

pub struct Cluster {
    volume: String,
    pool: ConnPool,
    master: LeaderClient,
    policy: RetryPolicy,
    op_timeout: Duration,
    routes: RwLock<Routes>,
    /// One view refresh at a time; the others wait for it instead of asking again.
    refreshing: tokio::sync::Mutex<()>,
    pub ops: OpIds,
    next_data: AtomicUsize,
}

/// Replica addresses with the last known leader first.
fn addrs(replicas: &[Replica], leader: &Option<LeaderHint>) -> Vec<String> {
    let mut out: Vec<String> = leader.iter().map(|l| l.addr.clone()).collect();
    for r in replicas {
        if !out.contains(&r.addr) {
            out.push(r.addr.clone());
        }
    }
    out
}

impl Cluster {
    pub async fn connect(masters: Vec<String>, volume: &str, cfg: ClusterConfig) -> Result<Arc<Cluster>, ConnectError> {
        let pool = ConnPool::new(ClientConfig {
            connect_timeout: cfg.connect_timeout,
            request_timeout: cfg.request_timeout,
            ..ClientConfig::default()
        });
        let master = LeaderClient::new(pool.clone(), masters.clone(), cfg.policy());
        let first = RetryPolicy { deadline: cfg.connect_deadline, ..cfg.policy() };
        let req = GetVolumeView { name: volume.to_string(), known_version: 0 };
        let view = match LeaderClient::new(pool.clone(), masters.clone(), first).call(&req).await {
            Ok(VolumeViewReply::Changed(view)) => view,
            Ok(VolumeViewReply::Unchanged { .. }) => {
                return Err(ConnectError::Master(ErrorCode::Internal("`Unchanged` for a client with no view".into())))
            }
            Err(RpcError::Remote(ErrorCode::VolumeNotFound(_))) => {
                return Err(ConnectError::UnknownVolume(volume.to_string()))
            }
            Err(RpcError::Remote(code)) if !code.is_retryable() => return Err(ConnectError::Master(code)),
            Err(e) => return Err(ConnectError::NoMaster { addrs: masters.join(","), reason: e.to_string() }),
        };
        if view.meta_partition_of(InodeId::ROOT).is_none() {
            return Err(ConnectError::NoRoot(volume.to_string()));
        }
        let cluster = Arc::new(Cluster::with_view(pool, master, view, &cfg));
        Self::spawn_refresher(Arc::downgrade(&cluster), cfg.view_refresh);
        Ok(cluster)
    }

    /// A cluster handle for `view`, without asking anyone (the refresher is not started).
    pub fn with_view(pool: ConnPool, master: LeaderClient, view: VolumeView, cfg: &ClusterConfig) -> Cluster {
        let cluster = Cluster {
            volume: view.name.clone(),
            pool,
            master,
            policy: cfg.policy(),
            op_timeout: cfg.op_timeout,
            routes: RwLock::new(Routes {
                view: Arc::new(view.clone()),
                meta: HashMap::new(),
                data: HashMap::new(),
                meta_routes: Arc::new(Vec::new()),
                full: HashSet::new(),
                exhausted: HashSet::new(),
            }),
            refreshing: tokio::sync::Mutex::new(()),
            ops: OpIds::new(),
            next_data: AtomicUsize::new(0),
        };
        cluster.install(view);
        cluster
    }

    pub fn volume(&self) -> &str {
        &self.volume
    }

    pub fn view(&self) -> Arc<VolumeView> {
        self.routes.read().expect("routes lock").view.clone()
    }

    /// Re-fetches the view now and then, until the cluster is dropped.
    fn spawn_refresher(me: Weak<Cluster>, every: Duration) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(c) = me.upgrade() else { return };
                if let Err(e) = c.refresh().await {
                    tracing::warn!(volume = %c.volume, error = %e, "volume view refresh failed");
                }
            }
        });
    }

    /// Builds the partition clients for `view`, keeping the connections and known leaders of
    /// partitions that did not move.
    fn install(&self, view: VolumeView) {
        let mut r = self.routes.write().expect("routes lock");
        let mut meta = HashMap::new();
        for p in &view.meta_partitions {
            meta.insert(p.partition, self.client_for(r.meta.remove(&p.partition), addrs(&p.replicas, &p.leader)));
        }
        let mut data = HashMap::new();
        for p in &view.data_partitions {
            data.insert(p.partition, self.client_for(r.data.remove(&p.partition), addrs(&p.replicas, &p.leader)));
        }
        tracing::debug!(volume = %view.name, version = view.version, "volume view installed");
        let meta_routes = Arc::new(view.meta_partitions.iter().map(MetaRoute::from).collect());
        let exhausted = std::mem::take(&mut r.exhausted);
        *r = Routes { view: Arc::new(view), meta, data, meta_routes, full: HashSet::new(), exhausted };
    }

    fn client_for(&self, old: Option<LeaderClient>, addrs: Vec<String>) -> LeaderClient {
        match old {
            Some(c) => {
                c.set_addrs(addrs);
                c
            }
            None => LeaderClient::new(self.pool.clone(), addrs, self.policy.clone()),
        }
    }

    /// When a call starting now must have its answer: [`ClusterConfig::op_timeout`] from now, or the
    /// caller's [`deadline::within`] if that is earlier.
    pub fn deadline(&self) -> Instant {
        let own = Instant::now() + self.op_timeout;
        deadline::current().map_or(own, |d| d.min(own))
    }

    /// Asks the master for a newer view. Concurrent callers share one request.
    pub async fn refresh(&self) -> Result<(), ErrorCode> {
        self.refresh_until(self.deadline()).await
    }

    /// [`Cluster::refresh`] within a caller's deadline (waiting for another caller's refresh included).
    pub async fn refresh_until(&self, deadline: Instant) -> Result<(), ErrorCode> {
        let known = self.view().version;
        let _one = tokio::time::timeout_at(deadline, self.refreshing.lock()).await.map_err(|_| ErrorCode::Timeout)?;
        if self.view().version != known {
            return Ok(());
        }
        let req = GetVolumeView { name: self.volume.clone(), known_version: known };
        match self.master.call_until(&req, deadline).await.map_err(|e| e.code())? {
            VolumeViewReply::Changed(view) => self.install(view),
            VolumeViewReply::Unchanged { .. } => {}
        }
        Ok(())
    }

    fn meta_route(&self, ino: InodeId) -> Option<(PartitionId, LeaderClient)> {
        let r = self.routes.read().expect("routes lock");
        let p = r.view.meta_partition_of(ino)?.partition;
        Some((p, r.meta.get(&p)?.clone()))
    }

    fn data_route(&self, partition: PartitionId) -> Option<LeaderClient> {
        self.routes.read().expect("routes lock").data.get(&partition).cloned()
    }

    /// Whether an error means "the view may be out of date": the partition is not where we looked, or
    /// nobody answered (its replicas may have been moved; worth a refresh if time is left).
    fn view_suspect(code: &ErrorCode) -> bool {
        matches!(code, ErrorCode::PartitionNotFound(_) | ErrorCode::GroupNotFound(_) | ErrorCode::InodeRangeEnd { .. })
            || code.is_retryable()
    }

    /// Calls the meta partition that holds `ino`; `make` builds the request for a partition id (called
    /// again after a view refresh, with the same `OpId` captured inside it).
    pub async fn call_meta<R: Rpc>(
        &self,
        ino: InodeId,
        make: impl FnMut(PartitionId) -> R,
    ) -> Result<R::Response, ErrorCode> {
        self.call_meta_until(ino, make, self.deadline()).await
    }

    /// [`Cluster::call_meta`] answered by `deadline` (for a caller that makes several calls as one).
    pub async fn call_meta_until<R: Rpc>(
        &self,
        ino: InodeId,
        mut make: impl FnMut(PartitionId) -> R,
        deadline: Instant,
    ) -> Result<R::Response, ErrorCode> {
        let mut refreshed = false;
        loop {
            let Some((partition, client)) = self.meta_route(ino) else {
                if !refreshed {
                    refreshed = true;
                    self.refresh_until(deadline).await?;
                    continue;
                }
                // No partition's range holds it: an inode number this volume never issued.
                return Err(ErrorCode::NotFound);
            };
            match client.call_until(&make(partition), deadline).await {
                Ok(resp) => return Ok(resp),
                Err(e) => {
                    let code = e.code();
                    if !refreshed && Self::view_suspect(&code) && Instant::now() < deadline {
                        refreshed = true;
                        if self.refresh_until(deadline).await.is_ok() {
                            continue;
                        }
                    }
                    return Err(code);
                }
            }
        }
    }

    /// Calls a data partition's leader with `data` as the payload; returns the reply and its payload.
    pub async fn call_data<R: Rpc>(
        &self,
        partition: PartitionId,
        req: &R,
        data: Bytes,
    ) -> Result<(R::Response, Bytes), ErrorCode> {
        self.call_data_until(partition, req, data, self.deadline()).await
    }

    /// [`Cluster::call_data`] answered by `deadline`.
    pub async fn call_data_until<R: Rpc>(
        &self,
        partition: PartitionId,
        req: &R,
        data: Bytes,
        deadline: Instant,
    ) -> Result<(R::Response, Bytes), ErrorCode> {
        let mut refreshed = false;
        loop {
            let Some(client) = self.data_route(partition) else {
                if !refreshed {
                    refreshed = true;
                    self.refresh_until(deadline).await?;
                    continue;
                }
                return Err(ErrorCode::PartitionNotFound(partition));
            };
            match client.call_with_data_until(req, data.clone(), deadline).await {
                Ok(ok) => return Ok(ok),
                Err(e) => {
                    let code = e.code();
                    if !refreshed && Self::view_suspect(&code) && Instant::now() < deadline {
                        refreshed = true;
                        if self.refresh_until(deadline).await.is_ok() {
                            continue;
                        }
                    }
                    return Err(code);
                }
            }
        }
    }

    /// Every meta partition of the volume with the first inode of its range (to route a call to it).
    pub fn meta_partitions(&self) -> Vec<(PartitionId, InodeId)> {
        let r = self.routes.read().expect("routes lock");
        r.view.meta_partitions.iter().map(|p| (p.partition, p.inodes.start)).collect()
    }

    /// Writable data partitions in round-robin order from the next one, for placing a new extent.
    pub fn data_candidates(&self) -> Vec<PartitionId> {
        let r = self.routes.read().expect("routes lock");
        let writable: Vec<PartitionId> = r
            .view
            .data_partitions
            .iter()
            .filter(|p| p.writable && !r.full.contains(&p.partition))
            .map(|p| p.partition)
            .collect();
        if writable.is_empty() {
            return writable;
        }
        let start = self.next_data.fetch_add(1, Ordering::Relaxed) % writable.len();
        writable[start..].iter().chain(&writable[..start]).copied().collect()
    }

    /// Whether new data may go to `partition` (in the view, writable, not found full).
    pub fn is_writable(&self, partition: PartitionId) -> bool {
        let r = self.routes.read().expect("routes lock");
        !r.full.contains(&partition) && r.view.data_partitions.iter().any(|p| p.partition == partition && p.writable)
    }

    /// The volume's meta partitions, for requests that may span them.
    pub fn meta_routes(&self) -> Vec<MetaRoute> {
        self.routes.read().expect("routes lock").meta_routes.as_ref().clone()
    }

    /// Where a new inode created in a directory of `partition` goes: that partition (no coordination
    /// needed) unless its inode range is used up, then the open-ended last partition.
    pub fn inode_partition(&self, partition: PartitionId) -> PartitionId {
        let r = self.routes.read().expect("routes lock");
        if !r.exhausted.contains(&partition) {
            return partition;
        }
        r.view
            .meta_partitions
            .iter()
            .filter(|p| !r.exhausted.contains(&p.partition))
            .max_by_key(|p| p.inodes.start)
            .map_or(partition, |p| p.partition)
    }

    /// `partition` allocates no more inodes (it answered `InodeRangeEnd` to a create).
    pub fn mark_exhausted(&self, partition: PartitionId) {
        self.routes.write().expect("routes lock").exhausted.insert(partition);
    }

    pub fn is_exhausted(&self, partition: PartitionId) -> bool {
        self.routes.read().expect("routes lock").exhausted.contains(&partition)
    }

    /// The volume's capacity from the master (`None`: unlimited).
    pub async fn capacity(&self) -> Result<Option<u64>, ErrorCode> {
        let req = GetVolume { name: self.volume.clone() };
        let info = self.master.call_until(&req, self.deadline()).await.map_err(|e| e.code())?;
        Ok((info.capacity > 0).then_some(info.capacity))
    }

    /// Stops placing new extents on `partition` until the next view.
    pub fn mark_full(&self, partition: PartitionId) {
        self.routes.write().expect("routes lock").full.insert(partition);
    }
}

#[cfg(test)]
mod tests {
    use ferrum_proto::msg::topology::{DataPartitionView, InodeRange, MetaPartitionView};
    use ferrum_proto::{NodeId, VolumeId};

    use super::*;

    fn replica(n: u64) -> Replica {
        Replica { node: NodeId(n), addr: format!("127.0.0.1:{}", 9000 + n) }
    }

    fn hint(n: u64) -> Option<LeaderHint> {
        Some(LeaderHint { node: NodeId(n), addr: format!("127.0.0.1:{}", 9000 + n) })
    }

    fn view() -> VolumeView {
        let meta = |p, start, end| MetaPartitionView {
            partition: PartitionId(p),
            inodes: InodeRange { start: InodeId(start), end: InodeId(end) },
            replicas: vec![replica(1), replica(2), replica(3)],
            leader: hint(2),
        };
        let data = |p, writable| DataPartitionView {
            partition: PartitionId(p),
            replicas: vec![replica(4), replica(5), replica(6)],
            leader: None,
            writable,
        };
        VolumeView {
            volume: VolumeId(1),
            name: "v".into(),
            version: 7,
            meta_partitions: vec![meta(1, 1, 1000), meta(2, 1000, u64::MAX)],
            data_partitions: vec![data(10, true), data(11, false), data(12, true), data(13, true)],
        }
    }

    fn cluster() -> Cluster {
        let pool = ConnPool::new(ClientConfig::default());
        let master = LeaderClient::new(pool.clone(), vec!["127.0.0.1:1".into()], RetryPolicy::default());
        Cluster::with_view(pool, master, view(), &ClusterConfig::default())
    }

    #[test]
    fn the_known_leader_is_tried_first() {
        assert_eq!(addrs(&[replica(1), replica(2)], &hint(2)), vec!["127.0.0.1:9002", "127.0.0.1:9001"]);
        assert_eq!(addrs(&[replica(1), replica(2)], &None), vec!["127.0.0.1:9001", "127.0.0.1:9002"]);
        let c = cluster();
        let (p, client) = c.meta_route(InodeId(5000)).unwrap();
        assert_eq!(p, PartitionId(2));
        assert_eq!(client.leader().as_deref(), Some("127.0.0.1:9002"));
        assert_eq!(c.meta_route(InodeId::ROOT).unwrap().0, PartitionId(1));
        assert_eq!(c.meta_routes().len(), 2);
    }

    #[test]
    fn new_extents_rotate_over_writable_partitions_and_skip_full_ones() {
        let c = cluster();
        let firsts: Vec<PartitionId> = (0..3).map(|_| c.data_candidates()[0]).collect();
        assert_eq!(firsts, vec![PartitionId(10), PartitionId(12), PartitionId(13)]);
        assert!(!c.data_candidates().contains(&PartitionId(11)), "not writable");
        c.mark_full(PartitionId(12));
        let left = c.data_candidates();
        assert_eq!(left.len(), 2);
        assert!(!left.contains(&PartitionId(12)));
        // A new view forgets what was full (the master knows better).
        c.install(view());
        assert_eq!(c.data_candidates().len(), 3);
    }

    #[test]
    fn new_inodes_leave_an_exhausted_partition() {
        let c = cluster();
        assert_eq!(c.inode_partition(PartitionId(1)), PartitionId(1));
        c.mark_exhausted(PartitionId(1));
        assert_eq!(c.inode_partition(PartitionId(1)), PartitionId(2), "the open-ended last partition");
        c.install(view());
        assert_eq!(c.inode_partition(PartitionId(1)), PartitionId(2), "still exhausted after a refresh");
    }

    #[test]
    fn errors_that_suggest_a_stale_view() {
        assert!(Cluster::view_suspect(&ErrorCode::PartitionNotFound(PartitionId(1))));
        assert!(Cluster::view_suspect(&ErrorCode::Timeout));
        let split = ErrorCode::InodeRangeEnd { partition: PartitionId(1), end: InodeId(1000) };
        assert!(Cluster::view_suspect(&split), "an inode past a split range: the view predates the split");
        assert!(!Cluster::view_suspect(&ErrorCode::NotFound));
        assert!(!Cluster::view_suspect(&ErrorCode::Exists));
    }
}
