//! Growth: volumes get more data partitions when theirs fill up, and more meta partitions when the
//! last one (open-ended) holds many inodes, by splitting its range CubeFS-style. Clients only see a
//! newer view.

use std::collections::HashMap;

use ferrum_proto::msg::master::{NodeRole, SplitMetaPartition, VolumeState};
use ferrum_proto::msg::topology::PartitionKind;
use ferrum_proto::rpc::RpcError;
use ferrum_proto::{ErrorCode, InodeId, PartitionId, VolumeId};

use super::info::replicas;
use super::{unexpected, Master};
use crate::config::MasterSection;
use crate::liveness::PartitionStat;
use crate::state::{CmdReply, MasterCmd, NewPartition, State};

/// What growth is due, decided from the state and the partitions' reports alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrowthPlan {
    /// Full data partitions to mark read-only.
    pub close: Vec<PartitionId>,
    /// Data partitions to add, per volume.
    pub add: Vec<(VolumeId, u32)>,
    /// Last meta partitions to split.
    pub split: Vec<PartitionId>,
}

pub fn plan(st: &State, stats: &HashMap<PartitionId, PartitionStat>, cfg: &MasterSection) -> GrowthPlan {
    let mut plan = GrowthPlan::default();
    for v in st.volumes.values().filter(|v| v.state == VolumeState::Ready) {
        let stat = |p: PartitionId| stats.get(&p).cloned().unwrap_or_default();
        let mut writable = 0u64;
        let mut data = 0u64;
        for p in st.partitions_of(v.id) {
            match p.kind {
                PartitionKind::Data => {
                    data += 1;
                    if !p.writable {
                        continue;
                    }
                    let st = stat(p.id);
                    // Full by the master's measure, or full by its own (a replica's disk filled up first).
                    if p.ready && (st.used_bytes >= cfg.data_partition_size || st.read_only) {
                        plan.close.push(p.id);
                    } else {
                        // Not ready yet counts: it is on its way.
                        writable += 1;
                    }
                }
                PartitionKind::Meta => {
                    let last = p.inodes.is_some_and(|r| r.end == InodeId(u64::MAX));
                    // A meta partition reports `read_only` once its range was ended: a split this
                    // master (or an earlier leader) began and did not record yet is completed.
                    let st = stat(p.id);
                    if last && p.ready && (st.items >= cfg.meta_split_inodes || st.read_only) {
                        plan.split.push(p.id);
                    }
                }
            }
        }
        let want = (cfg.min_writable_data_partitions as u64).saturating_sub(writable);
        // A volume with a capacity gets no more partitions than it can fill.
        let room = match v.capacity {
            0 => u64::MAX,
            c => c.div_ceil(cfg.data_partition_size).saturating_sub(data),
        };
        let add = want.min(room);
        if add > 0 {
            plan.add.push((v.id, add as u32));
        }
    }
    plan
}

impl Master {
    pub(crate) async fn grow(&self) -> Result<(), ErrorCode> {
        let stats = self.liveness.partition_stats();
        let plan = plan(&self.state.read().expect("state lock"), &stats, &self.cfg);
        for p in plan.close {
            tracing::info!(partition = %p, "data partition is full: read-only from now on");
            self.propose(MasterCmd::SetWritable { partition: p, writable: false }).await?;
        }
        for (volume, n) in plan.add {
            self.add_data_partitions(volume, n).await?;
        }
        for p in plan.split {
            self.split_meta(p, &stats).await?;
        }
        Ok(())
    }

