//! Starting a master: the instance, its identity in the master group, the group itself, the RPC
//! service, the admin API, metrics and the leader's background work.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ferrum_proto::msg::master::{JoinMaster, PromoteMaster};
use ferrum_proto::rpc::{ConnPool, LeaderClient, RetryPolicy};
use ferrum_proto::{GroupId, NodeId};
use ferrum_raftstore::instance::{self, Role, Shutdown};
use ferrum_raftstore::{App, AppFactory, Instance};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::{ForeignApp, MasterApp, SharedState, GROUP_KIND};
use crate::bootstrap::{self, GroupParams};
use crate::config::MasterConfig;
use crate::error::MasterError;
use crate::liveness::Liveness;
use crate::metrics::MasterMetrics;
use crate::resources::{LocalResources, ResourceCache, RpcSource};
use crate::service::{Master, MasterService};

/// How long a joining master tries to reach the cluster before giving up.
const JOIN_DEADLINE: Duration = Duration::from_secs(30);

/// A started master; it serves until its shutdown is triggered (or SIGTERM/SIGINT).
pub struct RunningMaster {
    pub master: Arc<Master>,
    pub shutdown: Shutdown,
    /// Where the admin API listens, when enabled.
    pub admin_addr: Option<SocketAddr>,
    serving: JoinHandle<Result<(), MasterError>>,
}

impl RunningMaster {
    /// Waits until the master has stopped.
    pub async fn wait(self) -> Result<(), MasterError> {
        match self.serving.await {
            Ok(r) => r,
            Err(e) => Err(MasterError::Group(ferrum_proto::ErrorCode::Internal(format!("server task: {e}")))),
        }
    }

    /// Stops the master and waits for it.
    pub async fn stop(self) -> Result<(), MasterError> {
        self.shutdown.trigger();
        self.wait().await
    }
}

/// Starts a master and serves until shutdown.
pub async fn run(config: MasterConfig) -> Result<(), MasterError> {
    start(config).await?.wait().await
}

