//! Keeps the instance's [`crate::routes::Routes`] current from the master's view of the nodes, so that
//! a peer restarted on a new `host:port` is dialled there by every group replicating to it.

use std::sync::Arc;
use std::time::Duration;

use ferrum_proto::msg::master::NodeAddrs;
use ferrum_proto::rpc::LeaderClient;
use tokio_util::sync::CancellationToken;

use crate::router::MultiRaft;

/// Fetches every `every`, and sooner (at most every `min_gap`) when a peer could not be dialled.
pub(super) fn spawn(
    master: LeaderClient,
    raft: Arc<MultiRaft>,
    every: Duration,
    min_gap: Duration,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
                _ = raft.routes().unreachable() => {}
            }
            let nodes = match master.call(&NodeAddrs {}).await {
                Ok(n) => n,
                // The heartbeats report an unreachable master; the next round tries again.
                Err(e) => {
                    tracing::debug!("fetching node addresses from the master: {e}");
                    continue;
                }
            };
            let me = raft.node_id();
            let changed = raft.routes().update(nodes.into_iter().filter(|n| n.id != me).map(|n| (n.id, n.addr)));
            for (node, addr) in changed {
                tracing::info!(%node, %addr, "peer address");
            }
            // A dead peer stays unreachable: do not ask the master more often than this.
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(min_gap) => {}
            }
        }
    });
}
