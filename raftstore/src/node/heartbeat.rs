//! Periodic heartbeats to the master: liveness, free space, and a report per hosted partition (role,
//! leadership, usage) so the master can grow volumes before partitions fill.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferrum_proto::msg::master::{Heartbeat, NodeRole, PartitionReport};
use ferrum_proto::msg::topology::PartitionKind;
use ferrum_proto::rpc::LeaderClient;
use ferrum_proto::{ErrorCode, NodeId, PartitionId};
use tokio_util::sync::CancellationToken;

use super::resources::disk_space;
use crate::app::GroupView;
use crate::router::MultiRaft;

pub(super) struct Heartbeats {
    pub master: LeaderClient,
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
                Err(e) => {
                    // Log the first failure of a run, not every second of an outage.
                    if !failing {
                        let hint = matches!(e.code(), ErrorCode::NotFound)
                            .then_some(" (the master does not know this node id: was its state lost?)")
                            .unwrap_or("");
                        tracing::warn!("heartbeat to master failed: {e}{hint}");
                    }
                    failing = true;
                }
            }
        }
    });
}

impl Heartbeats {
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
                })
            })
            .collect();
        Heartbeat { node: self.node, disk_total, disk_free, partitions }
    }
}
