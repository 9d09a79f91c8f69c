//! Periodic heartbeats to the master: liveness, free space, and a report per hosted partition (role,
//! leadership, usage) so the master can grow volumes before partitions fill.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferrum_proto::msg::master::{Heartbeat, NodeRole, PartitionReport, RegisterNode};
use ferrum_proto::msg::topology::PartitionKind;
use ferrum_proto::rpc::LeaderClient;
use ferrum_proto::{ErrorCode, NodeId, PartitionId};
use tokio_util::sync::CancellationToken;

use super::resources::disk_space;
use crate::app::GroupView;
use crate::router::MultiRaft;

pub(super) struct Heartbeats {
    pub master: LeaderClient,
    /// Sent again when the master answers a heartbeat with `NotFound` (it lost or never had us).
    pub register: RegisterNode,
    pub node: NodeId,
    pub role: NodeRole,
    pub raft: Arc<MultiRaft>,
    pub data_dir: PathBuf,
    pub interval: Duration,
    pub stop: CancellationToken,
}

pub(super) fn spawn(hb: Heartbeats) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(hb.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = hb.stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            match hb.master.call(&hb.report()).await {
                Ok(()) => {
                    if failing {
                        tracing::info!("heartbeats reach the master again");
                    }
                    failing = false;
                }
                Err(e) if matches!(e.code(), ErrorCode::NotFound) => hb.register_again().await,
                Err(e) => {
                    // Log the first failure of a run, not every second of an outage.
                    if !failing {
                        tracing::warn!("heartbeat to master failed: {e}");
                    }
                    failing = true;
                }
            }
        }
    });
}

impl Heartbeats {
    async fn register_again(&self) {
        match self.master.call(&self.register).await {
            Ok(resp) if resp.node_id == self.node => tracing::info!(node = %self.node, "registered with the master again"),
            // Our Raft identity cannot change under a running instance: say so loudly, keep serving.
            Ok(resp) => tracing::error!(
                "the master now knows this instance as node {}, but it runs as node {}: restart it with a fresh data dir",
                resp.node_id,
                self.node
            ),
            Err(e) => tracing::warn!("registering with the master again failed: {e}"),
        }
    }

    fn report(&self) -> Heartbeat {
        let (disk_total, disk_free) = disk_space(&self.data_dir).unwrap_or((0, 0));
        let kind = match self.role {
            NodeRole::Meta => PartitionKind::Meta,
            NodeRole::Data => PartitionKind::Data,
        };
        let partitions = self
            .raft
            .groups()
            .into_iter()
            .filter_map(|g| {
                let status = self.raft.status(g).ok()?;
                let h = self.raft.handle(g)?;
                let usage = h.app.usage(&GroupView::new(self.raft.store(), g));
                Some(PartitionReport {
                    partition: PartitionId::from(g.get()),
                    kind,
                    is_leader: status.leader == Some(self.node),
                    used_bytes: usage.used_bytes,
                    items: usage.items,
                    read_only: usage.read_only,
                })
            })
            .collect();
        Heartbeat { node: self.node, disk_total, disk_free, partitions }
    }
}
