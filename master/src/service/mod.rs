//! The master's service: what it answers on its RPC port, and the leader's background work.
//!
//! Everything that reads or changes the cluster state is served by the leader of the master group;
//! a follower answers `NotLeader` with the leader's address, so callers (nodes, clients, the admin
//! API of other masters) follow it.

mod growth;
mod handler;
mod info;
mod leader_plan;
mod leaders;
mod members;
mod node_calls;
mod nodes;
mod reconcile;
mod repair;
mod repair_plan;
mod status;
mod view;
mod volumes;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ferrum_proto::rpc::ConnPool;
use ferrum_proto::{msg, ErrorCode, GroupId, LeaderHint, NodeId};
use ferrum_raftstore::MultiRaft;
use tokio_util::sync::CancellationToken;

use crate::app::SharedState;
use crate::config::MasterSection;
use crate::liveness::Liveness;
use crate::resources::ResourceCache;
use crate::state::{CmdReply, MasterCmd};

pub use handler::MasterService;

pub struct Master {
    /// This master's Raft id in the master group.
    pub id: NodeId,
    pub advertise: String,
    pub raft: Arc<MultiRaft>,
    pub state: SharedState,
    pub liveness: Liveness,
    pub resources: ResourceCache,
    pub pool: ConnPool,
    pub cfg: MasterSection,
    /// Serialises the leader's multi-step changes (create, delete, growth), so each one plans on the
    /// outcome of the previous one.
    ops: tokio::sync::Mutex<()>,
    /// The leader's drivers of replica moves (soft state; the moves themselves are in `state`).
    pub repairs: repair::Drivers,
    /// Leadership handovers made to spread leaders (soft state, for metrics).
    pub leader_transfers: leaders::LeaderTransfers,
}

impl Master {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: NodeId,
        advertise: String,
        raft: Arc<MultiRaft>,
        state: SharedState,
        liveness: Liveness,
        resources: ResourceCache,
        pool: ConnPool,
        cfg: MasterSection,
    ) -> Master {
        Master {
            id,
            advertise,
            raft,
            state,
            liveness,
            resources,
            pool,
            cfg,
            ops: tokio::sync::Mutex::new(()),
            repairs: repair::Drivers::default(),
            leader_transfers: leaders::LeaderTransfers::default(),
        }
    }

    /// Runs `pass` every `every` while this master leads, until `stop` (the leader's periodic work).
    pub(crate) async fn while_leading<F, Fut>(&self, every: std::time::Duration, stop: &CancellationToken, mut pass: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            if self.is_leader() {
                pass().await;
            }
        }
    }

    /// Whether this master currently believes it leads the group (cheap; no quorum round).
    pub fn is_leader(&self) -> bool {
        self.raft.status(GroupId::MASTER).is_ok_and(|s| s.leader == Some(self.id))
    }

    /// The current leader as far as this master knows.
    pub fn leader_hint(&self) -> Option<LeaderHint> {
        let s = self.raft.status(GroupId::MASTER).ok()?;
        let leader = s.leader?;
        let addr = s.members.iter().find(|(id, _)| *id == leader)?.1.clone();
        Some(LeaderHint { node: leader, addr })
    }

    /// For requests that must reach the leader but need no linearizable read (heartbeats).
    fn lead_fast(&self) -> Result<(), ErrorCode> {
        if self.is_leader() {
            Ok(())
        } else {
            Err(ErrorCode::NotLeader { leader: self.leader_hint().filter(|h| h.node != self.id) })
        }
    }

    /// Returns once this master is the leader and has applied every committed change (read-index), so
    /// what it then reads from the state is current.
    async fn lead(&self) -> Result<(), ErrorCode> {
        self.raft.read_barrier(GroupId::MASTER).await
    }

    /// Replicates a command and returns the state machine's answer.
    async fn propose(&self, cmd: MasterCmd) -> Result<CmdReply, ErrorCode> {
        let reply = self.raft.write(GroupId::MASTER, msg::encode(&cmd)).await?;
        msg::decode::<Result<CmdReply, ErrorCode>>(&reply)?
    }
}

fn now_unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A reply of the wrong shape: a bug, reported rather than unwrapped.
fn unexpected(reply: CmdReply) -> ErrorCode {
    ErrorCode::Internal(format!("unexpected state machine reply {reply:?}"))
}
