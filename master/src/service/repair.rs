//! The leader's replica moves: plans them (dead nodes past the grace period, decommissions), records
//! each as a task in the replicated state, and drives every task to its end:
//!
//! 1. create the partition on the new node, as a non-member waiting for the leader;
//! 2. ask the partition's leader, again and again, to add it as a learner, let it catch up (the
//!    snapshot stream is throttled on the sender), then swap the voters in one joint-consensus change
//!    (`ChangeReplicas`), so the group never has fewer copies than before;
//! 3. record the new replica list (`FinishRepair`: the volume's view version moves, clients refresh);
//! 4. delete the old copy if its node is alive (a dead node's copy is deleted when it comes back,
//!    see [`Master::drop_stale_replicas`]).
//!
//! Every step is idempotent, so a new leader simply resumes each recorded task from step 1.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrum_proto::msg::master::{CreatePartition, DeletePartition, NodeRole, NodeState};
use ferrum_proto::msg::repair::{ChangeProgress, ChangeReplicas, RepairInfo};
use ferrum_proto::msg::topology::{PartitionKind, Replica};
use ferrum_proto::{ErrorCode, NodeId, PartitionId};
use tokio_util::sync::CancellationToken;

use super::info::replicas;
use super::repair_plan::{moves, stale_replicas};
use super::{now_unix_ms, Master};
use crate::state::{MasterCmd, RepairTask};

/// How often a driver asks the partition's leader how the copy is going.
const POLL: Duration = Duration::from_millis(300);

/// The leader's soft state about moves: which tasks have a driver here, their last progress, totals.
#[derive(Default)]
pub struct Drivers {
    running: Mutex<HashSet<PartitionId>>,
    progress: Mutex<HashMap<PartitionId, ChangeProgress>>,
    bytes_rebuilt: AtomicU64,
    finished: AtomicU64,
    /// Last "cannot place" warning per partition, so it is logged once.
    unplaceable: Mutex<HashSet<PartitionId>>,
}

impl Drivers {
    pub fn bytes_rebuilt(&self) -> u64 {
        self.bytes_rebuilt.load(Ordering::Relaxed)
    }

    pub fn finished(&self) -> u64 {
        self.finished.load(Ordering::Relaxed)
    }

    fn progress(&self, p: PartitionId) -> ChangeProgress {
        self.progress.lock().expect("progress lock").get(&p).cloned().unwrap_or_default()
    }
}

/// Removes the partition from the running set when its driver ends, however it ends.
struct Running<'a>(&'a Drivers, PartitionId);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.lock().expect("running lock").remove(&self.1);
        self.0.progress.lock().expect("progress lock").remove(&self.1);
    }
}

impl Master {
    /// Runs until `stop`: one pass per reconcile interval while this master leads.
    pub async fn run_repairs(self: Arc<Self>, stop: CancellationToken) {
        self.while_leading(self.cfg.reconcile_interval(), &stop, || async {
            if let Err(e) = self.repair_pass().await {
                tracing::debug!(error = %e, "repair pass failed; retrying");
            }
            self.spawn_drivers(&stop);
            self.drop_stale_replicas().await;
        })
        .await
    }

    /// Plans the moves that are due and records them.
    async fn repair_pass(&self) -> Result<(), ErrorCode> {
        let _ops = self.ops.lock().await;
        self.lead().await?;
        let due = {
            let st = self.state.read().expect("state lock");
            moves(&st, |n| self.liveness.silent(n), self.cfg.repair_after(), self.cfg.repair_concurrency as usize)
        };
        if due.is_empty() {
            return Ok(());
        }
        let mut planners = HashMap::new();
        for m in due {
            let role = match m.kind {
                PartitionKind::Meta => NodeRole::Meta,
                PartitionKind::Data => NodeRole::Data,
            };
            if let std::collections::hash_map::Entry::Vacant(e) = planners.entry(role) {
                e.insert(crate::placement::Planner::new(self.candidates(role).await.0));
            }
            let planner = planners.get_mut(&role).expect("inserted");
            let (keep_hosts, exclude) = {
                let st = self.state.read().expect("state lock");
                let Some(p) = st.partitions.get(&m.partition) else { continue };
                let keep: HashSet<String> = p
                    .replicas
                    .iter()
                    .filter(|n| **n != m.remove)
                    .filter_map(|n| st.nodes.get(n).map(|r| r.host.clone()))
                    .collect();
                (keep, p.replicas.iter().copied().collect::<HashSet<NodeId>>())
            };
            let Some((add, shared)) = planner.replace(&keep_hosts, &exclude) else {
                if self.repairs.unplaceable.lock().expect("lock").insert(m.partition) {
                    tracing::warn!(partition = %m.partition, remove = %m.remove, "no node can take a replica: the move waits");
                }
                continue;
            };
            self.repairs.unplaceable.lock().expect("lock").remove(&m.partition);
            if shared {
                tracing::warn!(partition = %m.partition, node = %add, "the new replica shares a host with another replica");
            }
            let cmd = MasterCmd::StartRepair {
                partition: m.partition,
                remove: m.remove,
                add,
                reason: m.reason,
                now_unix_ms: now_unix_ms(),
            };
            self.propose(cmd).await?;
            tracing::info!(partition = %m.partition, remove = %m.remove, add = %add, reason = ?m.reason, "replica move started");
        }
        Ok(())
    }