    async fn add_data_partitions(&self, volume: VolumeId, n: u32) -> Result<(), ErrorCode> {
        let replicas = self.state.read().expect("state lock").volumes.get(&volume).map(|v| v.replicas);
        let Some(replicas) = replicas else { return Ok(()) };
        let mut planner = self.planner(NodeRole::Data, replicas).await?;
        let mut partitions = Vec::new();
        for _ in 0..n {
            let placed = planner.place(replicas as usize).map_err(|e| ErrorCode::Internal(e.to_string()))?;
            partitions.push(NewPartition { kind: PartitionKind::Data, replicas: placed.nodes, inodes: None });
        }
        let ids = match self.propose(MasterCmd::AddPartitions { volume, partitions }).await? {
            CmdReply::Partitions(ids) => ids,
            other => return Err(unexpected(other)),
        };
        tracing::info!(volume = %volume, partitions = ?ids, "adding data partitions");
        self.make_ready(&ids).await
    }

    /// Creates not-yet-ready partitions on their nodes and marks them ready.
    pub(crate) async fn make_ready(&self, ids: &[PartitionId]) -> Result<(), ErrorCode> {
        let parts: Vec<_> = {
            let st = self.state.read().expect("state lock");
            ids.iter().filter_map(|id| st.partitions.get(id).cloned()).collect()
        };
        self.create_on_nodes(&parts).await?;
        self.propose(MasterCmd::PartitionsReady { partitions: ids.to_vec() }).await?;
        Ok(())
    }

    async fn split_meta(
        &self,
        partition: PartitionId,
        stats: &HashMap<PartitionId, PartitionStat>,
    ) -> Result<(), ErrorCode> {
        let (addrs, replicas) = {
            let st = self.state.read().expect("state lock");
            let Some(p) = st.partitions.get(&partition) else { return Ok(()) };
            let Some(v) = st.volumes.get(&p.volume) else { return Ok(()) };
            let mut addrs: Vec<String> = replicas(&st, p).into_iter().map(|r| r.addr).collect();
            // The leader first: only it can close the range.
            if let Some(leader) = stats.get(&partition).and_then(|s| s.leader).and_then(|l| st.nodes.get(&l)) {
                addrs.retain(|a| *a != leader.advertise);
                addrs.insert(0, leader.advertise.clone());
            }
            (addrs, v.replicas)
        };
        let end = self.ask_split(partition, &addrs).await?;
        let placed = self.planner(NodeRole::Meta, replicas).await?.place(replicas as usize);
        let placed = placed.map_err(|e| ErrorCode::Internal(e.to_string()))?;
        let cmd = MasterCmd::SplitMeta { partition, end, replicas: placed.nodes };
        let ids = match self.propose(cmd).await? {
            CmdReply::Partitions(ids) => ids,
            other => return Err(unexpected(other)),
        };
        tracing::info!(partition = %partition, end = %end, new = ?ids, "meta partition split");
        self.make_ready(&ids).await
    }

