//! Typed identifiers.
//!
//! Every id that crosses a module or process boundary is a newtype over `u64`, so a `NodeId` can never be
//! passed where an `InodeId` is expected. On the wire they are plain integers (`serde(transparent)`).

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl $name {
            pub const fn new(v: u64) -> Self {
                Self(v)
            }

            pub const fn get(self) -> u64 {
                self.0
            }
        }

        impl From<u64> for $name {
            fn from(v: u64) -> Self {
                Self(v)
            }
        }

        impl From<$name> for u64 {
            fn from(id: $name) -> u64 {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

id_type!(
    /// A server process (master, metanode or datanode instance), assigned by the master at registration.
    NodeId
);
id_type!(
    /// A Raft group. Group 0 is the master's; every other group is a partition (see [`PartitionId`]).
    GroupId
);
id_type!(
    /// A meta or data partition. Each partition is its own Raft group with the same number, so partition
    /// ids start at 1 (0 is [`GroupId::MASTER`]).
    PartitionId
);
id_type!(
    /// A volume (one mountable filesystem).
    VolumeId
);
id_type!(
    /// An inode within a volume.
    InodeId
);
id_type!(
    /// An extent (a file-data object) within a data partition.
    ExtentId
);
id_type!(
    /// A client process (a mount), assigned so that its retried requests can be recognised.
    ClientId
);
id_type!(
    /// A client's sequence number for one logical operation; retries reuse it (see [`OpId`]).
    RequestId
);

impl GroupId {
    /// The master's own Raft group.
    pub const MASTER: GroupId = GroupId(0);
}

impl InodeId {
    /// The root directory of every volume.
    pub const ROOT: InodeId = InodeId(1);
}

impl From<PartitionId> for GroupId {
    fn from(p: PartitionId) -> GroupId {
        GroupId(p.0)
    }
}

/// Names one logical mutation across retries: a server that has applied `(client, request)` answers a
/// retry with the first outcome instead of applying it twice.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct OpId {
    pub client: ClientId,
    pub request: RequestId,
}

impl OpId {
    pub const fn new(client: ClientId, request: RequestId) -> Self {
        Self { client, request }
    }
}

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.client, self.request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_integers_on_the_wire() {
        let bytes = postcard::to_allocvec(&InodeId(300)).unwrap();
        assert_eq!(bytes, postcard::to_allocvec(&300u64).unwrap());
        assert_eq!(postcard::from_bytes::<InodeId>(&bytes).unwrap(), InodeId(300));
    }

    #[test]
    fn conversions_and_display() {
        assert_eq!(NodeId::from(7).get(), 7);
        assert_eq!(u64::from(ExtentId::new(9)), 9);
        assert_eq!(GroupId::from(PartitionId(5)), GroupId(5));
        assert_eq!(GroupId::MASTER.get(), 0);
        assert_eq!(InodeId::ROOT.get(), 1);
        assert_eq!(VolumeId(42).to_string(), "42");
        assert_eq!(OpId::new(ClientId(3), RequestId(8)).to_string(), "3/8");
    }

    #[test]
    fn ids_order_by_value() {
        let mut v = vec![RequestId(3), RequestId(1), RequestId(2)];
        v.sort();
        assert_eq!(v, vec![RequestId(1), RequestId(2), RequestId(3)]);
    }
}
