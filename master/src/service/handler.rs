//! The master's RPC handler: Raft traffic to the router, master requests to [`Master`].

use std::future::Future;
use std::sync::Arc;

use ferrum_proto::msg::master::{GetClusterStatus, GetResources, ListNodes, ListVolumes, NodeAddrs};
use ferrum_proto::msg::repair::ListRepairs;
use ferrum_proto::msg::Rpc;
use ferrum_proto::rpc::{Handler, Incoming, Outgoing};
use ferrum_proto::{ErrorCode, Opcode};

use super::Master;
use crate::resources::Need;

pub struct MasterService {
    pub master: Arc<Master>,
}

/// Decodes the request, runs `f`, encodes the answer.
async fn typed<R, F, Fut>(req: &Incoming, f: F) -> Result<Outgoing, ErrorCode>
where
    R: Rpc,
    F: FnOnce(R) -> Fut,
    Fut: Future<Output = Result<R::Response, ErrorCode>>,
{
    let r: R = req.decode()?;
    Ok(Outgoing::msg(&f(r).await?))
}

impl MasterService {
    async fn serve(&self, req: Incoming) -> Result<Outgoing, ErrorCode> {
        let m = &self.master;
        match req.opcode {
            op if op.is_raft() => m.raft.handle_raft(req).await,
            Opcode::MASTER_REGISTER_NODE => typed(&req, |r| m.register_node(r)).await,
            Opcode::MASTER_HEARTBEAT => typed(&req, |r| async { m.heartbeat(r) }).await,
            // Answered locally by the cache, whatever the leadership.
            Opcode::MASTER_GET_RESOURCES => {
                typed(&req, |_: GetResources| m.resources.get(&m.advertise, Need::Space)).await
            }
            Opcode::MASTER_GET_VOLUME_VIEW => typed(&req, |r| m.volume_view(r)).await,
            Opcode::MASTER_CLUSTER_STATUS => typed(&req, |_: GetClusterStatus| m.cluster_status()).await,
            Opcode::MASTER_LIST_NODES => typed(&req, |_: ListNodes| m.list_nodes()).await,
            Opcode::MASTER_CREATE_VOLUME => typed(&req, |r| m.create_volume(r)).await,
            Opcode::MASTER_DELETE_VOLUME => typed(&req, |r| m.delete_volume(r)).await,
            Opcode::MASTER_LIST_VOLUMES => typed(&req, |_: ListVolumes| m.list_volumes()).await,
            Opcode::MASTER_GET_VOLUME => typed(&req, |r| m.get_volume(r)).await,
            Opcode::MASTER_LIST_PARTITIONS => typed(&req, |r| m.list_partitions(r)).await,
            Opcode::MASTER_JOIN => typed(&req, |r| m.join_master(r)).await,
            Opcode::MASTER_PROMOTE => typed(&req, |r| m.promote_master(r)).await,
            Opcode::MASTER_DECOMMISSION_NODE => typed(&req, |r| m.decommission_node(r)).await,
            Opcode::MASTER_REMOVE_NODE => typed(&req, |r| m.remove_node(r)).await,
            Opcode::MASTER_LIST_REPAIRS => typed(&req, |_: ListRepairs| m.list_repairs()).await,
            Opcode::MASTER_REMOVE_MASTER => typed(&req, |r| m.remove_master(r)).await,
            Opcode::MASTER_NODE_ADDRS => typed(&req, |_: NodeAddrs| m.node_addrs()).await,
            other => Err(ErrorCode::UnknownOpcode(other.0)),
        }
    }
}

impl Handler for MasterService {
    fn handle(&self, req: Incoming) -> impl Future<Output = Result<Outgoing, ErrorCode>> + Send {
        self.serve(req)
    }
}