    /// A driver for every recorded task that has none here yet.
    fn spawn_drivers(self: &Arc<Self>, stop: &CancellationToken) {
        let tasks: Vec<RepairTask> = self.state.read().expect("state lock").repairs.values().cloned().collect();
        for t in tasks {
            if !self.repairs.running.lock().expect("running lock").insert(t.partition) {
                continue;
            }
            let (m, stop) = (self.clone(), stop.clone());
            tokio::spawn(async move {
                let _running = Running(&m.repairs, t.partition);
                tokio::select! {
                    _ = stop.cancelled() => {}
                    r = m.drive(&t) => match r {
                        Ok(()) => {}
                        Err(e) => tracing::info!(partition = %t.partition, error = %e, "replica move paused; the leader resumes it"),
                    }
                }
            });
        }
    }

    /// Drives one task to its end, or until this master stops leading.
    async fn drive(&self, t: &RepairTask) -> Result<(), ErrorCode> {
        let mut last_error = String::new();
        loop {
            if !self.is_leader() {
                return Err(ErrorCode::NotLeader { leader: None });
            }
            // The task may have been finished or aborted by an earlier driver (another term).
            let still = self.state.read().expect("state lock").repairs.get(&t.partition) == Some(t);
            if !still {
                return Ok(());
            }
            if self.liveness.state(t.add).0 == NodeState::Dead {
                tracing::warn!(partition = %t.partition, node = %t.add, "the new replica's node died: move aborted");
                self.propose(MasterCmd::AbortRepair { partition: t.partition, add: t.add }).await?;
                return Ok(());
            }
            match self.move_step(t).await {
                Ok(true) => break,
                Ok(false) => last_error.clear(),
                Err(e) => {
                    let msg = e.to_string();
                    if msg != last_error {
                        tracing::info!(partition = %t.partition, error = %msg, "replica move: step failed; retrying");
                    }
                    last_error = msg;
                }
            }
            tokio::time::sleep(POLL).await;
        }
        let used = self.liveness.partition_stats().get(&t.partition).map_or(0, |s| s.used_bytes);
        self.propose(MasterCmd::FinishRepair { partition: t.partition, add: t.add }).await?;
        self.repairs.bytes_rebuilt.fetch_add(used, Ordering::Relaxed);
        self.repairs.finished.fetch_add(1, Ordering::Relaxed);
        tracing::info!(partition = %t.partition, remove = %t.remove, add = %t.add, bytes = used, "replica move finished");
        if self.liveness.state(t.remove).0 != NodeState::Dead {
            self.delete_replica(t.partition, t.remove).await;
        }
        Ok(())
    }

