//! openraft's network for one group, over Ferrum's RPC transport.
//!
//! All groups of an instance share one [`ConnPool`], so the Raft traffic of every group between two
//! instances rides on one multiplexed TCP connection. A Raft message names its group in a
//! [`RaftHeader`] (the frame's meta); the openraft request itself travels postcard-encoded in the frame's
//! data. Peers are dialled at their own `host:port`: the latest one [`Routes`] knows, else the one the
//! membership recorded (`BasicNode::addr`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrum_proto::msg::raft::RaftHeader;
use ferrum_proto::rpc::{ConnPool, RpcError};
use ferrum_proto::{msg, ErrorCode, GroupId, NodeId, Opcode};
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;
use serde::{de::DeserializeOwned, Serialize};

use crate::routes::Routes;
use crate::throttle::Throttle;
use crate::types::TypeConfig;

/// Creates the per-peer clients of one group.
pub struct Network {
    group: GroupId,
    pool: ConnPool,
    throttle: Arc<Throttle>,
    routes: Arc<Routes>,
}

impl Network {
    pub fn new(group: GroupId, pool: ConnPool, throttle: Arc<Throttle>, routes: Arc<Routes>) -> Self {
        Network { group, pool, throttle, routes }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> PeerClient {
        PeerClient {
            group: self.group,
            target,
            addr: node.addr.clone(),
            pool: self.pool.clone(),
            throttle: self.throttle.clone(),
            routes: self.routes.clone(),
        }
    }
}

pub struct PeerClient {
    group: GroupId,
    target: u64,
    /// As the membership recorded it; [`Routes`] may know a newer one.
    addr: String,
    pool: ConnPool,
    throttle: Arc<Throttle>,
    routes: Arc<Routes>,
}

impl PeerClient {
    async fn send<Req, Resp, E>(
        &self,
        opcode: Opcode,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, RPCError<u64, BasicNode, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let meta = msg::encode(&RaftHeader { group: self.group });
        let data = Bytes::from(postcard::to_stdvec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?);
        // Resolved per message: openraft keeps a client per peer for as long as it replicates to it.
        let addr = self.routes.resolve(NodeId(self.target), &self.addr);
        let call = self.pool.call_raw(&addr, opcode, meta, data);
        let out = match tokio::time::timeout(ttl, call).await {
            Err(elapsed) => return Err(RPCError::Network(NetworkError::new(&elapsed))),
            Ok(Err(e)) => {
                if matches!(e, RpcError::Connect { .. }) {
                    self.routes.report_unreachable();
                }
                return Err(transport_error(e));
            }
            Ok(Ok(out)) => out,
        };
        let res: Result<Resp, E> =
            postcard::from_bytes(&out.meta).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        res.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

/// Connection failures and "that peer does not host this group (yet)" make openraft back off and retry;
/// anything else is a network error for this one message.
fn transport_error<E: std::error::Error>(e: RpcError) -> RPCError<u64, BasicNode, E> {
    match &e {
        RpcError::Connect { .. } | RpcError::Closed | RpcError::Remote(ErrorCode::GroupNotFound(_)) => {
            RPCError::Unreachable(Unreachable::new(&e))
        }
        _ => RPCError::Network(NetworkError::new(&e)),
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.send(Opcode::RAFT_APPEND, &rpc, option.hard_ttl()).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>> {
        // The wait counts against openraft's per-chunk timeout (`install_snapshot_timeout`), which is
        // sized for the slowest rate allowed (see `RaftConfig::validate`).
        self.throttle.acquire(rpc.data.len() as u64).await;
        self.send(Opcode::RAFT_SNAPSHOT, &rpc, option.hard_ttl()).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.send(Opcode::RAFT_VOTE, &rpc, option.hard_ttl()).await
    }
}