pub async fn start(config: MasterConfig) -> Result<RunningMaster, MasterError> {
    let cfg = config.master.clone();
    let mut inst = Instance::start(config.instance, Role::Master).await?;
    // The cluster's truth changes rarely and no client fsync covers it: every entry goes to disk.
    inst.config.raft.sync_every_entry = true;
    let advertise = inst.config.advertise.clone();
    let (params, joining) = match bootstrap::stored(&inst.store)? {
        Some(p) => {
            if !cfg.peers.is_empty() || !cfg.join.is_empty() {
                tracing::info!("this master already belongs to a cluster; --peers/--join are ignored");
            }
            // A joined master that never became a voter (it stopped too early) asks again.
            let joined = p.initial_members().is_empty();
            (p, joined.then(|| cfg.join.clone()))
        }
        None if !cfg.join.is_empty() => {
            let id = join(&inst.pool, &cfg.join, &advertise).await?;
            (GroupParams::V1 { self_id: id, initial_members: Vec::new() }, Some(cfg.join.clone()))
        }
        None => (bootstrap::from_peers(&cfg.peers, &advertise)?, None),
    };
    let self_id = params.self_id();
    tracing::info!(master = %self_id, advertise = %advertise, "master identity");
    let initial = params.initial_members().len();
    if initial % 2 == 0 && initial > 0 {
        // Allowed, but an even group tolerates no more failures than the odd one below it.
        tracing::warn!(masters = initial, "an even number of masters: use 1, 3 or 5");
    }

    let state = SharedState::default();
    let factory: AppFactory = {
        let state = state.clone();
        Arc::new(move |group, desc| -> Arc<dyn App> {
            if group == GroupId::MASTER && desc.kind == GROUP_KIND {
                Arc::new(MasterApp::new(state.clone()))
            } else {
                tracing::error!(%group, kind = %desc.kind, "a master hosts only the master group; refusing this one");
                Arc::new(ForeignApp)
            }
        })
    };
    let raft = inst.open_raft(self_id, factory).await?;
    // On a restart the group is reopened from RocksDB; it is created (and initialised with the
    // bootstrap members) only if it never got that far.
    let initialized = match raft.handle(GroupId::MASTER) {
        Some(h) => h.raft.is_initialized().await.unwrap_or(false),
        None => false,
    };
    if !initialized {
        raft.create_group(GroupId::MASTER, params.desc(), params.initial_members())
            .await
            .map_err(MasterError::Group)?;
    }

    let resources = ResourceCache::new(
        Arc::new(RpcSource { pool: inst.pool.clone(), timeout: cfg.node_rpc_timeout() }),
        advertise.clone(),
        LocalResources { data_dir: inst.data_dir.path().to_path_buf() },
        cfg.ttls(),
    );
    let master = Arc::new(Master::new(
        self_id,
        advertise.clone(),
        raft.clone(),
        state,
        Liveness::new(cfg.timeouts()),
        resources,
        inst.pool.clone(),
        cfg.clone(),
    ));
    let stop = inst.shutdown.token();
    tokio::spawn(master.clone().run_background(stop.clone()));
    tokio::spawn(master.clone().run_repairs(stop.clone()));
    tokio::spawn(master.clone().run_leader_balance(stop.clone()));
    MasterMetrics::register(&inst.metrics, master.clone(), stop.clone());

    let admin_addr = match cfg.admin_listen {
        Some(addr) => {
            let listener = instance::bind(addr, "admin")?;
            let bound = listener.local_addr().ok();
            let (m, s) = (master.clone(), stop.clone());
            tokio::spawn(async move {
                if let Err(e) = crate::admin_http::serve(listener, m, s).await {
                    tracing::error!("admin API stopped: {e}");
                }
            });
            tracing::info!(addr = ?bound, "admin API listening");
            bound
        }
        None => None,
    };
    if let Some(seeds) = joining {
        tokio::spawn(promote(master.clone(), seeds, stop.clone()));
    }
    let shutdown = inst.shutdown.clone();
    let service = Arc::new(MasterService { master: master.clone() });
    let serving = tokio::spawn(async move { Ok(inst.serve(service, Some(raft)).await?) });
    Ok(RunningMaster { master, shutdown, admin_addr, serving })
}

fn join_policy() -> RetryPolicy {
    RetryPolicy { deadline: JOIN_DEADLINE, ..RetryPolicy::default() }
}

/// Gets this master's Raft id from the running group.
async fn join(pool: &ConnPool, seeds: &[String], advertise: &str) -> Result<NodeId, MasterError> {
    let client = LeaderClient::new(pool.clone(), seeds.to_vec(), join_policy());
    match client.call(&JoinMaster { addr: advertise.to_string() }).await {
        Ok(r) => Ok(r.id),
        Err(e) => Err(MasterError::Join { through: seeds.join(","), reason: e.to_string() }),
    }
}

/// Asks the group to make this (serving) master a voter, until it is one.
async fn promote(master: Arc<Master>, join: Vec<String>, stop: CancellationToken) {
    let req = PromoteMaster { id: master.id, addr: master.advertise.clone() };
    loop {
        let members = master.members();
        if members.iter().any(|m| m.id == master.id && m.voter) {
            tracing::info!("this master is a voting member of the master group");
            return;
        }
        // The masters it joined through, and those its Raft log knows of (after a restart).
        let mut seeds = join.clone();
        seeds.extend(members.into_iter().map(|m| m.addr).filter(|a| *a != master.advertise && !join.contains(a)));
        let client = LeaderClient::new(master.pool.clone(), seeds, join_policy());
        let attempt = tokio::select! {
            _ = stop.cancelled() => return,
            r = client.call(&req) => r,
        };
        if let Err(e) = attempt {
            tracing::warn!(error = %e, "not promoted to voter yet; retrying");
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            // Also the time for our own Raft to learn of the new membership.
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}
