//! The first exchange on every connection: agree on a protocol version.

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;

/// The newest protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;
/// The oldest protocol version this build still accepts.
pub const MIN_PROTOCOL_VERSION: u16 = 1;
/// Identifies this build in `Hello::client` / `HelloAck::server`.
pub const AGENT: &str = concat!("ferrum/", env!("CARGO_PKG_VERSION"));

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub min_version: u16,
    pub max_version: u16,
    /// Free-form, for logs.
    pub client: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloAck {
    /// The version both sides speak from now on.
    pub version: u16,
    pub server: String,
}

rpc!(Hello => HelloAck, HELLO);

impl Hello {
    /// Our own hello: every version this build speaks.
    pub fn ours() -> Hello {
        Hello { min_version: MIN_PROTOCOL_VERSION, max_version: PROTOCOL_VERSION, client: AGENT.to_string() }
    }

    /// The server side: the newest version both speak, or `VersionMismatch`.
    pub fn negotiate(&self) -> Result<u16, ErrorCode> {
        let lo = self.min_version.max(MIN_PROTOCOL_VERSION);
        let hi = self.max_version.min(PROTOCOL_VERSION);
        if lo <= hi {
            Ok(hi)
        } else {
            Err(ErrorCode::VersionMismatch {
                ours: PROTOCOL_VERSION,
                theirs_min: self.min_version,
                theirs_max: self.max_version,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(min: u16, max: u16) -> Hello {
        Hello { min_version: min, max_version: max, client: String::new() }
    }

    #[test]
    fn overlapping_ranges_pick_the_newest_common_version() {
        assert_eq!(Hello::ours().negotiate(), Ok(PROTOCOL_VERSION));
        assert_eq!(hello(0, 100).negotiate(), Ok(PROTOCOL_VERSION));
        assert_eq!(hello(PROTOCOL_VERSION, PROTOCOL_VERSION).negotiate(), Ok(PROTOCOL_VERSION));
    }

    #[test]
    fn disjoint_ranges_are_a_mismatch() {
        let err = hello(PROTOCOL_VERSION + 1, PROTOCOL_VERSION + 5).negotiate().unwrap_err();
        assert_eq!(
            err,
            ErrorCode::VersionMismatch {
                ours: PROTOCOL_VERSION,
                theirs_min: PROTOCOL_VERSION + 1,
                theirs_max: PROTOCOL_VERSION + 5
            }
        );
        assert!(hello(0, 0).negotiate().is_err());
        assert!(hello(5, 2).negotiate().is_err());
    }
}
