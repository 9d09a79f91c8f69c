//! Raft messages between the replicas of a group (opcodes `RAFT_*`).
//!
//! Every group of an instance shares one connection to a peer, so each message names its group in a
//! [`RaftHeader`] (the frame's meta). The openraft request itself travels postcard-encoded in the frame's
//! data, and its response (or openraft error) postcard-encoded in the reply's meta; proto does not
//! depend on openraft, the Raft store encodes both.

use serde::{Deserialize, Serialize};

use crate::ids::GroupId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftHeader {
    pub group: GroupId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let h = RaftHeader { group: GroupId(77) };
        assert_eq!(crate::msg::decode::<RaftHeader>(&crate::msg::encode(&h)).unwrap(), h);
    }
}
