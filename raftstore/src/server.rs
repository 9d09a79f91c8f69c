//! The runtime every Ferrum service instance shares: data-dir lock, ports, RocksDB, Raft groups, the
//! RPC server and the metrics endpoint, and a graceful stop on SIGTERM/SIGINT.
//!
//! Start-up order matters for clear errors: the data dir is locked first, then every port is bound,
//! all before anything is opened, so a clash fails at once with a one-line message and touches nothing.

use std::sync::Arc;

use ferrum_proto::rpc::{serve, ClientConfig, ConnPool, Handler, ServerConfig};
use ferrum_proto::NodeId;
use tokio::net::TcpListener;

use crate::app::AppFactory;
use crate::error::RaftStoreError;
use crate::instance::{self, DataDir, InstanceConfig, Metrics, Role, Shutdown};
use crate::metrics::RaftMetrics;
use crate::router::{MultiRaft, MultiRaftConfig};
use crate::store::Store;

pub struct Instance {
    pub config: InstanceConfig,
    pub role: Role,
    pub data_dir: DataDir,
    pub store: Store,
    /// Outgoing connections of this instance (Raft peers and other services), shared by all groups.
    pub pool: ConnPool,
    pub metrics: Arc<Metrics>,
    pub shutdown: Shutdown,
    rpc_listener: TcpListener,
    metrics_listener: Option<TcpListener>,
}

impl Instance {
    /// Locks the data dir, binds the RPC and metrics ports, opens RocksDB. Must run inside tokio.
    pub async fn start(config: InstanceConfig, role: Role) -> Result<Instance, RaftStoreError> {
        instance::init_tracing(role, &config.log)?;
        let data_dir = DataDir::open(&config.data_dir, role)?;
        let rpc_listener = instance::bind(config.listen, "rpc")?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(instance::bind(addr, "metrics")?),
            None => None,
        };
        let shutdown = Shutdown::install_signal_handlers()?;
        let store = Store::open_with(data_dir.path(), &config.store_options())?;
        let metrics = Arc::new(Metrics::new(role, data_dir.instance_uuid().as_str()));
        let pool = ConnPool::new(ClientConfig::default());
        tracing::info!(
            role = role.as_str(),
            listen = %config.listen,
            advertise = %config.advertise,
            data_dir = %config.data_dir.display(),
            instance = data_dir.instance_uuid().as_str(),
            "instance started"
        );
        Ok(Instance { config, role, data_dir, store, pool, metrics, shutdown, rpc_listener, metrics_listener })
    }

    pub fn multi_raft_config(&self, node_id: NodeId) -> MultiRaftConfig {
        MultiRaftConfig::from_raft(node_id, self.config.advertise.clone(), &self.config.raft)
    }

    /// Opens the groups this instance hosts (as persisted) under Raft node id `node_id`.
    pub async fn open_raft(&self, node_id: NodeId, factory: AppFactory) -> Result<Arc<MultiRaft>, RaftStoreError> {
        let mr =
            MultiRaft::open(self.multi_raft_config(node_id), self.store.clone(), self.pool.clone(), factory).await?;
        RaftMetrics::register(&self.metrics, &mr, self.shutdown.token());
        Ok(mr)
    }

    /// Serves requests with `handler` until SIGTERM/SIGINT (or [`Shutdown::trigger`]), then stops the Raft
    /// groups and returns.
    pub async fn serve<H: Handler>(self, handler: Arc<H>, raft: Option<Arc<MultiRaft>>) -> Result<(), RaftStoreError> {
        let token = self.shutdown.token();
        let metrics_task = self.metrics_listener.map(|l| {
            let (m, s) = (self.metrics.clone(), self.shutdown.clone());
            tokio::spawn(async move {
                if let Err(e) = instance::serve_metrics(l, m, s).await {
                    tracing::error!("metrics endpoint stopped: {e}");
                }
            })
        });
        serve(self.rpc_listener, handler, ServerConfig::default(), token).await;
        tracing::info!("shutting down");
        if let Some(mr) = raft {
            mr.shutdown().await;
        }
        if let Some(t) = metrics_task {
            let _ = t.await;
        }
        drop(self.data_dir);
        tracing::info!("stopped");
        Ok(())
    }
}
