//! The binary frame every Ferrum TCP connection carries, and its `tokio_util` codec.
//!
//! Header, 28 bytes, big-endian:
//!
//! | bytes | field                                                  |
//! |-------|--------------------------------------------------------|
//! | 0..2  | magic `0xFE22`                                         |
//! | 2     | frame format version (1)                               |
//! | 3     | kind: 1 request, 2 response, 3 error                   |
//! | 4..6  | opcode                                                 |
//! | 6..8  | flags (0; ignored on read, for compatible hints only)  |
//! | 8..16 | request id (matches a reply to its request)            |
//! | 16..20| meta length                                            |
//! | 20..24| data length                                            |
//! | 24..28| CRC-32 of bytes 0..24, then meta, then data            |
//!
//! `meta` is a small postcard message; `data` is raw payload (file contents, Raft entries) kept apart so it
//! is never re-encoded: decoding hands out slices of the read buffer without copying.

use std::io;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::ErrorCode;
use crate::opcode::Opcode;

pub const MAGIC: u16 = 0xFE22;
pub const FORMAT_VERSION: u8 = 1;
pub const HEADER_LEN: usize = 28;
/// Default bound on a whole frame (header + meta + data).
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameKind {
    Request = 1,
    Response = 2,
    /// A reply whose meta is a postcard [`ErrorCode`].
    Error = 3,
}

impl FrameKind {
    fn from_u8(b: u8) -> Option<FrameKind> {
        match b {
            1 => Some(FrameKind::Request),
            2 => Some(FrameKind::Response),
            3 => Some(FrameKind::Error),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub kind: FrameKind,
    pub opcode: Opcode,
    /// Transport correlation id, unique per connection (not the idempotency [`crate::RequestId`]).
    pub request_id: u64,
    pub meta: Bytes,
    pub data: Bytes,
}

impl Frame {
    pub fn request(opcode: Opcode, request_id: u64, meta: Bytes, data: Bytes) -> Frame {
        Frame { kind: FrameKind::Request, opcode, request_id, meta, data }
    }

    pub fn response(opcode: Opcode, request_id: u64, meta: Bytes, data: Bytes) -> Frame {
        Frame { kind: FrameKind::Response, opcode, request_id, meta, data }
    }

    pub fn error(opcode: Opcode, request_id: u64, code: &ErrorCode) -> Frame {
        Frame { kind: FrameKind::Error, opcode, request_id, meta: crate::msg::encode(code), data: Bytes::new() }
    }

    /// Size on the wire, header included.
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + self.meta.len() + self.data.len()
    }
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum FrameError {
    #[error("bad magic {0:#06x}")]
    BadMagic(u16),
    #[error("unsupported frame format version {0}")]
    BadVersion(u8),
    #[error("unknown frame kind {0}")]
    BadKind(u8),
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: u64, max: u64 },
    #[error("checksum mismatch: header says {expected:#010x}, content gives {actual:#010x}")]
    Checksum { expected: u32, actual: u32 },
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// Shared so that the error stays `Clone` (a pool hands one failure to every waiter).
    #[error("i/o error: {0}")]
    Io(Arc<io::Error>),
}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> Self {
        FrameError::Io(Arc::new(e))
    }
}

/// Encodes and decodes [`Frame`]s, refusing any frame longer than `max_frame` bytes.
#[derive(Debug)]
pub struct FrameCodec {
    max_frame: usize,
    /// Header of the frame whose body is still arriving.
    pending: Option<Header>,
}

#[derive(Debug)]
struct Header {
    kind: FrameKind,
    opcode: Opcode,
    request_id: u64,
    meta_len: usize,
    data_len: usize,
    crc: u32,
    /// CRC state after the first 24 header bytes.
    hasher: crc32fast::Hasher,
}

