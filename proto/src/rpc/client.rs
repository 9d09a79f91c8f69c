//! A multiplexed connection to one server.
//!
//! Many calls share one TCP connection: each gets a request id, parks a oneshot in the pending map, and
//! writes its frame (see [`FrameSender`]); the reader task routes each reply to its caller by id, in
//! whatever order replies come. When the connection dies every pending call fails with `Closed`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::error::ErrorCode;
use crate::frame::{Frame, FrameCodec, FrameError, FrameKind, DEFAULT_MAX_FRAME};
use crate::msg::{decode, encode, Rpc};
use crate::opcode::Opcode;
use crate::rpc::error::RpcError;
use crate::rpc::handler::Outgoing;
use crate::rpc::handshake;
use crate::rpc::writer::FrameSender;

#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// For the TCP connect, and again for the handshake.
    pub connect_timeout: Duration,
    /// For each call, from enqueueing the request to receiving the reply.
    pub request_timeout: Duration,
    /// Largest frame sent or accepted, header included.
    pub max_frame: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(30),
            max_frame: DEFAULT_MAX_FRAME,
        }
    }
}

/// A handle on one connection; clones share it. The connection closes when the last clone is dropped.
#[derive(Clone)]
pub struct RpcClient {
    shared: Arc<Shared>,
    /// Held only by handles: once all are dropped the connection is torn down.
    _handles: Arc<LastHandle>,
}

/// Closes the connection when the last [`RpcClient`] clone goes (the reader task keeps `Shared` alive).
struct LastHandle(Arc<Shared>);

impl Drop for LastHandle {
    fn drop(&mut self) {
        self.0.close();
    }
}

struct Shared {
    addr: String,
    version: u16,
    request_timeout: Duration,
    max_frame: usize,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<Frame>>>,
    /// Cancelled exactly when the connection is dead.
    closed: CancellationToken,
    sender: FrameSender<OwnedWriteHalf>,
}

impl Shared {
    fn register(&self, id: u64, tx: oneshot::Sender<Frame>) -> Result<(), RpcError> {
        let mut pending = self.pending.lock().expect("pending lock");
        // Checked under the lock that `close` drains under, so no call can slip in after the drain.
        if self.closed.is_cancelled() {
            return Err(RpcError::Closed);
        }
        pending.insert(id, tx);
        Ok(())
    }

    fn take(&self, id: u64) -> Option<oneshot::Sender<Frame>> {
        self.pending.lock().expect("pending lock").remove(&id)
    }

    /// Marks the connection dead and fails every pending call (their senders drop).
    fn close(&self) {
        self.closed.cancel();
        let drained = std::mem::take(&mut *self.pending.lock().expect("pending lock"));
        drop(drained);
    }
}

/// Removes a call's pending entry however the call ends (reply, timeout, or the caller giving up).
struct PendingGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared.take(self.id);
    }
}

impl RpcClient {
    /// Connects to `addr` (`host:port`) and performs the handshake.
    pub async fn connect(addr: &str, cfg: &ClientConfig) -> Result<RpcClient, RpcError> {
        let connect_err = |reason: String| RpcError::Connect { addr: addr.to_string(), reason };
        let stream = match tokio::time::timeout(cfg.connect_timeout, TcpStream::connect(addr)).await {
            Err(_) => return Err(connect_err(format!("timed out after {:?}", cfg.connect_timeout))),
            Ok(Err(e)) => return Err(connect_err(e.to_string())),
            Ok(Ok(s)) => s,
        };
        stream.set_nodelay(true).map_err(|e| connect_err(e.to_string()))?;
        let (rd, wr) = stream.into_split();
        let mut reader = FramedRead::new(rd, FrameCodec::new(cfg.max_frame));
        let mut writer = FramedWrite::new(wr, FrameCodec::new(cfg.max_frame));
        let ack = handshake::hello(&mut reader, &mut writer, cfg.connect_timeout).await?;
        debug!(addr, server = %ack.server, version = ack.version, "connected");

        let shared = Arc::new(Shared {
            addr: addr.to_string(),
            version: ack.version,
            request_timeout: cfg.request_timeout,
            max_frame: cfg.max_frame,
            next_id: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            closed: CancellationToken::new(),
            sender: FrameSender::new(writer),
        });
        tokio::spawn(read_replies(reader, shared.clone()));
        Ok(RpcClient { _handles: Arc::new(LastHandle(shared.clone())), shared })
    }

