//! The error a server sends back on the wire.
//!
//! Each variant says what happened in a form the caller can act on (retry elsewhere, refresh a view, map
//! to an errno) — a bare string is never the only information. postcard encodes the variant by its index,
//! so variants are only ever appended at the end, never reordered or removed.

use serde::{Deserialize, Serialize};

use crate::ids::{GroupId, InodeId, NodeId, PartitionId};

/// Where the current leader of a Raft group is believed to be.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeaderHint {
    pub node: NodeId,
    pub addr: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ErrorCode {
    /// This replica is not the leader; retry at `leader` when known, else try another replica.
    #[error("not the leader{}", match .leader { Some(h) => format!(" (leader is node {} at {})", h.node, h.addr), None => String::new() })]
    NotLeader { leader: Option<LeaderHint> },
    #[error("raft group {0} is not hosted here")]
    GroupNotFound(GroupId),
    #[error("partition {0} is not hosted here")]
    PartitionNotFound(PartitionId),
    #[error("volume {0:?} not found")]
    VolumeNotFound(String),
    #[error("volume {0:?} already exists")]
    VolumeExists(String),
    #[error("no space left")]
    NoSpace,
    #[error("read-only")]
    ReadOnly,
    /// The caller's view (epoch, volume view version, ...) is older than `current`: refresh and retry.
    #[error("stale request: current version is {current}")]
    Stale { current: u64 },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    Exists,
    #[error("directory not empty")]
    NotEmpty,
    #[error("not a directory")]
    NotDir,
    #[error("is a directory")]
    IsDir,
    #[error("name too long")]
    NameTooLong,
    /// Access check failed (EACCES).
    #[error("permission denied")]
    PermissionDenied,
    /// Operation forbidden regardless of permission bits (EPERM).
    #[error("operation not permitted")]
    NotPermitted,
    #[error("too many links")]
    TooManyLinks,
    #[error("file too big")]
    FileTooBig,
    #[error("checksum mismatch: {detail}")]
    Checksum { detail: String },
    #[error("timed out")]
    Timeout,
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("no quorum")]
    NoQuorum,
    #[error("busy, retry later")]
    Busy,
    #[error("unknown opcode {0:#06x}")]
    UnknownOpcode(u16),
    #[error("protocol version mismatch: we speak up to {ours}, peer speaks {theirs_min}..={theirs_max}")]
    VersionMismatch { ours: u16, theirs_min: u16, theirs_max: u16 },
    #[error("internal error: {0}")]
    Internal(String),
    /// The extended attribute does not exist (ENODATA), distinct from a missing inode.
    #[error("no such extended attribute")]
    NoXattr,
    /// The operation or flag is valid but not implemented by this server (EOPNOTSUPP).
    #[error("not supported")]
    NotSupported,
    /// The meta partition's inode range ends at `end` (the master split it): it allocates no inode
    /// there and holds none from there on. Refresh the volume view: the partition that follows takes
    /// new inodes (it may take a moment to appear).
    #[error("meta partition {partition} holds no inodes from {end} on (split): refresh the volume view")]
    InodeRangeEnd { partition: PartitionId, end: InodeId },
}

impl ErrorCode {
    /// Whether the same request may succeed if retried (possibly at another replica or after a delay).
    /// Mutations are safe to retry because they carry an [`crate::OpId`].
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ErrorCode::NotLeader { .. }
                | ErrorCode::Timeout
                | ErrorCode::Unavailable(_)
                | ErrorCode::NoQuorum
                | ErrorCode::Busy
                | ErrorCode::Stale { .. }
        )
    }

    /// The leader to retry at, if this is a `NotLeader` that knows one.
    pub fn leader_hint(&self) -> Option<&LeaderHint> {
        match self {
            ErrorCode::NotLeader { leader } => leader.as_ref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint() -> LeaderHint {
        LeaderHint { node: NodeId(2), addr: "10.0.0.2:9000".into() }
    }

    #[test]
    fn round_trips_through_postcard() {
        let all = [
            ErrorCode::NotLeader { leader: Some(hint()) },
            ErrorCode::NotLeader { leader: None },
            ErrorCode::GroupNotFound(GroupId(4)),
            ErrorCode::PartitionNotFound(PartitionId(5)),
            ErrorCode::Stale { current: 12 },
            ErrorCode::VersionMismatch { ours: 1, theirs_min: 2, theirs_max: 3 },
            ErrorCode::UnknownOpcode(0x0F01),
            ErrorCode::Checksum { detail: "extent 3".into() },
            ErrorCode::NotSupported,
            ErrorCode::InodeRangeEnd { partition: PartitionId(3), end: InodeId(100) },
        ];
        for code in all {
            let bytes = postcard::to_allocvec(&code).unwrap();
            assert_eq!(postcard::from_bytes::<ErrorCode>(&bytes).unwrap(), code);
        }
    }

    #[test]
    fn variant_indices_are_stable() {
        // postcard sends the variant index: these must never change.
        assert_eq!(postcard::to_allocvec(&ErrorCode::NotLeader { leader: None }).unwrap(), [0, 0]);
        assert_eq!(postcard::to_allocvec(&ErrorCode::NotFound).unwrap(), [9]);
        assert_eq!(postcard::to_allocvec(&ErrorCode::Internal(String::new())).unwrap(), [26, 0]);
        assert_eq!(postcard::to_allocvec(&ErrorCode::NotSupported).unwrap(), [28]);
        assert_eq!(
            postcard::to_allocvec(&ErrorCode::InodeRangeEnd { partition: PartitionId(1), end: InodeId(2) }).unwrap(),
            [29, 1, 2]
        );
    }

    #[test]
    fn retryable_and_hint() {
        assert!(ErrorCode::NotLeader { leader: None }.is_retryable());
        assert!(ErrorCode::Stale { current: 1 }.is_retryable());
        assert!(ErrorCode::Unavailable("x".into()).is_retryable());
        assert!(!ErrorCode::NotFound.is_retryable());
        assert!(!ErrorCode::NoSpace.is_retryable());
        assert_eq!(ErrorCode::NotLeader { leader: Some(hint()) }.leader_hint(), Some(&hint()));
        assert_eq!(ErrorCode::Busy.leader_hint(), None);
    }

    #[test]
    fn display_is_readable() {
        let s = ErrorCode::NotLeader { leader: Some(hint()) }.to_string();
        assert_eq!(s, "not the leader (leader is node 2 at 10.0.0.2:9000)");
        assert_eq!(ErrorCode::NotLeader { leader: None }.to_string(), "not the leader");
        assert_eq!(ErrorCode::UnknownOpcode(0x0F01).to_string(), "unknown opcode 0x0f01");
    }
}