    /// Asks the partition's leader to close its range; returns the end it chose.
    async fn ask_split(&self, partition: PartitionId, addrs: &[String]) -> Result<InodeId, ErrorCode> {
        let req = SplitMetaPartition { partition, step: self.cfg.meta_split_step };
        let mut last = ErrorCode::Unavailable(format!("meta partition {partition} has no replica to ask"));
        for addr in addrs {
            let mut target = addr.clone();
            // Follow at most one redirect per replica tried.
            for _ in 0..2 {
                match self.pool.call(&target, &req).await {
                    Ok(resp) => return Ok(resp.end),
                    Err(RpcError::Remote(ErrorCode::NotLeader { leader: Some(h) })) => {
                        last = ErrorCode::NotLeader { leader: Some(h.clone()) };
                        target = h.addr;
                    }
                    Err(e) => {
                        last = e.code();
                        break;
                    }
                }
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrum_proto::msg::master::NodeRole;
    use ferrum_proto::msg::topology::InodeRange;
    use ferrum_proto::{ClientId, NodeId, OpId, RequestId};

    /// Nodes 1-3 (meta), 4-6 (data); volume 1 with meta partition 1 and data partitions 2 and 3, ready.
    fn state(capacity: u64) -> State {
        let mut st = State::default();
        for i in 1..=6u64 {
            let role = if i <= 3 { NodeRole::Meta } else { NodeRole::Data };
            let cmd = MasterCmd::RegisterNode {
                role,
                advertise: format!("h:{i}"),
                host: "h".into(),
                instance_uuid: format!("u{i}"),
                now_unix_ms: 0,
            };
            st.apply(cmd).0.unwrap();
        }
        let data = |r: &[u64]| NewPartition {
            kind: PartitionKind::Data,
            replicas: r.iter().copied().map(NodeId).collect(),
            inodes: None,
        };
        let cmd = MasterCmd::CreateVolume {
            op: OpId::new(ClientId(1), RequestId(1)),
            name: "v".into(),
            replicas: 3,
            capacity,
            owner: String::new(),
            now_unix_ms: 0,
            partitions: vec![
                NewPartition {
                    kind: PartitionKind::Meta,
                    replicas: vec![NodeId(1), NodeId(2), NodeId(3)],
                    inodes: Some(InodeRange { start: InodeId(1), end: InodeId(u64::MAX) }),
                },
                data(&[4, 5, 6]),
                data(&[4, 5, 6]),
            ],
        };
        st.apply(cmd).0.unwrap();
        st.apply(MasterCmd::VolumeReady { volume: VolumeId(1) }).0.unwrap();
        st
    }

    fn cfg() -> MasterSection {
        MasterSection {
            data_partition_size: 100,
            min_writable_data_partitions: 2,
            meta_split_inodes: 1000,
            ..Default::default()
        }
    }

    fn stat(used: u64, items: u64) -> PartitionStat {
        PartitionStat { leader: Some(NodeId(4)), used_bytes: used, items, read_only: false }
    }

    #[test]
    fn a_partition_reported_read_only_closes_and_is_replaced() {
        let stats = HashMap::from([(PartitionId(3), PartitionStat { read_only: true, ..stat(1, 0) })]);
        let p = plan(&state(0), &stats, &cfg());
        assert_eq!(p.close, vec![PartitionId(3)]);
        assert_eq!(p.add, vec![(VolumeId(1), 1)]);
    }

    #[test]
    fn nothing_to_do_while_there_is_room() {
        let stats = HashMap::from([(PartitionId(1), stat(0, 999)), (PartitionId(2), stat(99, 0))]);
        assert_eq!(plan(&state(0), &stats, &cfg()), GrowthPlan::default());
    }

    #[test]
    fn full_data_partitions_close_and_are_replaced() {
        let stats = HashMap::from([(PartitionId(2), stat(100, 0))]);
        let p = plan(&state(0), &stats, &cfg());
        assert_eq!(p.close, vec![PartitionId(2)]);
        assert_eq!(p.add, vec![(VolumeId(1), 1)]);
    }

    #[test]
    fn capacity_bounds_the_data_partitions() {
        let stats = HashMap::from([(PartitionId(2), stat(100, 0)), (PartitionId(3), stat(100, 0))]);
        // 250 bytes of capacity at 100 per partition: room for 3, there are 2.
        assert_eq!(plan(&state(250), &stats, &cfg()).add, vec![(VolumeId(1), 1)]);
        assert_eq!(plan(&state(200), &stats, &cfg()).add, vec![]);
    }

    #[test]
    fn the_last_meta_partition_splits_past_the_threshold() {
        let stats = HashMap::from([(PartitionId(1), stat(0, 1000))]);
        assert_eq!(plan(&state(0), &stats, &cfg()).split, vec![PartitionId(1)]);
    }

    #[test]
    fn a_split_begun_on_the_metanode_is_completed_below_the_threshold() {
        let stats = HashMap::from([(PartitionId(1), PartitionStat { read_only: true, ..stat(0, 10) })]);
        assert_eq!(plan(&state(0), &stats, &cfg()).split, vec![PartitionId(1)]);
    }
}
