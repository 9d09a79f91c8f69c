//! Volume create, delete, list and info, and the partition list.

use ferrum_proto::msg::master::{
    CreateVolume, DeleteVolume, GetVolume, ListPartitions, NodeRole, PartitionInfo, VolumeCreated, VolumeInfo,
};
use ferrum_proto::msg::topology::{InodeRange, PartitionKind};
use ferrum_proto::{ErrorCode, InodeId, VolumeId};

use super::info::volume_info;
use super::{now_unix_ms, unexpected, Master};
use crate::placement::Planner;
use crate::state::{validate, CmdReply, MasterCmd, NewPartition};

impl Master {
    pub async fn create_volume(&self, req: CreateVolume) -> Result<VolumeCreated, ErrorCode> {
        validate::volume_name(&req.name)?;
        validate::replicas(req.replicas)?;
        validate::owner(&req.owner)?;
        let _ops = self.ops.lock().await;
        self.lead().await?;
        let existing = self.state.read().expect("state lock").volume_named(&req.name).cloned();
        let (volume, warnings) = match existing {
            // A retry of a create that went through: finish it if needed and answer alike.
            Some(v) if v.created_by == req.op => (v.id, Vec::new()),
            Some(_) => return Err(ErrorCode::VolumeExists(req.name)),
            None => {
                let (partitions, warnings) = self.plan_volume(req.replicas).await?;
                let cmd = MasterCmd::CreateVolume {
                    op: req.op,
                    name: req.name.clone(),
                    replicas: req.replicas,
                    capacity: req.capacity,
                    owner: req.owner.clone(),
                    now_unix_ms: now_unix_ms(),
                    partitions,
                };
                match self.propose(cmd).await? {
                    CmdReply::Volume { volume, .. } => (volume, warnings),
                    other => return Err(unexpected(other)),
                }
            }
        };
        for w in &warnings {
            tracing::warn!(volume = %req.name, "{w}");
        }
        if let Err(e) = self.finish_creating(volume).await {
            // Recorded, so the leader's reconciler keeps trying; the caller learns why it is not ready.
            return Err(ErrorCode::Unavailable(format!(
                "volume {:?} is recorded but its partitions could not all be created yet ({e}); the master keeps retrying",
                req.name
            )));
        }
        tracing::info!(volume = %req.name, id = %volume, replicas = req.replicas, "volume created");
        let st = self.state.read().expect("state lock");
        let v = st.volumes.get(&volume).ok_or_else(|| ErrorCode::VolumeNotFound(req.name.clone()))?;
        Ok(VolumeCreated { volume: volume_info(&st, v), warnings })
    }

    /// Places the partitions of a new volume; fails when there are fewer usable nodes than replicas.
    async fn plan_volume(&self, replicas: u8) -> Result<(Vec<NewPartition>, Vec<String>), ErrorCode> {
        let mut meta = self.planner(NodeRole::Meta, replicas).await?;
        let mut data = self.planner(NodeRole::Data, replicas).await?;
        let mut out = Vec::new();
        let mut warnings = Vec::new();
        let metas = self.cfg.meta_partitions_per_volume as u64;
        let mut start = InodeId::ROOT.get();
        let mut meta_shared = false;
        for i in 0..metas {
            // Every range but the last is bounded; the last is open-ended and split as it fills.
            let end = if i + 1 == metas { u64::MAX } else { start + self.cfg.meta_partition_inodes };
            let placed = meta.place(replicas as usize).map_err(|e| ErrorCode::Internal(e.to_string()))?;
            meta_shared |= placed.shared_hosts;
            out.push(NewPartition {
                kind: PartitionKind::Meta,
                replicas: placed.nodes,
                inodes: Some(InodeRange { start: InodeId(start), end: InodeId(end) }),
            });
            start = end;
        }
        if meta_shared {
            warnings.push(shared_hosts_warning("meta", replicas));
        }
        let mut data_shared = false;
        for _ in 0..self.cfg.data_partitions_per_volume {
            let placed = data.place(replicas as usize).map_err(|e| ErrorCode::Internal(e.to_string()))?;
            data_shared |= placed.shared_hosts;
            out.push(NewPartition { kind: PartitionKind::Data, replicas: placed.nodes, inodes: None });
        }
        if data_shared {
            warnings.push(shared_hosts_warning("data", replicas));
        }
        Ok((out, warnings))
    }

