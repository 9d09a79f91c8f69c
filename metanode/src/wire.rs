//! Messages between metanodes (and from the fsck tool): the steps of cross-partition operations and
//! inspection of a partition's tables. Clients use the messages in `ferrum_proto::msg::meta`.

use bytes::Bytes;
use ferrum_proto::msg::attr::{FileKind, InodeAttr, Time};
use ferrum_proto::msg::name::Name;
use ferrum_proto::msg::Rpc;
use ferrum_proto::{InodeId, OpId, Opcode, PartitionId};
use serde::{Deserialize, Serialize};

use crate::cmd::{Body, Outcome};
use crate::records::{OutboxRec, PreparedRec};

/// Applies `body` in `partition` under `(op, step)`; answered by the partition's leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnStep {
    pub partition: PartitionId,
    pub op: OpId,
    pub step: u32,
    pub body: Body,
}

impl Rpc for TxnStep {
    const OPCODE: Opcode = Opcode::META_TXN_STEP;
    type Response = Outcome;
}

/// An inode's attributes plus what only metanodes need: a directory's parent and dying mark.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InodeInfo {
    pub partition: PartitionId,
    pub inode: InodeId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InodeInfoResp {
    pub attr: InodeAttr,
    pub parent: InodeId,
    pub dying: bool,
}

impl Rpc for InodeInfo {
    const OPCODE: Opcode = Opcode::META_INODE_INFO;
    type Response = InodeInfoResp;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Table {
    Inodes,
    Dentries,
    Prepared,
    Outbox,
    Orphans,
}

/// Pages through one table of a partition, in key order (fsck, tests).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scan {
    pub partition: PartitionId,
    pub table: Table,
    /// Resume after this key (`next` of the previous page); `None` from the start.
    pub after: Option<Bytes>,
    pub limit: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScanItem {
    Inode { attr: InodeAttr, parent: InodeId, dying: bool },
    Dentry { parent: InodeId, name: Name, inode: InodeId, kind: FileKind, locked: bool },
    Prepared { op: OpId, step: u32, rec: PreparedRec },
    Outbox { op: OpId, step: u32, rec: OutboxRec },
    Orphan { inode: InodeId, since: Time },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanResp {
    pub items: Vec<ScanItem>,
    pub next: Option<Bytes>,
}

impl Rpc for Scan {
    const OPCODE: Opcode = Opcode::META_SCAN;
    type Response = ScanResp;
}