    /// Sends a request and waits for its reply; a remote error arrives as `RpcError::Remote`.
    pub async fn call_raw(&self, opcode: Opcode, meta: Bytes, data: Bytes) -> Result<Outgoing, RpcError> {
        let shared = &*self.shared;
        let frame = Frame::request(opcode, 0, meta, data);
        if frame.wire_len() > shared.max_frame {
            let (len, max) = (frame.wire_len() as u64, shared.max_frame as u64);
            return Err(RpcError::Frame(FrameError::TooLarge { len, max }));
        }
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply_tx, reply_rx) = oneshot::channel();
        shared.register(id, reply_tx)?;
        let _guard = PendingGuard { shared, id };
        let exchange = async {
            if let Err(e) = shared.sender.send(Frame { request_id: id, ..frame }).await {
                debug!(addr = %shared.addr, error = %e, "write failed, closing connection");
                shared.close();
                return Err(RpcError::Closed);
            }
            reply_rx.await.map_err(|_| RpcError::Closed)
        };
        let reply = tokio::time::timeout(shared.request_timeout, exchange).await.map_err(|_| RpcError::Timeout)??;
        match reply.kind {
            FrameKind::Response => Ok(Outgoing { meta: reply.meta, data: reply.data }),
            _ => Err(RpcError::Remote(decode::<ErrorCode>(&reply.meta).unwrap_or_else(|e| e))),
        }
    }

    /// A typed call without payload.
    pub async fn call<R: Rpc>(&self, req: &R) -> Result<R::Response, RpcError> {
        let out = self.call_raw(R::OPCODE, encode(req), Bytes::new()).await?;
        Ok(decode(&out.meta)?)
    }

    /// A typed call that sends `data` as the payload and returns the reply's payload.
    pub async fn call_with_data<R: Rpc>(&self, req: &R, data: Bytes) -> Result<(R::Response, Bytes), RpcError> {
        let out = self.call_raw(R::OPCODE, encode(req), data).await?;
        Ok((decode(&out.meta)?, out.data))
    }

    /// True once the connection is dead; it never comes back (the pool makes a new one).
    pub fn is_closed(&self) -> bool {
        self.shared.closed.is_cancelled()
    }

    /// Closes the connection now, failing calls in flight with `Closed`.
    pub fn close(&self) {
        self.shared.close();
    }

    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// The protocol version agreed at the handshake.
    pub fn version(&self) -> u16 {
        self.shared.version
    }

    #[cfg(test)]
    pub(crate) fn pending_calls(&self) -> usize {
        self.shared.pending.lock().expect("pending lock").len()
    }
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient").field("addr", &self.shared.addr).field("closed", &self.is_closed()).finish()
    }
}

/// Routes replies to their callers until the connection ends, then fails whatever is still pending.
async fn read_replies(mut reader: FramedRead<OwnedReadHalf, FrameCodec>, shared: Arc<Shared>) {
    let addr = &shared.addr;
    loop {
        let next = tokio::select! {
            _ = shared.closed.cancelled() => break,
            next = reader.next() => next,
        };
        match next {
            Some(Ok(frame)) if frame.kind == FrameKind::Request => {
                warn!(addr, "closing connection: server sent a request");
                break;
            }
            Some(Ok(frame)) => match shared.take(frame.request_id) {
                Some(tx) => {
                    let _ = tx.send(frame);
                }
                None => debug!(addr, id = frame.request_id, "reply to a call that gave up"),
            },
            Some(Err(e)) => {
                warn!(addr, error = %e, "closing connection: bad frame");
                break;
            }
            None => {
                debug!(addr, "server closed the connection");
                break;
            }
        }
    }
    shared.close();
    // Shut the write half down so the server sees the end now, not when the last handle goes (a sender
    // stuck on a full socket holds it: give up after a while, the handles' drop closes it then).
    let _ = tokio::time::timeout(Duration::from_secs(1), shared.sender.close()).await;
}
