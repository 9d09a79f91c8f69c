//! Node registration, heartbeats, the node list, and the candidates for new partitions.

use std::collections::HashMap;

use ferrum_proto::msg::master::{Heartbeat, NodeAddr, NodeInfo, NodeRole, NodeState, RegisterNode, RegisterNodeResp};
use ferrum_proto::msg::repair::{DecommissionNode, RemoveNode};
use ferrum_proto::msg::topology::PartitionKind;
use ferrum_proto::{ErrorCode, NodeId};
use futures_util::future::join_all;

use super::{now_unix_ms, unexpected, Master};
use crate::placement::Candidate;
use crate::resources::Need;
use crate::state::{CmdReply, MasterCmd, NodeRecord};

impl Master {
    pub async fn register_node(&self, r: RegisterNode) -> Result<RegisterNodeResp, ErrorCode> {
        if r.instance_uuid.is_empty() {
            return Err(ErrorCode::InvalidArgument("instance_uuid is empty".into()));
        }
        if !r.advertise.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0)) {
            return Err(ErrorCode::InvalidArgument(format!("advertise {:?} is not HOST:PORT", r.advertise)));
        }
        self.lead_fast()?;
        // A node re-registering unchanged (every restart) costs no Raft write. Ids never change for a
        // uuid, so even a just-deposed leader answers correctly here.
        let known = self.state.read().expect("state lock").node_by_uuid(&r.instance_uuid).cloned();
        let id = match known {
            Some(n) if n.role == r.role && n.advertise == r.advertise && n.host == r.host => n.id,
            previous => {
                let cmd = MasterCmd::RegisterNode {
                    role: r.role,
                    advertise: r.advertise.clone(),
                    host: r.host.clone(),
                    instance_uuid: r.instance_uuid.clone(),
                    now_unix_ms: now_unix_ms(),
                };
                let id = match self.propose(cmd).await? {
                    CmdReply::Node(id) => id,
                    other => return Err(unexpected(other)),
                };
                if let Some(p) = previous.filter(|p| p.advertise != r.advertise) {
                    self.resources.forget(&p.advertise);
                }
                tracing::info!(node = %id, role = ?r.role, advertise = %r.advertise, host = %r.host, "node registered");
                id
            }
        };
        self.liveness.touch(id);
        Ok(RegisterNodeResp { node_id: id })
    }

    pub fn heartbeat(&self, hb: Heartbeat) -> Result<(), ErrorCode> {
        self.lead_fast()?;
        if !self.state.read().expect("state lock").nodes.contains_key(&hb.node) {
            // Registered with a master that lost that write, or a wiped master cluster: register again.
            return Err(ErrorCode::NotFound);
        }
        self.liveness.heartbeat(hb);
        Ok(())
    }

    /// Every node's current address (see `NodeAddrs`).
    pub async fn node_addrs(&self) -> Result<Vec<NodeAddr>, ErrorCode> {
        self.lead().await?;
        let st = self.state.read().expect("state lock");
        Ok(st.nodes.values().map(|n| NodeAddr { id: n.id, addr: n.advertise.clone() }).collect())
    }

    pub async fn list_nodes(&self) -> Result<Vec<NodeInfo>, ErrorCode> {
        self.lead().await?;
        let leaders = self.leaders_per_node();
        let st = self.state.read().expect("state lock");
        let mut per_node: HashMap<NodeId, (u64, u64)> = HashMap::new();
        for p in st.partitions.values() {
            for n in &p.replicas {
                let e = per_node.entry(*n).or_default();
                match p.kind {
                    PartitionKind::Meta => e.0 += 1,
                    PartitionKind::Data => e.1 += 1,
                }
            }
        }
        Ok(st
            .nodes
            .values()
            .map(|n| {
                let (state, ago) = self.liveness.state(n.id);
                let seen = self.liveness.last_seen(n.id);
                let (meta, data) = per_node.get(&n.id).copied().unwrap_or_default();
                NodeInfo {
                    id: n.id,
                    role: n.role,
                    advertise: n.advertise.clone(),
                    host: n.host.clone(),
                    state,
                    last_heartbeat_ms: ago.map(|d| d.as_millis() as u64),
                    meta_partitions: meta,
                    data_partitions: data,
                    disk_total: seen.as_ref().map_or(0, |s| s.disk_total),
                    disk_free: seen.as_ref().map_or(0, |s| s.disk_free),
                    decommissioning: st.decommissioning.contains_key(&n.id),
                    hosted_partitions: seen.as_ref().map_or(0, |s| s.partitions.len() as u64),
                    leaders: leaders.get(&n.id).copied().unwrap_or(0),
                }
            })
            .collect())
    }

    /// Starts moving every replica off the node (the repair loop does the moves).
    pub async fn decommission_node(&self, r: DecommissionNode) -> Result<(), ErrorCode> {
        self.lead().await?;
        self.propose(MasterCmd::Decommission { node: r.node, now_unix_ms: now_unix_ms() }).await?;
        tracing::info!(node = %r.node, "node decommission started");
        Ok(())
    }

    /// Forgets a node; refused while it holds replicas.
    pub async fn remove_node(&self, r: RemoveNode) -> Result<(), ErrorCode> {
        let _ops = self.ops.lock().await;
        self.lead().await?;
        let addr = self.state.read().expect("state lock").nodes.get(&r.node).map(|n| n.advertise.clone());
        self.propose(MasterCmd::RemoveNode { node: r.node }).await?;
        if let Some(a) = addr {
            self.resources.forget(&a);
        }
        tracing::info!(node = %r.node, "node removed");
        Ok(())
    }

    /// Alive nodes of `role` with enough free space (read through the resource cache), with how many
    /// replicas each hosts and how many partitions it leads; and how many nodes of that role are
    /// registered at all (for errors).
    pub(crate) async fn candidates(&self, role: NodeRole) -> (Vec<Candidate>, usize) {
        let (nodes, counts, registered): (Vec<NodeRecord>, HashMap<NodeId, u64>, usize) = {
            let st = self.state.read().expect("state lock");
            let of_role: Vec<NodeRecord> = st.nodes.values().filter(|n| n.role == role).cloned().collect();
            let registered = of_role.len();
            // A node being emptied receives nothing new.
            let of_role: Vec<NodeRecord> =
                of_role.into_iter().filter(|n| !st.decommissioning.contains_key(&n.id)).collect();
            let alive = of_role.into_iter().filter(|n| self.liveness.state(n.id).0 == NodeState::Alive).collect();
            (alive, st.replica_counts(), registered)
        };
        let fetched = join_all(nodes.iter().map(|n| self.resources.get(&n.advertise, Need::Space))).await;
        let leads = self.leaders_per_node();
        let mut out = Vec::new();
        for (n, res) in nodes.into_iter().zip(fetched) {
            match res {
                Ok(r) if r.disk_free >= self.cfg.min_free_bytes => out.push(Candidate {
                    node: n.id,
                    host: n.host,
                    disk_free: r.disk_free,
                    replicas: counts.get(&n.id).copied().unwrap_or(0),
                    leads: leads.get(&n.id).copied().unwrap_or(0),
                }),
                Ok(r) => {
                    tracing::warn!(node = %n.id, free = r.disk_free, min = self.cfg.min_free_bytes, "node too full for new partitions")
                }
                Err(e) => {
                    tracing::warn!(node = %n.id, addr = %n.advertise, error = %e, "cannot get node resources; not placing on it")
                }
            }
        }
        (out, registered)
    }
}
