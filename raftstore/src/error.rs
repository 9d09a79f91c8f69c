//! Errors of the raftstore crate.

use std::path::PathBuf;

use ferrum_proto::{ErrorCode, GroupId};

#[derive(Debug, thiserror::Error)]
pub enum RaftStoreError {
    #[error("rocksdb at {path}: {source}")]
    Open { path: PathBuf, source: rocksdb::Error },
    #[error("rocksdb: {0}")]
    Db(#[from] rocksdb::Error),
    #[error("corrupt record in {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("io on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("raft group {0} not found on this instance")]
    GroupNotFound(GroupId),
    #[error("raft group {group}: {detail}")]
    Raft { group: GroupId, detail: String },
    #[error(transparent)]
    Instance(#[from] crate::instance::InstanceError),
    #[error("invalid raft config: {0}")]
    Config(String),
}

impl RaftStoreError {
    pub fn code(&self) -> ErrorCode {
        match self {
            RaftStoreError::GroupNotFound(g) => ErrorCode::GroupNotFound(*g),
            other => ErrorCode::Internal(other.to_string()),
        }
    }
}

/// openraft wants its own error type out of storage calls.
pub(crate) fn sto_read(e: impl std::error::Error + 'static) -> openraft::StorageError<u64> {
    openraft::StorageIOError::read(&e).into()
}
pub(crate) fn sto_write(e: impl std::error::Error + 'static) -> openraft::StorageError<u64> {
    openraft::StorageIOError::write(&e).into()
}
