//! The HELLO exchange that opens every connection, so that peers of incompatible versions fail loudly
//! at connect time instead of misreading each other's messages later.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::error::ErrorCode;
use crate::frame::{Frame, FrameCodec, FrameError, FrameKind};
use crate::msg::hello::{Hello, HelloAck, AGENT, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
use crate::msg::{decode, encode};
use crate::opcode::Opcode;
use crate::rpc::error::RpcError;

/// Why a server turned a connection away before serving it.
#[derive(Debug)]
pub(crate) enum Refused {
    Frame(FrameError),
    Eof,
    Timeout,
    /// We told the peer why (an Error frame) and close.
    Rejected(ErrorCode),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Frame(e) => write!(f, "bad frame during handshake: {e}"),
            Refused::Eof => f.write_str("closed before the handshake"),
            Refused::Timeout => f.write_str("no HELLO in time"),
            Refused::Rejected(code) => write!(f, "handshake rejected: {code}"),
        }
    }
}

/// Server side: the first frame must be a HELLO whose version range overlaps ours. Returns the agreed
/// version; on a refusal the peer has been told why when possible.
pub(crate) async fn accept<R, W>(
    reader: &mut FramedRead<R, FrameCodec>,
    writer: &mut FramedWrite<W, FrameCodec>,
    timeout: Duration,
) -> Result<u16, Refused>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let first = match tokio::time::timeout(timeout, reader.next()).await {
        Err(_) => return Err(Refused::Timeout),
        Ok(None) => return Err(Refused::Eof),
        Ok(Some(Err(e))) => return Err(Refused::Frame(e)),
        Ok(Some(Ok(frame))) => frame,
    };
    let agreed = if first.kind == FrameKind::Request && first.opcode == Opcode::HELLO {
        decode::<Hello>(&first.meta).and_then(|h| h.negotiate())
    } else {
        // A peer that does not say HELLO first predates the handshake, or is not a Ferrum peer at all.
        Err(ErrorCode::VersionMismatch { ours: PROTOCOL_VERSION, theirs_min: 0, theirs_max: 0 })
    };
    match agreed {
        Ok(version) => {
            let ack = encode(&HelloAck { version, server: AGENT.to_string() });
            let reply = Frame::response(Opcode::HELLO, first.request_id, ack, Bytes::new());
            writer.send(reply).await.map_err(Refused::Frame)?;
            Ok(version)
        }
        Err(code) => {
            // Best effort: the peer may already be gone.
            let _ =
                tokio::time::timeout(timeout, writer.send(Frame::error(first.opcode, first.request_id, &code))).await;
            Err(Refused::Rejected(code))
        }
    }
}

/// Client side: say HELLO and wait for the server's choice of version.
pub(crate) async fn hello<R, W>(
    reader: &mut FramedRead<R, FrameCodec>,
    writer: &mut FramedWrite<W, FrameCodec>,
    timeout: Duration,
) -> Result<HelloAck, RpcError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let exchange = async {
        writer.send(Frame::request(Opcode::HELLO, 0, encode(&Hello::ours()), Bytes::new())).await?;
        reader.next().await.transpose().map_err(RpcError::from)
    };
    let reply = match tokio::time::timeout(timeout, exchange).await {
        Err(_) => return Err(RpcError::Handshake(format!("no reply to HELLO within {timeout:?}"))),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(None)) => return Err(RpcError::Handshake("connection closed by the server".into())),
        Ok(Ok(Some(frame))) => frame,
    };
    if reply.opcode != Opcode::HELLO || reply.request_id != 0 {
        return Err(RpcError::Handshake(format!("unexpected reply {} #{}", reply.opcode, reply.request_id)));
    }
    match reply.kind {
        FrameKind::Response => {
            let ack: HelloAck = decode(&reply.meta).map_err(|e| RpcError::Handshake(e.to_string()))?;
            if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&ack.version) {
                return Err(RpcError::Handshake(format!("server chose version {} we do not speak", ack.version)));
            }
            Ok(ack)
        }
        FrameKind::Error => Err(RpcError::Remote(decode::<ErrorCode>(&reply.meta).unwrap_or_else(|e| e))),
        FrameKind::Request => Err(RpcError::Handshake("server sent a request".into())),
    }
}
