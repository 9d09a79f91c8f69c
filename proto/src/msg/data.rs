//! Datanode protocol (opcodes `DATA_*`): extents, the objects that hold file data.
//!
//! First cut: the datanode issue may extend these messages (append fields only); the opcodes are
//! stable. File bytes never go through postcard: a write carries them in the frame's `data`, and a read
//! returns them there (use `call_with_data`). Mutations carry an [`OpId`] so a retry is applied once.

use serde::{Deserialize, Serialize};

use crate::ids::{ExtentId, OpId, PartitionId};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateExtent {
    pub partition: PartitionId,
    pub op: OpId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateExtentResp {
    pub extent: ExtentId,
}
rpc!(CreateExtent => CreateExtentResp, DATA_CREATE_EXTENT);

/// Writes the frame's data at `offset` of the extent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Write {
    pub partition: PartitionId,
    pub op: OpId,
    pub extent: ExtentId,
    pub offset: u64,
}
rpc!(Write => (), DATA_WRITE);

/// Reads up to `len` bytes at `offset`; the reply's data is shorter at the end of the extent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Read {
    pub partition: PartitionId,
    pub extent: ExtentId,
    pub offset: u64,
    pub len: u32,
}
rpc!(Read => (), DATA_READ);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truncate {
    pub partition: PartitionId,
    pub op: OpId,
    pub extent: ExtentId,
    pub size: u64,
}
rpc!(Truncate => (), DATA_TRUNCATE);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delete {
    pub partition: PartitionId,
    pub op: OpId,
    pub extent: ExtentId,
}
rpc!(Delete => (), DATA_DELETE_EXTENT);

/// Frees `len` bytes at `offset`, which then read as zeros.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PunchHole {
    pub partition: PartitionId,
    pub op: OpId,
    pub extent: ExtentId,
    pub offset: u64,
    pub len: u64,
}
rpc!(PunchHole => (), DATA_PUNCH_HOLE);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ClientId, RequestId};
    use crate::msg::{decode, encode, Rpc};
    use crate::Opcode;

    #[test]
    fn round_trip_and_opcodes() {
        let w = Write {
            partition: PartitionId(4),
            op: OpId::new(ClientId(1), RequestId(1)),
            extent: ExtentId(8),
            offset: 1 << 20,
        };
        assert_eq!(decode::<Write>(&encode(&w)).unwrap(), w);
        assert_eq!(Write::OPCODE, Opcode::DATA_WRITE);
        assert_eq!(Read::OPCODE, Opcode::DATA_READ);
        assert_eq!(Delete::OPCODE, Opcode::DATA_DELETE_EXTENT);
    }
}
