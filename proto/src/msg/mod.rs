//! Typed messages: what travels postcard-encoded in a frame's `meta`.
//!
//! A request type implements [`Rpc`], which ties it to its opcode and response type, so a client call
//! is checked at compile time. Messages are plain serde structs; postcard is not self-describing, so a
//! field is only ever added at the end of a message, together with a protocol version bump when an old
//! peer could not ignore it (postcard ignores trailing bytes).

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ErrorCode;
use crate::opcode::Opcode;

/// Implements [`Rpc`] for a request type.
macro_rules! rpc {
    ($req:ty => $resp:ty, $op:ident) => {
        impl $crate::msg::Rpc for $req {
            const OPCODE: $crate::Opcode = $crate::Opcode::$op;
            type Response = $resp;
        }
    };
}

pub mod attr;
pub mod data;
pub mod extent;
pub mod hello;
pub mod master;
pub mod meta;
pub mod name;
pub mod raft;
pub mod repair;
pub mod topology;

/// A request message with a fixed opcode and response type.
pub trait Rpc: Serialize + DeserializeOwned + Send + Sync + 'static {
    const OPCODE: Opcode;
    type Response: Serialize + DeserializeOwned + Send + 'static;
}

/// Encodes a message for a frame's `meta`.
///
/// # Panics
/// If `T`'s `Serialize` impl fails, which derived impls of sized data never do with postcard.
pub fn encode<T: Serialize>(msg: &T) -> Bytes {
    Bytes::from(postcard::to_allocvec(msg).expect("postcard encoding of a message cannot fail"))
}

/// Decodes a message; a peer sending garbage gets `InvalidArgument`, not a dropped connection.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ErrorCode> {
    postcard::from_bytes(bytes).map_err(|e| {
        let ty = std::any::type_name::<T>().rsplit("::").next().unwrap_or("message");
        ErrorCode::InvalidArgument(format!("malformed {ty}: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::hello::{Hello, HelloAck};
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let h = Hello { min_version: 1, max_version: 3, client: "test".into() };
        assert_eq!(decode::<Hello>(&encode(&h)).unwrap(), h);
    }

    #[test]
    fn garbage_is_invalid_argument() {
        match decode::<HelloAck>(&[0x05]) {
            Err(ErrorCode::InvalidArgument(s)) => {
                assert!(s.starts_with("malformed HelloAck"), "{s}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unit_responses_are_empty() {
        assert!(encode(&()).is_empty());
        decode::<()>(&[]).unwrap();
    }
}
