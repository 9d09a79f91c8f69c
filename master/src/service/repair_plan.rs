//! Which replicas must move, decided from the state and liveness alone: replicas on nodes dead longer
//! than the grace period, and replicas on nodes being decommissioned; and which replicas a node holds
//! that it should not (a node back after its replicas were rebuilt elsewhere).

use std::collections::HashSet;
use std::time::Duration;

use ferrum_proto::msg::master::VolumeState;
use ferrum_proto::msg::repair::RepairReason;
use ferrum_proto::msg::topology::PartitionKind;
use ferrum_proto::{NodeId, PartitionId};

use crate::state::State;

/// A replica to move.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move {
    pub partition: PartitionId,
    pub kind: PartitionKind,
    pub remove: NodeId,
    pub reason: RepairReason,
}

/// Moves due, at most `limit` minus those in flight; partitions with a move in flight are skipped.
/// Dead nodes' replicas come first (redundancy is already lost), then decommissions.
pub fn moves(st: &State, silent: impl Fn(NodeId) -> Duration, repair_after: Duration, limit: usize) -> Vec<Move> {
    let room = limit.saturating_sub(st.repairs.len());
    let mut dead = Vec::new();
    let mut decom = Vec::new();
    for p in st.partitions.values() {
        if !p.ready || st.repairs.contains_key(&p.id) {
            continue;
        }
        if !st.volumes.get(&p.volume).is_some_and(|v| v.state == VolumeState::Ready) {
            continue;
        }
        if let Some(n) = p.replicas.iter().find(|n| silent(**n) >= repair_after) {
            dead.push(Move { partition: p.id, kind: p.kind, remove: *n, reason: RepairReason::DeadNode });
        } else if let Some(n) = p.replicas.iter().find(|n| st.decommissioning.contains_key(n)) {
            decom.push(Move { partition: p.id, kind: p.kind, remove: *n, reason: RepairReason::Decommission });
        }
    }
    dead.into_iter().chain(decom).take(room).collect()
}

