//! The commands of replica moves (repair of dead nodes' replicas, decommission) and node removal.

use ferrum_proto::msg::master::NodeRole;
use ferrum_proto::msg::repair::RepairReason;
use ferrum_proto::msg::topology::PartitionKind;
use ferrum_proto::{ErrorCode, NodeId, PartitionId};

use super::{keys, CmdReply, DecommissionRecord, PartitionRecord, RepairTask, Tx, Write};

impl Tx<'_> {
    pub(super) fn start_repair(
        &mut self,
        partition: PartitionId,
        remove: NodeId,
        add: NodeId,
        reason: RepairReason,
        now: u64,
    ) -> Result<CmdReply, ErrorCode> {
        let p = self.st.partitions.get(&partition).ok_or(ErrorCode::PartitionNotFound(partition))?;
        if let Some(t) = self.st.repairs.get(&partition) {
            // A retried proposal: the same move is already recorded.
            if t.remove == remove && t.add == add {
                return Ok(CmdReply::Done);
            }
            return Err(ErrorCode::InvalidArgument(format!(
                "partition {partition} already has a move in flight ({} -> {})",
                t.remove, t.add
            )));
        }
        if !p.replicas.contains(&remove) {
            return Err(ErrorCode::InvalidArgument(format!("node {remove} holds no replica of partition {partition}")));
        }
        if p.replicas.contains(&add) {
            return Err(ErrorCode::InvalidArgument(format!("node {add} already holds partition {partition}")));
        }
        let role = match p.kind {
            PartitionKind::Meta => NodeRole::Meta,
            PartitionKind::Data => NodeRole::Data,
        };
        match self.st.nodes.get(&add) {
            Some(n) if n.role == role => {}
            _ => return Err(ErrorCode::InvalidArgument(format!("node {add} is not a registered {role:?} node"))),
        }
        if self.st.decommissioning.contains_key(&add) {
            return Err(ErrorCode::InvalidArgument(format!("node {add} is being decommissioned")));
        }
        self.save_repair(RepairTask { partition, remove, add, reason, started_unix_ms: now });
        Ok(CmdReply::Done)
    }

    pub(super) fn finish_repair(&mut self, partition: PartitionId, add: NodeId) -> Result<CmdReply, ErrorCode> {
        let Some(t) = self.st.repairs.get(&partition).cloned() else {
            // A retry of a finish that went through (or the partition's volume is gone).
            return Ok(CmdReply::Done);
        };
        if t.add != add {
            return Err(ErrorCode::InvalidArgument(format!("partition {partition} is moving to {}, not {add}", t.add)));
        }
        let p = self.st.partitions.get(&partition).cloned().ok_or(ErrorCode::PartitionNotFound(partition))?;
        // Same position: the placement order stays meaningful.
        let replicas = p.replicas.iter().map(|n| if *n == t.remove { t.add } else { *n }).collect();
        let volume = p.volume;
        self.save_partition(PartitionRecord { replicas, ..p });
        self.delete_repair(partition);
        self.bump_view(volume);
        Ok(CmdReply::Done)
    }

    pub(super) fn abort_repair(&mut self, partition: PartitionId, add: NodeId) -> Result<CmdReply, ErrorCode> {
        if self.st.repairs.get(&partition).is_some_and(|t| t.add == add) {
            self.delete_repair(partition);
        }
        Ok(CmdReply::Done)
    }

    pub(super) fn decommission(&mut self, node: NodeId, now: u64) -> Result<CmdReply, ErrorCode> {
        if !self.st.nodes.contains_key(&node) {
            return Err(ErrorCode::InvalidArgument(format!("node {node} is not registered")));
        }
        if !self.st.decommissioning.contains_key(&node) {
            let r = DecommissionRecord { node, started_unix_ms: now };
            self.put(keys::decommission(node), &r);
            self.st.decommissioning.insert(node, r);
        }
        Ok(CmdReply::Done)
    }

    pub(super) fn remove_node(&mut self, node: NodeId) -> Result<CmdReply, ErrorCode> {
        let Some(n) = self.st.nodes.get(&node).cloned() else { return Ok(CmdReply::Done) };
        let held = self.st.partitions.values().filter(|p| p.replicas.contains(&node)).count();
        let incoming = self.st.repairs.values().filter(|t| t.add == node).count();
        if held + incoming > 0 {
            return Err(ErrorCode::InvalidArgument(format!(
                "node {node} still holds {} replicas: decommission it first (ferrum node decommission {node})",
                held + incoming
            )));
        }
        self.writes.push(Write::Delete(keys::node(node)));
        self.st.nodes.remove(&node);
        self.st.node_by_uuid.remove(&n.instance_uuid);
        if self.st.decommissioning.remove(&node).is_some() {
            self.writes.push(Write::Delete(keys::decommission(node)));
        }
        Ok(CmdReply::Done)
    }
}
