//! What metanodes and datanodes share: a node id from the master (or pinned), heartbeats, resources
//! answered on demand, hosting partitions as Raft groups when the master asks, and peers' current
//! addresses from the master (a peer may restart on a new port).
//!
//! A service's `main` is: load config → [`Node::start`] → build its handler over `node.raft` →
//! [`Node::serve`]. The node routes `RAFT_*` and `MASTER_*` opcodes itself and everything else to the
//! service's handler.

mod addresses;
mod args;
mod handler;
mod heartbeat;
mod identity;
mod resources;

use std::sync::Arc;

use ferrum_proto::msg::master::NodeRole;
use ferrum_proto::rpc::{Handler, LeaderClient, RetryPolicy};
use ferrum_proto::NodeId;

pub use args::NodeArgs;
pub use resources::{local_resources, FEATURES};

use crate::app::AppFactory;
use crate::error::RaftStoreError;
use crate::instance::{InstanceConfig, Role};
use crate::router::MultiRaft;
use crate::server::Instance;

/// `GroupDesc::kind` of partitions, by node role.
pub fn partition_kind_name(role: NodeRole) -> &'static str {
    match role {
        NodeRole::Meta => "meta",
        NodeRole::Data => "data",
    }
}

pub fn instance_role(role: NodeRole) -> Role {
    match role {
        NodeRole::Meta => Role::Metanode,
        NodeRole::Data => Role::Datanode,
    }
}

pub struct Node {
    pub inst: Instance,
    pub role: NodeRole,
    pub node_id: NodeId,
    pub raft: Arc<MultiRaft>,
    master: Option<LeaderClient>,
    args: NodeArgs,
}

impl Node {
    /// Starts the instance (lock, ports, RocksDB), obtains the node id, reopens hosted partitions.
    /// `factory` builds the partitions' [`AppFactory`] from the started instance (apps that need its
    /// RocksDB, data dir or metrics registry take them from there).
    pub async fn start(
        config: InstanceConfig,
        role: NodeRole,
        args: NodeArgs,
        factory: impl FnOnce(&Instance) -> AppFactory,
    ) -> Result<Node, RaftStoreError> {
        let inst = Instance::start(config, instance_role(role)).await?;
        let factory = factory(&inst);
        let master = (!args.master.is_empty())
            .then(|| LeaderClient::new(inst.pool.clone(), args.master.clone(), RetryPolicy::default()));
        let node_id = identity::resolve(&inst, role, &args, master.as_ref()).await?;
        tracing::info!(node = %node_id, role = ?role, "node id");
        let raft = inst.open_raft(node_id, factory).await?;
        Ok(Node { inst, role, node_id, raft, master, args })
    }

    /// Serves until SIGTERM/SIGINT: Raft traffic, the master's requests, and `service` for the rest.
    pub async fn serve<S: Handler>(self, service: Arc<S>) -> Result<(), RaftStoreError> {
        if let Some(master) = self.master.clone() {
            heartbeat::spawn(heartbeat::Heartbeats {
                register: identity::registration(&self.inst, self.role, &self.args),
                master: master.clone(),
                node: self.node_id,
                role: self.role,
                raft: self.raft.clone(),
                data_dir: self.inst.data_dir.path().to_path_buf(),
                interval: std::time::Duration::from_millis(self.args.heartbeat_ms),
                stop: self.inst.shutdown.token(),
            });
            // Peers' addresses change far less often than liveness: a few heartbeats apart, or after
            // a failed dial, at most once a heartbeat.
            let beat = std::time::Duration::from_millis(self.args.heartbeat_ms.max(50));
            addresses::spawn(master, self.raft.clone(), beat * 5, beat, self.inst.shutdown.token());
        }
        let handler = handler::NodeHandler::new(self.role, self.raft.clone(), service, &self.inst);
        let raft = self.raft.clone();
        self.inst.serve(Arc::new(handler), Some(raft)).await
    }
}
