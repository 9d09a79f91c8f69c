//! A replicated key-value app: the smallest complete user of the raftstore, used by the multi-process
//! Raft tests (`ferrum-kvnode`) and as the pattern the real services follow: an [`App`] for the state
//! machine, typed [`Rpc`] messages, and a [`Handler`] that routes Raft traffic and service requests
//! arriving on the instance's one port.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use ferrum_proto::msg::{self, Rpc};
use ferrum_proto::rpc::{Handler, Incoming, Outgoing};
use ferrum_proto::{ErrorCode, GroupId, NodeId, Opcode};
use serde::{Deserialize, Serialize};

use crate::app::{App, GroupBatch, GroupView};
use crate::router::{GroupDesc, GroupStatus, MultiRaft};

pub const KIND: &str = "kv";

/// Opcodes of the demo/test range (0x0Fxx).
pub const OP_PUT: Opcode = Opcode(0x0F01);
pub const OP_GET: Opcode = Opcode(0x0F02);
pub const OP_GROUP_CREATE: Opcode = Opcode(0x0F03);
pub const OP_GROUP_STATUS: Opcode = Opcode(0x0F04);
pub const OP_GROUP_REMOVE: Opcode = Opcode(0x0F05);
pub const OP_GROUP_LIST: Opcode = Opcode(0x0F06);
pub const OP_ADD_MEMBER: Opcode = Opcode(0x0F07);
pub const OP_REMOVE_MEMBER: Opcode = Opcode(0x0F08);
pub const OP_SYNC: Opcode = Opcode(0x0F09);

/// The command replicated through Raft.
#[derive(Debug, Serialize, Deserialize)]
enum KvCmd {
    Put { key: Vec<u8>, value: Vec<u8> },
    Delete { key: Vec<u8> },
}

pub struct KvApp;

