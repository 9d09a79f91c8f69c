//! openraft's network for one group, over Ferrum's RPC transport.
//!
//! All groups of an instance share one [`ConnPool`], so the Raft traffic of every group between two
//! instances rides on one multiplexed TCP connection. A Raft message names its group in a
//! [`RaftHeader`] (the frame's meta); the openraft request itself travels postcard-encoded in the frame's
//! data. Peers are dialled at their own `host:port`: the latest one [`Routes`] knows, else the one the
//! membership recorded (`BasicNode::addr`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrum_proto::msg::raft::RaftHeader;
use ferrum_proto::rpc::{ConnPool, RpcError};
use ferrum_proto::{msg, ErrorCode, GroupId, NodeId, Opcode};
use openraft::error::{
    Fatal, InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, ReplicationClosed,
    StreamingError, Unreachable,
};
use openraft::network::snapshot_transport::{Chunked, SnapshotTransport};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::SnapshotResponse;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::{BasicNode, OptionalSend, Vote};
use serde::{de::DeserializeOwned, Serialize};

use crate::commit_hint::CommitHints;
use crate::routes::Routes;
use crate::snapshot_send::Completer;
use crate::throttle::Throttle;
use crate::types::{Snapshot, TypeConfig};

/// An AppendEntries larger than this is refused before it is sent, and openraft sends fewer entries at a
/// time. openraft bounds each AppendEntries by the heartbeat interval (150 ms by default), and a
/// datanode's entries carry file data (up to 1 MiB each): 256 of them cannot cross in time on a loaded
/// machine, and after each timeout the leader would resend the whole batch while the earlier copies still
/// queue on the connection, until the follower drowns and the leader's memory grows by gigabytes.
pub const MAX_APPEND_BYTES: usize = 4 << 20;

/// Creates the per-peer clients of one group.
pub struct Network {
    group: GroupId,
    pool: ConnPool,
    throttle: Arc<Throttle>,
    routes: Arc<Routes>,
    completer: Option<Completer>,
}

impl Network {
    pub fn new(group: GroupId, pool: ConnPool, throttle: Arc<Throttle>, routes: Arc<Routes>) -> Self {
        Network { group, pool, throttle, routes, completer: None }
    }

    /// Snapshots are completed with the app's external state before they are sent
    /// (see [`crate::snapshot_send`]).
    pub fn completing(mut self, completer: Completer) -> Self {
        self.completer = Some(completer);
        self
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
            completer: self.completer.clone(),
            hints: CommitHints::default(),
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
    completer: Option<Completer>,
    /// What the follower last acknowledged on this client (see [`crate::commit_hint`]).
    hints: CommitHints,
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
        self.send_encoded(opcode, encode(req)?, ttl).await
    }

    async fn send_encoded<Resp, E>(
        &self,
        opcode: Opcode,
        data: Bytes,
        ttl: Duration,
    ) -> Result<Resp, RPCError<u64, BasicNode, E>>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let meta = msg::encode(&RaftHeader { group: self.group });
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

/// Encodes into a buffer of the exact size: an AppendEntries of MiB entries grown by doubling was copied
/// several times over.
fn encode<Req: Serialize, E: std::error::Error>(req: &Req) -> Result<Bytes, RPCError<u64, BasicNode, E>> {
    let err = |e: postcard::Error| RPCError::Network(NetworkError::new(&e));
    let buf = Vec::with_capacity(postcard::experimental::serialized_size(req).map_err(err)?);
    Ok(Bytes::from(postcard::to_io(req, buf).map_err(err)?))
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
        let now = Instant::now();
        // Half the heartbeat interval (openraft gives an AppendEntries the interval as its hard TTL).
        if self.hints.may_defer(&rpc, now, option.hard_ttl() / 2) {
            return Ok(AppendEntriesResponse::Success);
        }
        let pending = CommitHints::sending(&rpc, now);
        let entries = rpc.entries.len() as u64;
        let data = encode(&rpc)?;
        if entries > 1 && data.len() > MAX_APPEND_BYTES {
            // openraft retries at once with at most this many entries (for its next few messages).
            let fit = (entries * MAX_APPEND_BYTES as u64 / data.len() as u64).max(1);
            return Err(RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(fit)));
        }
        let res = self.send_encoded(Opcode::RAFT_APPEND, data, option.hard_ttl()).await;
        self.hints.answered(pending, &res);
        res
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

    async fn full_snapshot(
        &mut self,
        vote: Vote<u64>,
        snapshot: Snapshot,
        cancel: impl std::future::Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<u64>, StreamingError<TypeConfig, Fatal<u64>>> {
        let snapshot = match &self.completer {
            None => snapshot,
            Some(c) => c.complete(snapshot).await.map_err(|e| {
                // Not a storage error of this replica's Raft state (that would stop the group): the
                // transfer is retried after a back-off.
                tracing::warn!(group = %self.group, target = self.target, error = %e, "snapshot not completed for sending");
                StreamingError::Unreachable(Unreachable::new(&e))
            })?,
        };
        Chunked::send_snapshot(self, vote, snapshot, cancel, option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.send(Opcode::RAFT_VOTE, &rpc, option.hard_ttl()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Cmd;
    use ferrum_proto::rpc::ClientConfig;
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Vote};

    fn append(entries: usize, each: usize) -> AppendEntriesRequest<TypeConfig> {
        let entry = |i| Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), i),
            payload: EntryPayload::Normal(Cmd(Bytes::from(vec![7u8; each]))),
        };
        AppendEntriesRequest {
            vote: Vote::new_committed(1, 1),
            prev_log_id: None,
            leader_commit: None,
            entries: (1..=entries as u64).map(entry).collect(),
        }
    }

    #[tokio::test]
    async fn a_large_append_is_split_but_a_single_large_entry_still_goes() {
        // Nothing listens there: whatever is actually sent fails as unreachable.
        let (throttle, routes) = (Arc::new(Throttle::new(0)), Arc::new(Routes::default()));
        let mut peer = Network::new(GroupId(1), ConnPool::new(ClientConfig::default()), throttle, routes)
            .new_client(2, &BasicNode::new("127.0.0.1:1"))
            .await;
        let opt = || RPCOption::new(Duration::from_millis(500));
        match peer.append_entries(append(10, 1 << 20), opt()).await {
            Err(RPCError::PayloadTooLarge(e)) => assert_eq!(e.entries_hint(), 3),
            other => panic!("10 MiB in one append must be refused with a hint: {other:?}"),
        }
        match peer.append_entries(append(1, 10 << 20), opt()).await {
            Err(RPCError::Unreachable(_)) => {}
            other => panic!("one entry is sent however large: {other:?}"),
        }
        match peer.append_entries(append(3, 1 << 20), opt()).await {
            Err(RPCError::Unreachable(_)) => {}
            other => panic!("3 MiB is sent: {other:?}"),
        }
    }
}
