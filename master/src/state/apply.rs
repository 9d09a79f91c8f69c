//! One function per command: validate first (an error changes nothing), then change.

use std::collections::HashSet;

use ferrum_proto::msg::master::{NodeRole, VolumeState};
use ferrum_proto::msg::topology::{InodeRange, PartitionKind};
use ferrum_proto::{ErrorCode, InodeId, NodeId, OpId, PartitionId, VolumeId};

use super::{validate, CmdReply, MasterCmd, MasterRecord, NewPartition, NodeRecord, PartitionRecord, Tx, VolumeRecord};

impl Tx<'_> {
    pub(super) fn run(&mut self, cmd: MasterCmd) -> Result<CmdReply, ErrorCode> {
        match cmd {
            MasterCmd::RegisterNode { role, advertise, host, instance_uuid, now_unix_ms } => {
                self.register_node(role, advertise, host, instance_uuid, now_unix_ms)
            }
            MasterCmd::CreateVolume { op, name, replicas, capacity, owner, now_unix_ms, partitions } => {
                self.create_volume(op, name, replicas, capacity, owner, now_unix_ms, partitions)
            }
            MasterCmd::VolumeReady { volume } => self.volume_ready(volume),
            MasterCmd::DeleteVolume { op, name } => self.delete_volume_cmd(op, name),
            MasterCmd::RemoveVolume { volume } => self.remove_volume(volume),
            MasterCmd::AddPartitions { volume, partitions } => self.add_partitions(volume, partitions),
            MasterCmd::PartitionsReady { partitions } => self.partitions_ready(partitions),
            MasterCmd::SetWritable { partition, writable } => self.set_writable(partition, writable),
            MasterCmd::SplitMeta { partition, end, replicas } => self.split_meta(partition, end, replicas),
            MasterCmd::AllocMasterId { addr, min_id } => self.alloc_master_id(addr, min_id),
            MasterCmd::StartRepair { partition, remove, add, reason, now_unix_ms } => {
                self.start_repair(partition, remove, add, reason, now_unix_ms)
            }
            MasterCmd::FinishRepair { partition, add } => self.finish_repair(partition, add),
            MasterCmd::AbortRepair { partition, add } => self.abort_repair(partition, add),
            MasterCmd::Decommission { node, now_unix_ms } => self.decommission(node, now_unix_ms),
            MasterCmd::RemoveNode { node } => self.remove_node(node),
            MasterCmd::ForgetMaster { id } => {
                self.delete_master(id);
                Ok(CmdReply::Done)
            }
        }
    }

    fn register_node(
        &mut self,
        role: NodeRole,
        advertise: String,
        host: String,
        instance_uuid: String,
        now: u64,
    ) -> Result<CmdReply, ErrorCode> {
        if let Some(existing) = self.st.node_by_uuid(&instance_uuid).cloned() {
            if existing.role != role {
                return Err(ErrorCode::InvalidArgument(format!(
                    "instance {instance_uuid} is registered as node {} with role {:?}, not {role:?}",
                    existing.id, existing.role
                )));
            }
            if existing.advertise != advertise || existing.host != host {
                let id = existing.id;
                self.save_node(NodeRecord { advertise, host, ..existing });
                // Views list replica addresses: every volume with a replica there must refresh.
                let volumes: HashSet<VolumeId> =
                    self.st.partitions.values().filter(|p| p.replicas.contains(&id)).map(|p| p.volume).collect();
                for v in volumes {
                    self.bump_view(v);
                }
            }
            return Ok(CmdReply::Node(existing.id));
        }
        let id = NodeId(self.st.counters.next_node);
        self.st.counters.next_node += 1;
        self.save_counters();
        self.save_node(NodeRecord { id, role, advertise, host, instance_uuid, registered_unix_ms: now });
        Ok(CmdReply::Node(id))
    }

    #[allow(clippy::too_many_arguments)]
    fn create_volume(
        &mut self,
        op: OpId,
        name: String,
        replicas: u8,
        capacity: u64,
        owner: String,
        now: u64,
        partitions: Vec<NewPartition>,
    ) -> Result<CmdReply, ErrorCode> {
        if let Some(v) = self.st.volume_named(&name) {
            if v.created_by == op {
                let volume = v.id;
                let partitions = self.st.partitions_of(volume).map(|p| p.id).collect();
                return Ok(CmdReply::Volume { volume, partitions });
            }
            return Err(ErrorCode::VolumeExists(name));
        }
        validate::volume_name(&name)?;
        validate::replicas(replicas)?;
        validate::owner(&owner)?;
        if !partitions.iter().any(|p| p.kind == PartitionKind::Meta) {
            return Err(ErrorCode::InvalidArgument("a volume needs at least one meta partition".into()));
        }
        self.check_new_partitions(&partitions, replicas)?;
        let id = VolumeId(self.st.counters.next_volume);
        self.st.counters.next_volume += 1;
        let ids = self.insert_partitions(id, partitions);
        self.save_counters();
        self.st.volume_by_name.insert(name.clone(), id);
        self.save_volume(VolumeRecord {
            id,
            name,
            replicas,
            capacity,
            owner,
            state: VolumeState::Creating,
            view_version: 1,
            created_unix_ms: now,
            created_by: op,
            deleted_by: None,
        });
        Ok(CmdReply::Volume { volume: id, partitions: ids })
    }

    /// Each partition: `replicas` distinct registered nodes of the right role; meta partitions carry a
    /// non-empty inode range, data partitions none.
    fn check_new_partitions(&self, partitions: &[NewPartition], replicas: u8) -> Result<(), ErrorCode> {
        for p in partitions {
            let distinct: HashSet<NodeId> = p.replicas.iter().copied().collect();
            if p.replicas.len() != replicas as usize || distinct.len() != p.replicas.len() {
                return Err(ErrorCode::InvalidArgument(format!(
                    "a partition needs {replicas} distinct replicas, got {:?}",
                    p.replicas
                )));
            }
            let role = match p.kind {
                PartitionKind::Meta => NodeRole::Meta,
                PartitionKind::Data => NodeRole::Data,
            };
            for n in &p.replicas {
                match self.st.nodes.get(n) {
                    Some(r) if r.role == role => {}
                    Some(_) => return Err(ErrorCode::InvalidArgument(format!("node {n} is not a {role:?} node"))),
                    None => return Err(ErrorCode::InvalidArgument(format!("node {n} is not registered"))),
                }
            }
            match (p.kind, p.inodes) {
                (PartitionKind::Meta, Some(r)) if r.start < r.end => {}
                (PartitionKind::Data, None) => {}
                _ => {
                    return Err(ErrorCode::InvalidArgument(format!("bad inode range {:?} for {:?}", p.inodes, p.kind)))
                }
            }
        }
        Ok(())
    }

    fn insert_partitions(&mut self, volume: VolumeId, partitions: Vec<NewPartition>) -> Vec<PartitionId> {
        let mut ids = Vec::with_capacity(partitions.len());
        for p in partitions {
            let id = PartitionId(self.st.counters.next_partition);
            self.st.counters.next_partition += 1;
            ids.push(id);
            self.save_partition(PartitionRecord {
                id,
                volume,
                kind: p.kind,
                replicas: p.replicas,
                inodes: p.inodes,
                writable: true,
                ready: false,
            });
        }
        ids
    }

    fn volume(&self, id: VolumeId) -> Result<VolumeRecord, ErrorCode> {
        self.st.volumes.get(&id).cloned().ok_or_else(|| ErrorCode::VolumeNotFound(format!("#{id}")))
    }

    fn volume_ready(&mut self, id: VolumeId) -> Result<CmdReply, ErrorCode> {
        let v = self.volume(id)?;
        match v.state {
            VolumeState::Ready => return Ok(CmdReply::Done),
            VolumeState::Deleting => return Err(ErrorCode::VolumeNotFound(v.name)),
            VolumeState::Creating => {}
        }
        let pending: Vec<PartitionRecord> = self.st.partitions_of(id).filter(|p| !p.ready).cloned().collect();
        for p in pending {
            self.save_partition(PartitionRecord { ready: true, ..p });
        }
        self.save_volume(VolumeRecord { state: VolumeState::Ready, view_version: v.view_version + 1, ..v });
        Ok(CmdReply::Done)
    }

    fn delete_volume_cmd(&mut self, op: OpId, name: String) -> Result<CmdReply, ErrorCode> {
        let Some(v) = self.st.volume_named(&name).cloned() else {
            // A retry of a delete that went through.
            let retried = self.st.volumes.values().any(|v| v.name == name && v.deleted_by == Some(op));
            return if retried { Ok(CmdReply::Done) } else { Err(ErrorCode::VolumeNotFound(name)) };
        };
        self.st.volume_by_name.remove(&name);
        self.save_volume(VolumeRecord {
            state: VolumeState::Deleting,
            deleted_by: Some(op),
            view_version: v.view_version + 1,
            ..v
        });
        Ok(CmdReply::Done)
    }

    fn remove_volume(&mut self, id: VolumeId) -> Result<CmdReply, ErrorCode> {
        let Some(v) = self.st.volumes.get(&id).cloned() else { return Ok(CmdReply::Done) };
        if v.state != VolumeState::Deleting {
            return Err(ErrorCode::InvalidArgument(format!("volume {:?} is not being deleted", v.name)));
        }
        let parts: Vec<PartitionId> = self.st.partitions_of(id).map(|p| p.id).collect();
        for p in parts {
            self.delete_partition(p);
        }
        self.delete_volume(id);
        Ok(CmdReply::Done)
    }

    fn add_partitions(&mut self, volume: VolumeId, partitions: Vec<NewPartition>) -> Result<CmdReply, ErrorCode> {
        let v = self.volume(volume)?;
        if v.state == VolumeState::Deleting {
            return Err(ErrorCode::VolumeNotFound(v.name));
        }
        if partitions.iter().any(|p| p.kind == PartitionKind::Meta) {
            // Meta partitions are only added by splitting the last one: ranges must stay contiguous.
            return Err(ErrorCode::InvalidArgument("meta partitions are added by SplitMeta".into()));
        }
        self.check_new_partitions(&partitions, v.replicas)?;
        let ids = self.insert_partitions(volume, partitions);
        self.save_counters();
        Ok(CmdReply::Partitions(ids))
    }

    fn partitions_ready(&mut self, ids: Vec<PartitionId>) -> Result<CmdReply, ErrorCode> {
        let mut volumes = HashSet::new();
        for id in ids {
            // A partition of a volume deleted meanwhile is gone: nothing to do.
            let Some(p) = self.st.partitions.get(&id).cloned() else { continue };
            if !p.ready {
                volumes.insert(p.volume);
                self.save_partition(PartitionRecord { ready: true, ..p });
            }
        }
        for v in volumes {
            self.bump_view(v);
        }
        Ok(CmdReply::Done)
    }

    fn set_writable(&mut self, id: PartitionId, writable: bool) -> Result<CmdReply, ErrorCode> {
        let p = self.st.partitions.get(&id).cloned().ok_or(ErrorCode::PartitionNotFound(id))?;
        if p.writable != writable {
            let volume = p.volume;
            self.save_partition(PartitionRecord { writable, ..p });
            self.bump_view(volume);
        }
        Ok(CmdReply::Done)
    }

    fn split_meta(&mut self, id: PartitionId, end: InodeId, replicas: Vec<NodeId>) -> Result<CmdReply, ErrorCode> {
        let p = self.st.partitions.get(&id).cloned().ok_or(ErrorCode::PartitionNotFound(id))?;
        let Some(range) = p.inodes.filter(|_| p.kind == PartitionKind::Meta) else {
            return Err(ErrorCode::InvalidArgument(format!("partition {id} is not a meta partition")));
        };
        let v = self.volume(p.volume)?;
        if range.end == end {
            // A retry: the split happened, answer with the partition that starts at `end`.
            let next = self.st.partitions_of(p.volume).find(|q| q.inodes.is_some_and(|r| r.start == end));
            return match next {
                Some(q) => Ok(CmdReply::Partitions(vec![q.id])),
                None => Err(ErrorCode::Internal(format!("partition {id} ends at {end} but none follows it"))),
            };
        }
        if range.end != InodeId(u64::MAX) {
            return Err(ErrorCode::InvalidArgument(format!("partition {id} is not the last meta partition")));
        }
        if end <= range.start || end == InodeId(u64::MAX) {
            return Err(ErrorCode::InvalidArgument(format!("cannot split {:?} at {end}", range)));
        }
        let new = NewPartition {
            kind: PartitionKind::Meta,
            replicas,
            inodes: Some(InodeRange { start: end, end: InodeId(u64::MAX) }),
        };
        self.check_new_partitions(std::slice::from_ref(&new), v.replicas)?;
        self.save_partition(PartitionRecord { inodes: Some(InodeRange { start: range.start, end }), ..p });
        let ids = self.insert_partitions(v.id, vec![new]);
        self.save_counters();
        self.bump_view(v.id);
        Ok(CmdReply::Partitions(ids))
    }

    fn alloc_master_id(&mut self, addr: String, min_id: NodeId) -> Result<CmdReply, ErrorCode> {
        if let Some(m) = self.st.masters.values().find(|m| m.addr == addr) {
            return Ok(CmdReply::Master(m.id));
        }
        let id = NodeId(self.st.counters.next_master.max(min_id.get()));
        self.st.counters.next_master = id.get() + 1;
        self.save_counters();
        self.save_master(MasterRecord { id, addr });
        Ok(CmdReply::Master(id))
    }
}