    /// Steps 1 and 2; true once the voters are swapped.
    async fn move_step(&self, t: &RepairTask) -> Result<bool, ErrorCode> {
        let (create, add_addr, members, leader) = {
            let st = self.state.read().expect("state lock");
            let p = st.partitions.get(&t.partition).ok_or(ErrorCode::PartitionNotFound(t.partition))?;
            let members = replicas(&st, p);
            let add_addr = st.nodes.get(&t.add).map(|n| n.advertise.clone()).unwrap_or_default();
            let create = CreatePartition {
                partition: p.id,
                kind: p.kind,
                volume: p.volume,
                members: members.clone(),
                inodes: p.inodes,
            };
            let leader = self
                .liveness
                .partition_stats()
                .get(&p.id)
                .and_then(|s| s.leader)
                .and_then(|l| st.nodes.get(&l))
                .map(|n| n.advertise.clone());
            (create, add_addr, members, leader)
        };
        match self.call_node(&add_addr, &create).await {
            Ok(()) => {}
            // A copy from an older membership (a move to this node that was aborted, or its replica
            // from before it was declared dead): the node is not a voter, so it is safe to start over.
            Err(ErrorCode::InvalidArgument(m)) if m.contains("exists here as") => {
                tracing::info!(partition = %t.partition, node = %t.add, "dropping an outdated copy on the new replica's node");
                self.call_node(&add_addr, &DeletePartition { partition: t.partition }).await?;
                self.call_node(&add_addr, &create).await?;
            }
            Err(e) => return Err(e),
        }
        let req =
            ChangeReplicas { partition: t.partition, remove: t.remove, add: Replica { node: t.add, addr: add_addr } };
        // The reported leader first, then every live replica; a follower's redirect is followed once.
        let mut targets: Vec<String> = leader.into_iter().collect();
        for m in members {
            if m.node != t.remove || self.liveness.state(m.node).0 != NodeState::Dead {
                targets.push(m.addr);
            }
        }
        let mut last = ErrorCode::Unavailable(format!("partition {} has no live replica to ask", t.partition));
        for addr in targets {
            let mut target = addr;
            for _ in 0..2 {
                match self.call_node(&target, &req).await {
                    Ok(p) => {
                        let done = p.done;
                        self.repairs.progress.lock().expect("progress lock").insert(t.partition, p);
                        return Ok(done);
                    }
                    Err(ErrorCode::NotLeader { leader: Some(h) }) => target = h.addr,
                    Err(e) => {
                        last = e;
                        break;
                    }
                }
            }
        }
        Err(last)
    }

    /// Best effort: a failure leaves the copy for [`Master::drop_stale_replicas`].
    async fn delete_replica(&self, partition: PartitionId, node: NodeId) {
        let addr = self.state.read().expect("state lock").nodes.get(&node).map(|n| n.advertise.clone());
        let Some(addr) = addr else { return };
        match self.call_node(&addr, &DeletePartition { partition }).await {
            Ok(()) | Err(ErrorCode::GroupNotFound(_)) | Err(ErrorCode::PartitionNotFound(_)) => {
                tracing::info!(partition = %partition, node = %node, "old replica deleted")
            }
            Err(e) => {
                tracing::warn!(partition = %partition, node = %node, error = %e, "cannot delete the old replica yet")
            }
        }
    }

    /// Replicas that live nodes report but no longer own (their node was dead past the grace period,
    /// or a deletion failed): deleted, so a returning node never serves or votes with a stale copy.
    pub(crate) async fn drop_stale_replicas(&self) {
        if self.lead().await.is_err() {
            return;
        }
        let stale: Vec<(NodeId, PartitionId)> = {
            let st = self.state.read().expect("state lock");
            st.nodes
                .keys()
                .filter(|n| self.liveness.state(**n).0 == NodeState::Alive)
                .flat_map(|n| {
                    let hosted = self.liveness.last_seen(*n).map(|s| s.partitions).unwrap_or_default();
                    stale_replicas(&st, *n, hosted.iter().map(|r| r.partition)).into_iter().map(move |p| (*n, p))
                })
                .collect()
        };
        for (node, partition) in stale {
            tracing::info!(partition = %partition, node = %node, "node hosts a replica it no longer owns: deleting it");
            self.delete_replica(partition, node).await;
        }
    }

    /// The moves in flight, with their last known progress.
    pub async fn list_repairs(&self) -> Result<Vec<RepairInfo>, ErrorCode> {
        self.lead().await?;
        Ok(self.repair_infos())
    }

    pub(crate) fn repair_infos(&self) -> Vec<RepairInfo> {
        let st = self.state.read().expect("state lock");
        st.repairs
            .values()
            .filter_map(|t| {
                let p = st.partitions.get(&t.partition)?;
                let pr = self.repairs.progress(t.partition);
                Some(RepairInfo {
                    partition: t.partition,
                    volume: p.volume,
                    kind: p.kind,
                    remove: t.remove,
                    add: t.add,
                    reason: t.reason,
                    started_unix_ms: t.started_unix_ms,
                    matched: pr.matched,
                    last: pr.last,
                })
            })
            .collect()
    }
}
