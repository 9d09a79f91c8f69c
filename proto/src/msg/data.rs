//! Datanode protocol (opcodes `DATA_*`): extents, the objects that hold file data.
//!
//! File bytes never go through postcard: a write carries them in the frame's `data`, and a read
//! returns them there (use `call_with_data`). Mutations carry an [`OpId`] so a retry is applied once
//! (the datanode remembers the outcome of roughly the last million mutations of a partition).
//!
//! Semantics every client can rely on:
//! - Mutations (`CreateExtent`, `Write`, `Truncate`, `Delete`, `PunchHole`) go to the partition's Raft
//!   leader; a follower answers `NotLeader { leader }`. `Ok` means a majority of the replicas
//!   persisted the mutation and the leader applied it: it survives the crash of any minority.
//! - `Read` and `StatExtent` go to the leader too and see every acknowledged mutation.
//! - An extent is a sparse byte array: ranges never written read as zeros; a write past the end
//!   extends it (the gap reads as zeros). A single write carries at most [`MAX_WRITE`] bytes, a single
//!   read asks for at most [`MAX_READ`].
//! - Errors: `PartitionNotFound` (not hosted here), `NotFound` (no such extent), `NoSpace` (the
//!   partition is full and read-only: write elsewhere; reads, truncates, deletes and punches still
//!   work), `Checksum` (every replica's copy of a block failed its CRC; never returned as data),
//!   `FileTooBig` (offset past [`MAX_EXTENT_SIZE`]), `InvalidArgument`.

use serde::{Deserialize, Serialize};

use crate::ids::{ExtentId, NodeId, OpId, PartitionId};

/// Largest payload of one [`Write`]; larger writes are split by the client. A write is one Raft log
/// entry, and several entries travel in one replication message that must stay well under the frame
/// limit and arrive within the Raft heartbeat interval.
pub const MAX_WRITE: usize = 4 << 20;
/// Largest `len` of one [`Read`].
pub const MAX_READ: u32 = 16 << 20;
/// Largest extent size (offset + length of any write, truncate size).
pub const MAX_EXTENT_SIZE: u64 = 1 << 40;

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

/// Replica to replica (and tools): this replica's own copy of `count` whole CRC blocks of an extent
/// from `first_block` on, without a leader check, each with the version it was written at. Used to
/// repair a block whose CRC failed from a healthy replica holding the same version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadBlocks {
    pub partition: PartitionId,
    pub extent: ExtentId,
    pub first_block: u64,
    pub count: u32,
}

/// One block as a replica holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockCopy {
    /// Raft log index of the mutation that last wrote the block; 0 for a hole (all zeros).
    pub index: u64,
    /// CRC32 of the block's bytes (its length is `min(block_size, size - block start)`).
    pub crc: u32,
    /// The replica could not verify this copy against an independent CRC (see the datanode's
    /// `extent` module); it is offered for a peer to confirm, not as trusted data.
    pub suspect: bool,
    /// False when this replica's copy failed its own CRC check: no bytes for it in the reply's data.
    pub valid: bool,
}

/// The reply's data is the concatenated bytes of the `valid` blocks, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadBlocksResp {
    pub block_size: u32,
    /// The extent's size on this replica.
    pub size: u64,
    /// The replica's applied Raft index when it read the blocks.
    pub applied: u64,
    /// One per block that exists (fewer than `count` at the end of the extent).
    pub blocks: Vec<BlockCopy>,
}
rpc!(ReadBlocks => ReadBlocksResp, DATA_READ_BLOCKS);

/// Any replica: its view of a partition (for the master, tools and tests; no leader check).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionStatus {
    pub partition: PartitionId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionStatusResp {
    pub partition: PartitionId,
    /// The leader this replica knows of.
    pub leader: Option<NodeId>,
    pub term: u64,
    /// Last Raft log index applied on this replica.
    pub applied: u64,
    /// Sum of the sizes of the partition's extents.
    pub used_bytes: u64,
    pub extents: u64,
    /// True when the disk is (nearly) full: writes get `NoSpace`.
    pub read_only: bool,
    pub members: Vec<NodeId>,
}
rpc!(PartitionStatus => PartitionStatusResp, DATA_PARTITION_STATUS);

/// Leader: returns once a majority of the partition's replicas has fsynced every write acknowledged
/// before the call (what a client's `fsync` needs; plain writes are acknowledged from memory).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncPartition {
    pub partition: PartitionId,
}
rpc!(SyncPartition => (), DATA_SYNC);

/// Leader: the current size of an extent (e.g. where to append after a client restart).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatExtent {
    pub partition: PartitionId,
    pub extent: ExtentId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatExtentResp {
    pub size: u64,
}
rpc!(StatExtent => StatExtentResp, DATA_STAT_EXTENT);

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
        assert_eq!(ReadBlocks::OPCODE, Opcode::DATA_READ_BLOCKS);
        assert_eq!(PartitionStatus::OPCODE, Opcode::DATA_PARTITION_STATUS);
        assert_eq!(StatExtent::OPCODE, Opcode::DATA_STAT_EXTENT);
    }
}
