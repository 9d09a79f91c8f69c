//! Ferrum's wire protocol: typed ids, error codes, opcodes, the binary frame, typed messages, and the
//! RPC transport every service and the client build on.

pub mod error;
pub mod frame;
pub mod ids;
pub mod msg;
pub mod opcode;
pub mod rpc;

pub use error::{ErrorCode, LeaderHint};
pub use frame::{Frame, FrameCodec, FrameError, FrameKind};
pub use ids::{ClientId, ExtentId, GroupId, InodeId, NodeId, OpId, PartitionId, RequestId, VolumeId};
pub use msg::Rpc;
pub use opcode::Opcode;