impl FrameCodec {
    pub fn new(max_frame: usize) -> FrameCodec {
        FrameCodec { max_frame, pending: None }
    }

    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    fn check_len(&self, meta_len: u64, data_len: u64) -> Result<(), FrameError> {
        let len = HEADER_LEN as u64 + meta_len + data_len;
        let fits_u32 = meta_len <= u64::from(u32::MAX) && data_len <= u64::from(u32::MAX);
        if len > self.max_frame as u64 || !fits_u32 {
            return Err(FrameError::TooLarge { len, max: self.max_frame as u64 });
        }
        Ok(())
    }

    /// Parses and validates a header, including its lengths, before any of the body is buffered.
    fn parse_header(&self, mut h: &[u8]) -> Result<Header, FrameError> {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&h[..HEADER_LEN - 4]);
        let magic = h.get_u16();
        if magic != MAGIC {
            return Err(FrameError::BadMagic(magic));
        }
        let version = h.get_u8();
        if version != FORMAT_VERSION {
            return Err(FrameError::BadVersion(version));
        }
        let kind_byte = h.get_u8();
        let kind = FrameKind::from_u8(kind_byte).ok_or(FrameError::BadKind(kind_byte))?;
        let opcode = Opcode(h.get_u16());
        let _flags = h.get_u16();
        let request_id = h.get_u64();
        let meta_len = h.get_u32();
        let data_len = h.get_u32();
        let crc = h.get_u32();
        self.check_len(meta_len.into(), data_len.into())?;
        Ok(Header { kind, opcode, request_id, meta_len: meta_len as usize, data_len: data_len as usize, crc, hasher })
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new(DEFAULT_MAX_FRAME)
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if self.pending.is_none() {
            if src.len() < HEADER_LEN {
                return Ok(None);
            }
            let header = self.parse_header(&src[..HEADER_LEN])?;
            src.advance(HEADER_LEN);
            // Grow the buffer once for the whole body rather than doubling while it streams in.
            src.reserve((header.meta_len + header.data_len).saturating_sub(src.len()));
            self.pending = Some(header);
        }
        let body_len = self.pending.as_ref().map_or(0, |h| h.meta_len + h.data_len);
        if src.len() < body_len {
            return Ok(None);
        }
        let Some(mut h) = self.pending.take() else {
            return Ok(None);
        };
        // Zero copy: both parts are views into the read buffer.
        let meta = src.split_to(h.meta_len).freeze();
        let data = src.split_to(h.data_len).freeze();
        h.hasher.update(&meta);
        h.hasher.update(&data);
        let actual = h.hasher.finalize();
        if actual != h.crc {
            return Err(FrameError::Checksum { expected: h.crc, actual });
        }
        Ok(Some(Frame { kind: h.kind, opcode: h.opcode, request_id: h.request_id, meta, data }))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() && self.pending.is_none() => Ok(None),
            None => Err(FrameError::Truncated),
        }
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, f: Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        dst.reserve(f.wire_len());
        self.encode_header(&f, dst)?;
        dst.extend_from_slice(&f.meta);
        dst.extend_from_slice(&f.data);
        Ok(())
    }
}

impl FrameCodec {
    /// Appends `f`'s header (with the CRC over meta and data) to `dst`, not its meta and data: a sender
    /// of a large frame writes those straight from their buffers (see `rpc::writer`).
    pub fn encode_header(&self, f: &Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        self.check_len(f.meta.len() as u64, f.data.len() as u64)?;
        dst.reserve(HEADER_LEN);
        let start = dst.len();
        dst.put_u16(MAGIC);
        dst.put_u8(FORMAT_VERSION);
        dst.put_u8(f.kind as u8);
        dst.put_u16(f.opcode.0);
        dst.put_u16(0);
        dst.put_u64(f.request_id);
        dst.put_u32(f.meta.len() as u32);
        dst.put_u32(f.data.len() as u32);
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&dst[start..]);
        hasher.update(&f.meta);
        hasher.update(&f.data);
        dst.put_u32(hasher.finalize());
        Ok(())
    }
}

#[cfg(test)]
mod tests;
