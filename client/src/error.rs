//! The client's error type.
//!
//! Almost every failure is a wire [`ErrorCode`] (from a metanode, a datanode, the master, or the transport
//! via `RpcError::code`). The few that only the client can detect (a file handle it never issued, a value
//! too large for the caller's buffer, a seek past the end) get their own variants, so nothing is squeezed
//! into a misleading code. [`crate::errno`] turns any of them into an errno, in one place.

use ferrum_proto::rpc::RpcError;
use ferrum_proto::ErrorCode;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FsError {
    #[error(transparent)]
    Code(#[from] ErrorCode),
    /// A file or directory handle this client never issued, or already released.
    #[error("bad file handle")]
    BadHandle,
    /// The value does not fit the buffer the caller offered (xattrs).
    #[error("result larger than the caller's buffer")]
    Range,
    /// `SEEK_DATA`/`SEEK_HOLE` at or past the end of the file.
    #[error("offset is past the end of the file")]
    PastEof,
}

impl From<RpcError> for FsError {
    fn from(e: RpcError) -> FsError {
        FsError::Code(e.code())
    }
}

impl FsError {
    /// Whether trying again later may succeed: the cluster could not answer (no leader, no majority,
    /// a node unreachable, a timeout), not that it refused.
    pub fn is_transient(&self) -> bool {
        self.code().is_some_and(ErrorCode::is_retryable)
    }

    /// The wire code, when there is one.
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            FsError::Code(c) => Some(c),
            _ => None,
        }
    }
}

pub type Result<T, E = FsError> = std::result::Result<T, E>;
