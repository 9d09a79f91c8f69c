//! The one place where an error becomes an errno (issue #6, "mapped in one place").
//!
//! Transport and cluster trouble that survived the retries (timeouts, no leader, no quorum, a partition
//! that cannot be found) is `EIO`: the application cannot act on the difference, and `EIO` is what a
//! local disk gives for the same situation. `ENOSYS` is never returned: the kernel takes it as "this
//! operation is not implemented" and stops sending it for the rest of the mount; `EOPNOTSUPP` is used.

use ferrum_proto::ErrorCode;

use crate::error::FsError;

/// The errno for a wire error code.
pub fn from_code(code: &ErrorCode) -> i32 {
    use libc::*;
    match code {
        ErrorCode::NotFound => ENOENT,
        ErrorCode::Exists | ErrorCode::VolumeExists(_) => EEXIST,
        ErrorCode::NotEmpty => ENOTEMPTY,
        ErrorCode::NotDir => ENOTDIR,
        ErrorCode::IsDir => EISDIR,
        ErrorCode::NameTooLong => ENAMETOOLONG,
        ErrorCode::PermissionDenied => EACCES,
        ErrorCode::NotPermitted => EPERM,
        ErrorCode::TooManyLinks => EMLINK,
        ErrorCode::FileTooBig => EFBIG,
        // An inode range used up, and no partition after it appeared within the retries.
        ErrorCode::NoSpace | ErrorCode::InodeRangeEnd { .. } => ENOSPC,
        ErrorCode::ReadOnly => EROFS,
        ErrorCode::InvalidArgument(_) => EINVAL,
        ErrorCode::NoXattr => ENODATA,
        ErrorCode::NotSupported | ErrorCode::UnknownOpcode(_) => EOPNOTSUPP,
        ErrorCode::NotLeader { .. }
        | ErrorCode::GroupNotFound(_)
        | ErrorCode::PartitionNotFound(_)
        | ErrorCode::VolumeNotFound(_)
        | ErrorCode::Stale { .. }
        | ErrorCode::Checksum { .. }
        | ErrorCode::Timeout
        | ErrorCode::Unavailable(_)
        | ErrorCode::NoQuorum
        | ErrorCode::Busy
        | ErrorCode::VersionMismatch { .. }
        | ErrorCode::Internal(_) => EIO,
    }
}

/// The errno for any client error.
pub fn errno(err: &FsError) -> i32 {
    match err {
        FsError::Code(code) => from_code(code),
        FsError::BadHandle => libc::EBADF,
        FsError::Range => libc::ERANGE,
        FsError::PastEof => libc::ENXIO,
    }
}

#[cfg(test)]
mod tests {
    use ferrum_proto::{GroupId, LeaderHint, NodeId};

    use super::*;

    #[test]
    fn namespace_errors_keep_their_posix_meaning() {
        let cases = [
            (ErrorCode::NotFound, libc::ENOENT),
            (ErrorCode::Exists, libc::EEXIST),
            (ErrorCode::NotEmpty, libc::ENOTEMPTY),
            (ErrorCode::NotDir, libc::ENOTDIR),
            (ErrorCode::IsDir, libc::EISDIR),
            (ErrorCode::NameTooLong, libc::ENAMETOOLONG),
            (ErrorCode::PermissionDenied, libc::EACCES),
            (ErrorCode::NotPermitted, libc::EPERM),
            (ErrorCode::TooManyLinks, libc::EMLINK),
            (ErrorCode::FileTooBig, libc::EFBIG),
            (ErrorCode::NoSpace, libc::ENOSPC),
            (ErrorCode::ReadOnly, libc::EROFS),
            (ErrorCode::InvalidArgument("x".into()), libc::EINVAL),
            (ErrorCode::NoXattr, libc::ENODATA),
            (ErrorCode::NotSupported, libc::EOPNOTSUPP),
        ];
        for (code, want) in cases {
            assert_eq!(from_code(&code), want, "{code:?}");
        }
    }

    #[test]
    fn cluster_trouble_is_eio_and_never_enosys() {
        let hint = LeaderHint { node: NodeId(1), addr: "a:1".into() };
        for code in [
            ErrorCode::NotLeader { leader: Some(hint) },
            ErrorCode::GroupNotFound(GroupId(3)),
            ErrorCode::Timeout,
            ErrorCode::Unavailable("down".into()),
            ErrorCode::NoQuorum,
            ErrorCode::Busy,
            ErrorCode::Internal("bug".into()),
        ] {
            assert_eq!(from_code(&code), libc::EIO, "{code:?}");
        }
        assert_eq!(from_code(&ErrorCode::UnknownOpcode(0x0399)), libc::EOPNOTSUPP);
    }

    #[test]
    fn client_side_errors() {
        assert_eq!(errno(&FsError::BadHandle), libc::EBADF);
        assert_eq!(errno(&FsError::Range), libc::ERANGE);
        assert_eq!(errno(&FsError::PastEof), libc::ENXIO);
        assert_eq!(errno(&FsError::from(ErrorCode::NotFound)), libc::ENOENT);
        let transport = ferrum_proto::rpc::RpcError::Timeout;
        assert_eq!(errno(&FsError::from(transport)), libc::EIO);
    }
}
