//! What recovery and fsck need of a volume's meta partitions — apply a step, scan a table — whether
//! they run inside a metanode ([`crate::peers::Peers`]: local partitions directly) or in a separate
//! tool ([`RemoteCluster`]: RPC only).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use bytes::Bytes;
use ferrum_proto::msg::meta::MetaRoute;
use ferrum_proto::msg::Rpc;
use ferrum_proto::rpc::{ConnPool, LeaderClient, RetryPolicy};
use ferrum_proto::{ErrorCode, PartitionId};

use crate::cmd::{Body, OpKey, Outcome};
use crate::peers::Peers;
use crate::read;
use crate::wire::{Scan, ScanResp, Table, TxnStep};

pub trait Cluster: Send + Sync {
    /// Applies `body` under `key` in the partition of `route`.
    fn step(
        &self,
        route: &MetaRoute,
        key: OpKey,
        body: Body,
    ) -> impl Future<Output = Result<Outcome, ErrorCode>> + Send;

    /// One page of a table of the partition of `route`.
    fn scan(
        &self,
        route: &MetaRoute,
        table: Table,
        after: Option<Bytes>,
        limit: u32,
    ) -> impl Future<Output = Result<ScanResp, ErrorCode>> + Send;
}

impl Cluster for Peers {
    async fn step(&self, route: &MetaRoute, key: OpKey, body: Body) -> Result<Outcome, ErrorCode> {
        Peers::step(self, route, key, body).await
    }

    async fn scan(
        &self,
        route: &MetaRoute,
        table: Table,
        after: Option<Bytes>,
        limit: u32,
    ) -> Result<ScanResp, ErrorCode> {
        if self.hosts(route.partition) {
            let a = after.clone();
            match self.read(route.partition, move |kv, _| read::scan(kv, table, a.as_deref(), limit)).await {
                Err(ErrorCode::NotLeader { .. }) => {}
                other => return other,
            }
        }
        remote_call(
            self.pool(),
            &RetryPolicy::default(),
            route,
            &Scan { partition: route.partition, table, after, limit },
        )
        .await
    }
}

async fn remote_call<R: Rpc>(
    pool: &ConnPool,
    policy: &RetryPolicy,
    route: &MetaRoute,
    req: &R,
) -> Result<R::Response, ErrorCode> {
    LeaderClient::new(pool.clone(), route.replicas.clone(), policy.clone()).call(req).await.map_err(|e| e.code())
}

/// Partitions reached over RPC only (the fsck tool, tests).
pub struct RemoteCluster {
    pool: ConnPool,
    policy: RetryPolicy,
    leaders: Mutex<HashMap<PartitionId, LeaderClient>>,
}

impl RemoteCluster {
    pub fn new(pool: ConnPool, policy: RetryPolicy) -> RemoteCluster {
        RemoteCluster { pool, policy, leaders: Mutex::new(HashMap::new()) }
    }

    fn leader(&self, route: &MetaRoute) -> LeaderClient {
        self.leaders
            .lock()
            .expect("leaders lock")
            .entry(route.partition)
            .or_insert_with(|| LeaderClient::new(self.pool.clone(), route.replicas.clone(), self.policy.clone()))
            .clone()
    }
}

impl Cluster for RemoteCluster {
    async fn step(&self, route: &MetaRoute, key: OpKey, body: Body) -> Result<Outcome, ErrorCode> {
        let req = TxnStep { partition: route.partition, op: key.op, step: key.step, body };
        self.leader(route).call(&req).await.map_err(|e| e.code())
    }

    async fn scan(
        &self,
        route: &MetaRoute,
        table: Table,
        after: Option<Bytes>,
        limit: u32,
    ) -> Result<ScanResp, ErrorCode> {
        let req = Scan { partition: route.partition, table, after, limit };
        self.leader(route).call(&req).await.map_err(|e| e.code())
    }
}

/// Every item of a table, page by page.
pub async fn scan_all(
    c: &impl Cluster,
    route: &MetaRoute,
    table: Table,
) -> Result<Vec<crate::wire::ScanItem>, ErrorCode> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = c.scan(route, table, after, 1000).await?;
        out.extend(page.items);
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}