/// Of the partitions `node` reports hosting, those it must drop: gone from the state, or no longer
/// listing it as a replica and not moving to it either.
pub fn stale_replicas(st: &State, node: NodeId, hosted: impl IntoIterator<Item = PartitionId>) -> Vec<PartitionId> {
    hosted
        .into_iter()
        .filter(|id| match st.partitions.get(id) {
            None => true,
            Some(p) => !p.replicas.contains(&node) && st.repairs.get(id).is_none_or(|t| t.add != node),
        })
        .collect::<HashSet<_>>()
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{MasterCmd, NewPartition};
    use ferrum_proto::msg::master::NodeRole;
    use ferrum_proto::msg::topology::InodeRange;
    use ferrum_proto::{ClientId, InodeId, OpId, RequestId, VolumeId};

    /// Nodes 1-4 (meta), 5-8 (data); a ready volume with meta partition 1 on 1,2,3 and data partition 2
    /// on 5,6,7.
    fn state() -> State {
        let mut st = State::default();
        for cmd in setup() {
            st.apply(cmd).0.unwrap();
        }
        st
    }

    /// The commands that build [`state`].
    fn setup() -> Vec<MasterCmd> {
        let mut cmds = Vec::new();
        for i in 1..=8u64 {
            let role = if i <= 4 { NodeRole::Meta } else { NodeRole::Data };
            cmds.push(MasterCmd::RegisterNode {
                role,
                advertise: format!("h:{i}"),
                host: format!("h{i}"),
                instance_uuid: format!("u{i}"),
                now_unix_ms: 0,
            });
        }
        cmds.push(MasterCmd::CreateVolume {
            op: OpId::new(ClientId(1), RequestId(1)),
            name: "v".into(),
            replicas: 3,
            capacity: 0,
            owner: String::new(),
            now_unix_ms: 0,
            partitions: vec![
                NewPartition {
                    kind: PartitionKind::Meta,
                    replicas: vec![NodeId(1), NodeId(2), NodeId(3)],
                    inodes: Some(InodeRange { start: InodeId(1), end: InodeId(u64::MAX) }),
                },
                NewPartition {
                    kind: PartitionKind::Data,
                    replicas: vec![NodeId(5), NodeId(6), NodeId(7)],
                    inodes: None,
                },
            ],
        });
        cmds.push(MasterCmd::VolumeReady { volume: VolumeId(1) });
        cmds
    }

    const AFTER: Duration = Duration::from_secs(10);

    fn silent_node(dead: u64) -> impl Fn(NodeId) -> Duration {
        move |n| if n == NodeId(dead) { AFTER } else { Duration::ZERO }
    }

    #[test]
    fn a_dead_nodes_replicas_move_once_the_grace_period_is_over() {
        let mut st = state();
        assert!(moves(&st, |_| AFTER - Duration::from_millis(1), AFTER, 8).is_empty());
        let m = moves(&st, silent_node(6), AFTER, 8);
        assert_eq!(
            m,
            vec![Move {
                partition: PartitionId(2),
                kind: PartitionKind::Data,
                remove: NodeId(6),
                reason: RepairReason::DeadNode
            }]
        );
        let cmd = MasterCmd::StartRepair {
            partition: PartitionId(2),
            remove: NodeId(6),
            add: NodeId(8),
            reason: RepairReason::DeadNode,
            now_unix_ms: 1,
        };
        st.apply(cmd.clone()).0.unwrap();
        // Retried: the same move, not a second one.
        st.apply(cmd).0.unwrap();
        assert_eq!(st.repairs.len(), 1);
        assert!(moves(&st, silent_node(6), AFTER, 8).is_empty(), "one move per partition");
        // Node 8 hosts the partition while it moves there: not stale.
        assert!(stale_replicas(&st, NodeId(8), [PartitionId(2)]).is_empty());
        st.apply(MasterCmd::FinishRepair { partition: PartitionId(2), add: NodeId(8) }).0.unwrap();
        assert_eq!(st.partitions[&PartitionId(2)].replicas, vec![NodeId(5), NodeId(8), NodeId(7)]);
        assert!(st.repairs.is_empty());
        assert_eq!(st.volumes[&VolumeId(1)].view_version, 3, "clients refresh");
        // Node 6 comes back: its copy is stale; an unknown partition too.
        assert_eq!(stale_replicas(&st, NodeId(6), [PartitionId(2)]), vec![PartitionId(2)]);
        assert_eq!(stale_replicas(&st, NodeId(5), [PartitionId(2), PartitionId(77)]), vec![PartitionId(77)]);
    }

    #[test]
    fn decommission_moves_everything_and_a_node_with_replicas_cannot_be_removed() {
        let mut st = state();
        st.apply(MasterCmd::Decommission { node: NodeId(1), now_unix_ms: 1 }).0.unwrap();
        let m = moves(&st, |_| Duration::ZERO, AFTER, 8);
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].remove, m[0].reason), (NodeId(1), RepairReason::Decommission));
        let err = st.apply(MasterCmd::RemoveNode { node: NodeId(1) }).0.unwrap_err();
        assert!(err.to_string().contains("decommission"), "{err}");
        // A decommissioning node receives nothing.
        let to_decom = MasterCmd::StartRepair {
            partition: PartitionId(1),
            remove: NodeId(2),
            add: NodeId(1),
            reason: RepairReason::DeadNode,
            now_unix_ms: 1,
        };
        assert!(st.apply(to_decom).0.is_err());
        let cmd = MasterCmd::StartRepair {
            partition: PartitionId(1),
            remove: NodeId(1),
            add: NodeId(4),
            reason: RepairReason::Decommission,
            now_unix_ms: 1,
        };
        st.apply(cmd).0.unwrap();
        st.apply(MasterCmd::FinishRepair { partition: PartitionId(1), add: NodeId(4) }).0.unwrap();
        st.apply(MasterCmd::RemoveNode { node: NodeId(1) }).0.unwrap();
        assert!(!st.nodes.contains_key(&NodeId(1)));
        assert!(st.decommissioning.is_empty());
    }

    #[test]
    fn moves_survive_a_reload_and_the_limit_holds() {
        let mut st = state();
        st.apply(MasterCmd::Decommission { node: NodeId(5), now_unix_ms: 1 }).0.unwrap();
        let (_, writes) = st.apply(MasterCmd::StartRepair {
            partition: PartitionId(2),
            remove: NodeId(5),
            add: NodeId(8),
            reason: RepairReason::Decommission,
            now_unix_ms: 7,
        });
        assert!(!writes.is_empty());
        assert!(moves(&st, silent_node(1), AFTER, 1).is_empty(), "the one slot is taken");
        assert_eq!(moves(&st, silent_node(1), AFTER, 2).len(), 1);
        // The persisted records rebuild the same state (what a new leader starts from).
        let mut kv = std::collections::BTreeMap::new();
        let mut replay = State::default();
        for cmd in history() {
            for w in replay.apply(cmd).1 {
                match w {
                    crate::state::Write::Put(k, v) => kv.insert(k, v),
                    crate::state::Write::Delete(k) => kv.remove(&k),
                };
            }
        }
        let loaded = State::load(kv).unwrap();
        assert_eq!(loaded, replay);
        assert_eq!(loaded.repairs.len(), 1);
        assert_eq!(loaded.decommissioning.len(), 1);
    }

    /// The commands of `moves_survive_a_reload_and_the_limit_holds`, from scratch.
    fn history() -> Vec<MasterCmd> {
        let mut cmds = setup();
        cmds.push(MasterCmd::Decommission { node: NodeId(5), now_unix_ms: 1 });
        cmds.push(MasterCmd::StartRepair {
            partition: PartitionId(2),
            remove: NodeId(5),
            add: NodeId(8),
            reason: RepairReason::Decommission,
            now_unix_ms: 7,
        });
        cmds
    }
}
