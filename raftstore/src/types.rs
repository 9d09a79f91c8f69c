//! openraft type configuration shared by every group of every service.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A command proposed to a group: opaque to Raft, interpreted by the group's [`crate::App`].
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cmd(pub Bytes);

/// What applying a [`Cmd`] returned; travels back to the proposer.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply(pub Bytes);

// Commands may carry MiBs of file data: print sizes, not contents.
impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cmd({} bytes)", self.0.len())
    }
}
impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reply({} bytes)", self.0.len())
    }
}
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

openraft::declare_raft_types!(
    /// Raft node ids are Ferrum [`ferrum_proto::NodeId`] values; a peer is reached at `BasicNode::addr`
    /// (its own `host:port`, never a shared port convention). Snapshots are files, so a large partition
    /// never has to fit in memory.
    pub TypeConfig:
        D = Cmd,
        R = Reply,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type LogId = openraft::LogId<u64>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type Vote = openraft::Vote<u64>;
pub type StoredMembership = openraft::StoredMembership<u64, openraft::BasicNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<u64, openraft::BasicNode>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
pub type StorageError = openraft::StorageError<u64>;