impl App for KvApp {
    fn apply(&self, _view: &GroupView<'_>, batch: &mut GroupBatch<'_>, _index: u64, cmd: &[u8]) -> Bytes {
        // A command that does not decode was proposed by a buggy client; every replica rejects it alike.
        match postcard::from_bytes::<KvCmd>(cmd) {
            Ok(KvCmd::Put { key, value }) => batch.put(&key, &value),
            Ok(KvCmd::Delete { key }) => batch.delete(&key),
            Err(e) => return msg::encode(&Err::<(), ErrorCode>(ErrorCode::InvalidArgument(e.to_string()))),
        }
        msg::encode(&Ok::<(), ErrorCode>(()))
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Put {
    pub group: GroupId,
    pub key: Vec<u8>,
    /// `None` deletes the key.
    pub value: Option<Vec<u8>>,
}
impl Rpc for Put {
    const OPCODE: Opcode = OP_PUT;
    type Response = ();
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Get {
    pub group: GroupId,
    pub key: Vec<u8>,
    /// true: only the leader answers, after a read-index barrier. false: this replica's local state.
    pub linearizable: bool,
}
impl Rpc for Get {
    const OPCODE: Opcode = OP_GET;
    type Response = Option<Vec<u8>>;
}

#[derive(Debug, Serialize, Deserialize)]
pub struct GroupCreate {
    pub group: GroupId,
    pub members: Vec<(NodeId, String)>,
    /// The member that starts the group (see [`MultiRaft::create_group_led`]); `None`: every member.
    pub first: Option<NodeId>,
}
impl Rpc for GroupCreate {
    const OPCODE: Opcode = OP_GROUP_CREATE;
    type Response = ();
}

#[derive(Debug, Serialize, Deserialize)]
pub struct GroupStatusReq {
    pub group: GroupId,
}
impl Rpc for GroupStatusReq {
    const OPCODE: Opcode = OP_GROUP_STATUS;
    type Response = GroupStatus;
}

#[derive(Debug, Serialize, Deserialize)]
pub struct GroupRemove {
    pub group: GroupId,
}
impl Rpc for GroupRemove {
    const OPCODE: Opcode = OP_GROUP_REMOVE;
    type Response = ();
}

#[derive(Debug, Serialize, Deserialize)]
pub struct GroupList;
impl Rpc for GroupList {
    const OPCODE: Opcode = OP_GROUP_LIST;
    type Response = Vec<GroupId>;
}

/// Leader only: make `node` at `addr` a voter (it must already host the group).
#[derive(Debug, Serialize, Deserialize)]
pub struct AddMember {
    pub group: GroupId,
    pub node: NodeId,
    pub addr: String,
}
impl Rpc for AddMember {
    const OPCODE: Opcode = OP_ADD_MEMBER;
    type Response = ();
}

/// Leader only: remove `node` from the group.
#[derive(Debug, Serialize, Deserialize)]
pub struct RemoveMember {
    pub group: GroupId,
    pub node: NodeId,
}
impl Rpc for RemoveMember {
    const OPCODE: Opcode = OP_REMOVE_MEMBER;
    type Response = ();
}

/// Leader only: returns once a majority fsynced the group's log (see `durability`).
#[derive(Debug, Serialize, Deserialize)]
pub struct SyncReq {
    pub group: GroupId,
}
impl Rpc for SyncReq {
    const OPCODE: Opcode = OP_SYNC;
    type Response = ();
}

/// The kv instance's request handler: Raft messages to the router, kv requests to their group.
pub struct KvService {
    pub raft: Arc<MultiRaft>,
}

impl KvService {
    async fn serve(&self, req: Incoming) -> Result<Outgoing, ErrorCode> {
        match req.opcode {
            op if op.is_raft() => self.raft.handle_raft(req).await,
            OP_PUT => {
                let p: Put = msg::decode(&req.meta)?;
                let cmd = match p.value {
                    Some(value) => KvCmd::Put { key: p.key, value },
                    None => KvCmd::Delete { key: p.key },
                };
                let reply = self.raft.write(p.group, msg::encode(&cmd)).await?;
                let res: Result<(), ErrorCode> = msg::decode(&reply)?;
                res?;
                Ok(Outgoing::msg(&()))
            }
            OP_GET => {
                let g: Get = msg::decode(&req.meta)?;
                if g.linearizable {
                    self.raft.read_barrier(g.group).await?;
                }
                let v = self.raft.view(g.group)?.get(&g.key).map_err(|e| ErrorCode::Internal(e.to_string()))?;
                Ok(Outgoing::msg(&v))
            }
            OP_GROUP_CREATE => {
                let c: GroupCreate = msg::decode(&req.meta)?;
                let members: BTreeMap<NodeId, String> = c.members.into_iter().collect();
                let desc = GroupDesc { kind: KIND.into(), params: Vec::new() };
                self.raft.create_group_led(c.group, desc, members, c.first).await?;
                Ok(Outgoing::msg(&()))
            }
            OP_GROUP_STATUS => {
                let s: GroupStatusReq = msg::decode(&req.meta)?;
                Ok(Outgoing::msg(&self.raft.status(s.group)?))
            }
            OP_GROUP_REMOVE => {
                let r: GroupRemove = msg::decode(&req.meta)?;
                self.raft.remove_group(r.group).await?;
                Ok(Outgoing::msg(&()))
            }
            OP_GROUP_LIST => Ok(Outgoing::msg(&self.raft.groups())),
            OP_ADD_MEMBER => {
                let a: AddMember = msg::decode(&req.meta)?;
                self.raft.add_member(a.group, a.node, a.addr).await?;
                Ok(Outgoing::msg(&()))
            }
            OP_REMOVE_MEMBER => {
                let r: RemoveMember = msg::decode(&req.meta)?;
                self.raft.remove_member(r.group, r.node).await?;
                Ok(Outgoing::msg(&()))
            }
            Opcode::MASTER_TRANSFER_LEADER => {
                // The same request the master sends a node; here the partition id is the group id.
                let t: ferrum_proto::msg::repair::TransferLeader = msg::decode(&req.meta)?;
                Ok(Outgoing::msg(&self.raft.transfer_leader(GroupId::from(t.partition), t.to).await?))
            }
            OP_SYNC => {
                let s: SyncReq = msg::decode(&req.meta)?;
                self.raft.sync(s.group).await?;
                Ok(Outgoing::msg(&()))
            }
            other => Err(ErrorCode::UnknownOpcode(other.0)),
        }
    }
}

impl Handler for KvService {
    fn handle(&self, req: Incoming) -> impl std::future::Future<Output = Result<Outgoing, ErrorCode>> + Send {
        self.serve(req)
    }
}
