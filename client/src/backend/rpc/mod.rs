//! The backends over the cluster: the master for the volume view, partition leaders for the rest.
//!
//! [`Cluster`] holds the volume view (refreshed periodically and whenever a partition cannot be found
//! where the view says), one [`LeaderClient`](ferrum_proto::rpc::LeaderClient) per partition (follows
//! `NotLeader` hints, bounded retries with backoff), and the `OpId` sequence that makes retried
//! mutations idempotent. [`RpcMeta`] and [`RpcData`] are thin: build the message, route it, unwrap.
//! A background task releases file data the metanodes report as freed (see [`reclaim`]).

mod cluster;
mod data;
mod extent_pool;
mod meta;
mod ops;
mod reclaim;

use std::sync::Arc;

pub use cluster::{Cluster, ClusterConfig, ConnectError};
pub use data::RpcData;
pub use meta::RpcMeta;
pub use ops::OpIds;
pub use reclaim::reclaim;

/// Connects to the volume `volume` through the masters at `masters` and returns its two backends.
pub async fn connect(
    masters: Vec<String>,
    volume: &str,
    cfg: ClusterConfig,
) -> Result<(RpcMeta, RpcData), ConnectError> {
    let reclaim_every = cfg.reclaim_every;
    let cluster = Cluster::connect(masters, volume, cfg).await?;
    reclaim::spawn_reclaimer(Arc::downgrade(&cluster), reclaim_every);
    Ok(backends(cluster))
}

/// Both backends share one cluster connection.
pub fn backends(cluster: Arc<Cluster>) -> (RpcMeta, RpcData) {
    (RpcMeta::new(cluster.clone()), RpcData::new(cluster))
}
