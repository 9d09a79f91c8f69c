//! The request router of a metanode or datanode: Raft traffic to the groups, the master's requests to
//! the node agent, the rest to the service.

use std::path::PathBuf;
use std::sync::Arc;

use ferrum_proto::msg::master::{CreatePartition, DeletePartition, NodeRole};
use ferrum_proto::msg::repair::{ChangeReplicas, TransferLeader};
use ferrum_proto::msg::topology::PartitionKind;
use ferrum_proto::msg::{self};
use ferrum_proto::rpc::{Handler, Incoming, Outgoing};
use ferrum_proto::{ErrorCode, GroupId, Opcode};
use prometheus_client::metrics::counter::Counter;

use super::partition_kind_name;
use super::resources::local_resources;
use crate::router::MultiRaft;
use crate::server::Instance;

pub(super) struct NodeHandler<S> {
    role: NodeRole,
    raft: Arc<MultiRaft>,
    service: Arc<S>,
    data_dir: PathBuf,
    /// How often the master asked for resources: lets tests see its cache working.
    resource_requests: Counter,
}

impl<S: Handler> NodeHandler<S> {
    pub fn new(role: NodeRole, raft: Arc<MultiRaft>, service: Arc<S>, inst: &Instance) -> Self {
        let resource_requests = Counter::default();
        inst.metrics.registry_mut().register(
            "ferrum_node_resource_requests",
            "GetResources requests answered (the master caches the answers)",
            resource_requests.clone(),
        );
        NodeHandler { role, raft, service, data_dir: inst.data_dir.path().to_path_buf(), resource_requests }
    }

    async fn create_partition(&self, req: Incoming) -> Result<Outgoing, ErrorCode> {
        let cp: CreatePartition = msg::decode(&req.meta)?;
        let want = match self.role {
            NodeRole::Meta => PartitionKind::Meta,
            NodeRole::Data => PartitionKind::Data,
        };
        if cp.kind != want {
            return Err(ErrorCode::InvalidArgument(format!(
                "partition {} is {:?}, this node hosts {:?} partitions",
                cp.partition, cp.kind, want
            )));
        }
        if cp.members.is_empty() {
            return Err(ErrorCode::InvalidArgument(format!("partition {} has no members", cp.partition)));
        }
        self.raft.create_partition_group(&cp, partition_kind_name(self.role)).await?;
        Ok(Outgoing::msg(&()))
    }

    async fn delete_partition(&self, req: Incoming) -> Result<Outgoing, ErrorCode> {
        let dp: DeletePartition = msg::decode(&req.meta)?;
        match self.raft.remove_group(GroupId::from(dp.partition)).await {
            // Already gone: deleting is idempotent.
            Ok(()) | Err(ErrorCode::GroupNotFound(_)) => Ok(Outgoing::msg(&())),
            Err(e) => Err(e),
        }
    }

    async fn route(&self, req: Incoming) -> Result<Outgoing, ErrorCode> {
        match req.opcode {
            op if op.is_raft() => self.raft.handle_raft(req).await,
            Opcode::MASTER_CREATE_PARTITION => self.create_partition(req).await,
            Opcode::MASTER_DELETE_PARTITION => self.delete_partition(req).await,
            Opcode::MASTER_CHANGE_REPLICAS => {
                let c: ChangeReplicas = msg::decode(&req.meta)?;
                let p = self.raft.change_replicas(GroupId::from(c.partition), c.remove, c.add.node, c.add.addr).await?;
                Ok(Outgoing::msg(&p))
            }
            Opcode::MASTER_TRANSFER_LEADER => {
                let t: TransferLeader = msg::decode(&req.meta)?;
                Ok(Outgoing::msg(&self.raft.transfer_leader(GroupId::from(t.partition), t.to).await?))
            }
            Opcode::MASTER_GET_RESOURCES => {
                self.resource_requests.inc();
                let dir = self.data_dir.clone();
                let r = tokio::task::spawn_blocking(move || local_resources(&dir))
                    .await
                    .map_err(|e| ErrorCode::Internal(e.to_string()))?;
                Ok(Outgoing::msg(&r))
            }
            _ => self.service.handle(req).await,
        }
    }
}

impl<S: Handler> Handler for NodeHandler<S> {
    fn handle(&self, req: Incoming) -> impl std::future::Future<Output = Result<Outgoing, ErrorCode>> + Send {
        self.route(req)
    }
}
