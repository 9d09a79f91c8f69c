//! The volume view clients mount from: its ready partitions, their replicas and leader hints, and a
//! version that lets a client skip an unchanged view.

use ferrum_proto::msg::master::{GetVolumeView, VolumeState, VolumeViewReply};
use ferrum_proto::msg::topology::{DataPartitionView, MetaPartitionView, PartitionKind, VolumeView};
use ferrum_proto::{ErrorCode, LeaderHint};

use super::info::replicas;
use super::Master;

impl Master {
    pub async fn volume_view(&self, req: GetVolumeView) -> Result<VolumeViewReply, ErrorCode> {
        self.lead().await?;
        let stats = self.liveness.partition_stats();
        let st = self.state.read().expect("state lock");
        let v = st.volume_named(&req.name).ok_or_else(|| ErrorCode::VolumeNotFound(req.name.clone()))?;
        match v.state {
            VolumeState::Ready => {}
            VolumeState::Creating => {
                return Err(ErrorCode::Unavailable(format!("volume {:?} is still being created", v.name)))
            }
            VolumeState::Deleting => return Err(ErrorCode::VolumeNotFound(req.name)),
        }
        if req.known_version == v.view_version {
            return Ok(VolumeViewReply::Unchanged { version: v.view_version });
        }
        let mut view = VolumeView {
            volume: v.id,
            name: v.name.clone(),
            version: v.view_version,
            meta_partitions: Vec::new(),
            data_partitions: Vec::new(),
        };
        // Partitions still being created are left out: the view only names groups that exist.
        for p in st.partitions_of(v.id).filter(|p| p.ready) {
            let leader = stats
                .get(&p.id)
                .and_then(|s| s.leader)
                .filter(|l| p.replicas.contains(l))
                .and_then(|l| st.nodes.get(&l))
                .map(|n| LeaderHint { node: n.id, addr: n.advertise.clone() });
            match (p.kind, p.inodes) {
                (PartitionKind::Meta, Some(inodes)) => view.meta_partitions.push(MetaPartitionView {
                    partition: p.id,
                    inodes,
                    replicas: replicas(&st, p),
                    leader,
                }),
                (PartitionKind::Meta, None) => {
                    return Err(ErrorCode::Internal(format!("meta partition {} has no inode range", p.id)))
                }
                (PartitionKind::Data, _) => view.data_partitions.push(DataPartitionView {
                    partition: p.id,
                    replicas: replicas(&st, p),
                    leader,
                    writable: p.writable,
                }),
            }
        }
        view.meta_partitions.sort_by_key(|m| m.inodes.start);
        Ok(VolumeViewReply::Changed(view))
    }
}