    /// A planner over the usable nodes of `role`, or a clear error if they are fewer than `replicas`.
    pub(crate) async fn planner(&self, role: NodeRole, replicas: u8) -> Result<Planner, ErrorCode> {
        let (candidates, registered) = self.candidates(role).await;
        if candidates.len() < replicas as usize {
            let what = match role {
                NodeRole::Meta => "metanodes",
                NodeRole::Data => "datanodes",
            };
            return Err(ErrorCode::InvalidArgument(format!(
                "replica count {replicas} is above the number of usable {what}: {} of {registered} registered are alive \
                 with at least {} MiB free",
                candidates.len(),
                self.cfg.min_free_bytes >> 20
            )));
        }
        Ok(Planner::new(candidates))
    }

    /// Creates the volume's partitions on their nodes, then marks it ready.
    pub(crate) async fn finish_creating(&self, volume: VolumeId) -> Result<(), ErrorCode> {
        let pending: Vec<_> = {
            let st = self.state.read().expect("state lock");
            st.partitions_of(volume).filter(|p| !p.ready).cloned().collect()
        };
        self.create_on_nodes(&pending).await?;
        self.propose(MasterCmd::VolumeReady { volume }).await?;
        Ok(())
    }

    pub async fn delete_volume(&self, req: DeleteVolume) -> Result<(), ErrorCode> {
        let _ops = self.ops.lock().await;
        self.lead().await?;
        let id = {
            let st = self.state.read().expect("state lock");
            match st.volume_named(&req.name) {
                Some(v) => Some(v.id),
                None => st.volumes.values().find(|v| v.name == req.name && v.deleted_by == Some(req.op)).map(|v| v.id),
            }
        };
        self.propose(MasterCmd::DeleteVolume { op: req.op, name: req.name.clone() }).await?;
        tracing::info!(volume = %req.name, "volume deleted; removing its partitions");
        if let Some(id) = id {
            // Best effort now; the reconciler finishes what fails here (e.g. a node is down).
            if let Err(e) = self.finish_deleting(id).await {
                tracing::warn!(volume = %req.name, error = %e, "partitions not all removed yet; will retry");
            }
        }
        Ok(())
    }

    /// Removes the partitions of a deleted volume from their nodes, then forgets the volume.
    pub(crate) async fn finish_deleting(&self, volume: VolumeId) -> Result<(), ErrorCode> {
        let parts: Vec<_> = {
            let st = self.state.read().expect("state lock");
            st.partitions_of(volume).cloned().collect()
        };
        self.delete_on_nodes(&parts).await?;
        self.propose(MasterCmd::RemoveVolume { volume }).await?;
        Ok(())
    }

    pub async fn list_volumes(&self) -> Result<Vec<VolumeInfo>, ErrorCode> {
        self.lead().await?;
        let st = self.state.read().expect("state lock");
        Ok(st.volumes.values().map(|v| volume_info(&st, v)).collect())
    }

    pub async fn get_volume(&self, req: GetVolume) -> Result<VolumeInfo, ErrorCode> {
        self.lead().await?;
        let st = self.state.read().expect("state lock");
        let v = st.volume_named(&req.name).ok_or(ErrorCode::VolumeNotFound(req.name))?;
        Ok(volume_info(&st, v))
    }

    pub async fn list_partitions(&self, req: ListPartitions) -> Result<Vec<PartitionInfo>, ErrorCode> {
        self.lead().await?;
        let stats = self.liveness.partition_stats();
        let st = self.state.read().expect("state lock");
        let only = match &req.volume {
            Some(name) => Some(st.volume_named(name).ok_or_else(|| ErrorCode::VolumeNotFound(name.clone()))?.id),
            None => None,
        };
        Ok(st
            .partitions
            .values()
            // Without a volume: every partition, those of volumes being deleted included (they are
            // still on their nodes).
            .filter(|p| only.is_none_or(|v| p.volume == v))
            .map(|p| self.partition_info(&st, p, &stats))
            .collect())
    }
}

fn shared_hosts_warning(kind: &str, replicas: u8) -> String {
    format!(
        "fewer than {replicas} distinct hosts have usable {kind}nodes: some replicas of a {kind} partition share a \
         host (on distinct instances), so losing that host loses several replicas"
    )
}
