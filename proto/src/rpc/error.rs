//! What can go wrong with a call, remote or local.

use crate::error::ErrorCode;
use crate::frame::FrameError;

#[derive(Clone, Debug, thiserror::Error)]
pub enum RpcError {
    /// The server handled the request and answered with an error.
    #[error("remote error: {0}")]
    Remote(#[from] ErrorCode),
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    /// No reply within the request timeout; the request may or may not have been applied.
    #[error("request timed out")]
    Timeout,
    /// The connection died before the reply arrived; the request may or may not have been applied.
    #[error("connection closed")]
    Closed,
    #[error("frame error: {0}")]
    Frame(#[from] FrameError),
    #[error("handshake failed: {0}")]
    Handshake(String),
}

impl RpcError {
    /// The failure as an [`ErrorCode`], so callers can handle remote and transport errors alike:
    /// transport trouble is `Unavailable` (retry, maybe elsewhere), a lost reply is `Timeout`.
    pub fn code(&self) -> ErrorCode {
        match self {
            RpcError::Remote(code) => code.clone(),
            RpcError::Timeout => ErrorCode::Timeout,
            RpcError::Frame(e @ FrameError::TooLarge { .. }) => ErrorCode::InvalidArgument(e.to_string()),
            other => ErrorCode::Unavailable(other.to_string()),
        }
    }

    pub fn is_retryable(&self) -> bool {
        self.code().is_retryable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_errors_map_to_codes() {
        let connect = RpcError::Connect { addr: "h:1".into(), reason: "refused".into() };
        assert_eq!(connect.code(), ErrorCode::Unavailable("cannot connect to h:1: refused".into()));
        assert_eq!(RpcError::Timeout.code(), ErrorCode::Timeout);
        assert!(matches!(RpcError::Closed.code(), ErrorCode::Unavailable(_)));
        assert!(matches!(RpcError::Handshake("x".into()).code(), ErrorCode::Unavailable(_)));
        assert!(matches!(RpcError::Frame(FrameError::Truncated).code(), ErrorCode::Unavailable(_)));
        let big = RpcError::Frame(FrameError::TooLarge { len: 10, max: 5 });
        assert!(matches!(big.code(), ErrorCode::InvalidArgument(_)));
        assert!(!big.is_retryable());
        assert!(RpcError::Closed.is_retryable());
        assert_eq!(RpcError::from(ErrorCode::NotFound).code(), ErrorCode::NotFound);
    }
}
