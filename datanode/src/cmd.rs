//! The commands a data partition replicates through Raft, and their replies.
//!
//! Encoding: a version byte, then postcard. A write's bytes are the last field, so encoding copies
//! them once (frame buffer → log entry) and `apply` borrows them from the entry without a copy.

use bytes::Bytes;
use ferrum_proto::{ErrorCode, ExtentId, OpId};
use serde::{Deserialize, Serialize};

/// Version of the command encoding; persisted in every log entry.
pub const CMD_VERSION: u8 = 1;

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataCmd<'a> {
    /// Creates an extent whose id is the entry's log index: unique, and the same on every replica.
    Create {
        op: OpId,
    },
    Write {
        op: OpId,
        extent: ExtentId,
        offset: u64,
        /// Serialized as one byte string (serde would otherwise emit a sequence, one call per byte);
        /// deserialized borrowed from the log entry.
        #[serde(borrow, serialize_with = "as_bytes")]
        data: &'a [u8],
    },
    Truncate {
        op: OpId,
        extent: ExtentId,
        size: u64,
    },
    Delete {
        op: OpId,
        extent: ExtentId,
    },
    PunchHole {
        op: OpId,
        extent: ExtentId,
        offset: u64,
        len: u64,
    },
    /// Client writes that arrived while earlier ones were being replicated, in one entry (up to
    /// `MAX_WRITE` bytes): fewer, larger entries keep small writes from being bound by per-entry
    /// costs. Replied to with one [`CmdReply`] per write ([`BatchReply`]).
    Batch(#[serde(borrow)] Vec<WriteCmd<'a>>),
}

/// One write of a [`DataCmd::Batch`].
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteCmd<'a> {
    pub op: OpId,
    pub extent: ExtentId,
    pub offset: u64,
    #[serde(borrow, serialize_with = "as_bytes")]
    pub data: &'a [u8],
}

impl<'a> WriteCmd<'a> {
    pub fn as_cmd(&self) -> DataCmd<'a> {
        DataCmd::Write { op: self.op, extent: self.extent, offset: self.offset, data: self.data }
    }
}

impl DataCmd<'_> {
    /// The op of a single mutation; `None` for a batch (each of its writes has its own).
    pub fn op(&self) -> Option<OpId> {
        match self {
            DataCmd::Create { op }
            | DataCmd::Write { op, .. }
            | DataCmd::Truncate { op, .. }
            | DataCmd::Delete { op, .. }
            | DataCmd::PunchHole { op, .. } => Some(*op),
            DataCmd::Batch(_) => None,
        }
    }

    /// Name for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            DataCmd::Create { .. } => "create",
            DataCmd::Write { .. } => "write",
            DataCmd::Truncate { .. } => "truncate",
            DataCmd::Delete { .. } => "delete",
            DataCmd::PunchHole { .. } => "punch",
            DataCmd::Batch(_) => "batch",
        }
    }
}

fn as_bytes<S: serde::Serializer>(data: &&[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(data)
}

/// What applying a command returns (the same on every replica).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CmdOk {
    pub extent: ExtentId,
    /// The extent's size after the command (0 after a delete).
    pub size: u64,
}

pub type CmdReply = Result<CmdOk, ErrorCode>;

/// The reply to a [`DataCmd::Batch`]: one per write, in order.
pub type BatchReply = Vec<CmdReply>;

pub fn encode(cmd: &DataCmd<'_>) -> Bytes {
    let extra = match cmd {
        DataCmd::Write { data, .. } => data.len(),
        DataCmd::Batch(w) => w.iter().map(|w| w.data.len() + 32).sum(),
        _ => 0,
    };
    let mut v = Vec::with_capacity(64 + extra);
    v.push(CMD_VERSION);
    postcard::to_io(cmd, &mut v).expect("encoding into a Vec cannot fail");
    Bytes::from(v)
}

pub fn decode(b: &[u8]) -> Result<DataCmd<'_>, ErrorCode> {
    match b.split_first() {
        Some((&CMD_VERSION, rest)) => {
            postcard::from_bytes(rest).map_err(|e| ErrorCode::InvalidArgument(format!("malformed data command: {e}")))
        }
        Some((v, _)) => Err(ErrorCode::InvalidArgument(format!("data command version {v}, expected {CMD_VERSION}"))),
        None => Err(ErrorCode::InvalidArgument("empty data command".into())),
    }
}

pub fn encode_reply(r: &CmdReply) -> Bytes {
    ferrum_proto::msg::encode(r)
}

pub fn decode_reply(b: &[u8]) -> CmdReply {
    ferrum_proto::msg::decode::<CmdReply>(b)?
}

pub fn decode_batch_reply(b: &[u8]) -> Result<BatchReply, ErrorCode> {
    ferrum_proto::msg::decode::<BatchReply>(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrum_proto::{ClientId, RequestId};

    #[test]
    fn write_round_trips_and_borrows() {
        let op = OpId::new(ClientId(1), RequestId(2));
        let data = vec![7u8; 100_000];
        let enc = encode(&DataCmd::Write { op, extent: ExtentId(5), offset: 9, data: &data });
        assert!(enc.len() < data.len() + 64);
        let dec = decode(&enc).unwrap();
        let DataCmd::Write { data: d, .. } = &dec else { panic!("{dec:?}") };
        // Borrowed from the encoded buffer, not copied.
        assert!(enc.as_ptr_range().contains(&d.as_ptr()));
        assert_eq!(dec, DataCmd::Write { op, extent: ExtentId(5), offset: 9, data: &data });
        assert_eq!(dec.op(), Some(op));
    }

    #[test]
    fn batch_round_trips() {
        let op = |n| OpId::new(ClientId(1), RequestId(n));
        let ws = vec![
            WriteCmd { op: op(1), extent: ExtentId(2), offset: 0, data: b"abc" },
            WriteCmd { op: op(2), extent: ExtentId(3), offset: 7, data: b"" },
        ];
        let enc = encode(&DataCmd::Batch(ws));
        let DataCmd::Batch(dec) = decode(&enc).unwrap() else { panic!() };
        assert_eq!(dec.len(), 2);
        assert_eq!(dec[0].as_cmd(), DataCmd::Write { op: op(1), extent: ExtentId(2), offset: 0, data: b"abc" });
        assert_eq!(dec[1].offset, 7);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(decode(&[]).is_err());
        assert!(decode(&[9, 1, 2]).is_err());
        assert!(decode(&[CMD_VERSION, 200]).is_err());
        let r: CmdReply = Err(ErrorCode::NotFound);
        assert_eq!(decode_reply(&encode_reply(&r)), r);
    }
}
