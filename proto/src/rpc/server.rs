//! Accepts connections and serves each request in its own task.
//!
//! Per connection: the HELLO handshake, then a reader loop that spawns one task per request (at most
//! `max_inflight_per_conn` at once; beyond that the reader pauses and TCP pushes back on the client).
//! Each request's task writes its own reply (see `FrameSender`), in whatever order they complete,
//! tagged with the request id.
//! A bad frame closes only its own connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::error::ErrorCode;
use crate::frame::{Frame, FrameCodec, FrameKind, DEFAULT_MAX_FRAME};
use crate::rpc::handler::{Handler, Incoming, Outgoing};
use crate::rpc::handshake::{self, Refused};
use crate::rpc::writer::FrameSender;

#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Largest frame accepted or sent, header included.
    pub max_frame: usize,
    /// Requests of one connection handled at once.
    pub max_inflight_per_conn: usize,
    /// How long a new connection may take to say HELLO.
    pub handshake_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_frame: DEFAULT_MAX_FRAME,
            max_inflight_per_conn: 1024,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves `listener` until `shutdown` is cancelled, then closes every connection (dropping requests in
/// flight, as a crash would) and returns once all connection and request tasks are gone.
pub async fn serve<H: Handler>(listener: TcpListener, handler: Arc<H>, cfg: ServerConfig, shutdown: CancellationToken) {
    let tasks = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let conn = Connection {
                    peer,
                    handler: handler.clone(),
                    cfg: cfg.clone(),
                    cancel: shutdown.child_token(),
                    tasks: tasks.clone(),
                };
                tasks.spawn(conn.run(stream));
            }
            Err(e) => {
                // Typically out of file descriptors: back off instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        }
    }
    drop(listener);
    tasks.close();
    tasks.wait().await;
}

struct Connection<H> {
    peer: SocketAddr,
    handler: Arc<H>,
    cfg: ServerConfig,
    /// Cancelled on server shutdown or when this connection must close at once.
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl<H: Handler> Connection<H> {
    async fn run(self, stream: TcpStream) {
        let peer = self.peer;
        if let Err(e) = stream.set_nodelay(true) {
            debug!(%peer, error = %e, "set TCP_NODELAY failed");
        }
        let (rd, wr) = stream.into_split();
        let mut reader = FramedRead::new(rd, FrameCodec::new(self.cfg.max_frame));
        let mut writer = FramedWrite::new(wr, FrameCodec::new(self.cfg.max_frame));

        let handshake = handshake::accept(&mut reader, &mut writer, self.cfg.handshake_timeout);
        let refused = tokio::select! {
            _ = self.cancel.cancelled() => return,
            r = handshake => r.err(),
        };
        match refused {
            None => {}
            Some(Refused::Eof) => return debug!(%peer, "connection closed before the handshake"),
            Some(reason) => return warn!(%peer, %reason, "closing connection"),
        }

        let inflight = self.cfg.max_inflight_per_conn.max(1);
        let sender = Arc::new(FrameSender::new(writer));

        let permits = Arc::new(Semaphore::new(inflight));
        loop {
            let permit = tokio::select! {
                _ = self.cancel.cancelled() => break,
                p = permits.clone().acquire_owned() => p.expect("semaphore is never closed"),
            };
            let next = tokio::select! {
                _ = self.cancel.cancelled() => break,
                next = reader.next() => next,
            };
            match next {
                Some(Ok(frame)) if frame.kind == FrameKind::Request => {
                    self.spawn_request(frame, permit, sender.clone())
                }
                Some(Ok(frame)) => {
                    warn!(%peer, kind = ?frame.kind, "closing connection: client sent a reply frame");
                    self.cancel.cancel();
                    break;
                }
                Some(Err(e)) => {
                    warn!(%peer, error = %e, "closing connection: bad frame");
                    self.cancel.cancel();
                    break;
                }
                None => {
                    // The client is done sending: finish the requests in flight, then the writer closes.
                    debug!(%peer, "client closed the connection");
                    break;
                }
            }
        }
        // Replies of the requests still in flight go out first (each returns its permit when written).
        tokio::select! {
            _ = self.cancel.cancelled() => {}
            _ = permits.acquire_many(inflight as u32) => {
                if let Err(e) = sender.close().await {
                    debug!(%peer, error = %e, "closing the connection failed");
                }
            }
        }
    }

    fn spawn_request(&self, frame: Frame, permit: OwnedSemaphorePermit, sender: Arc<FrameSender<OwnedWriteHalf>>) {
        let handler = self.handler.clone();
        let cancel = self.cancel.clone();
        let max_frame = self.cfg.max_frame;
        let req = Incoming {
            opcode: frame.opcode,
            request_id: frame.request_id,
            meta: frame.meta,
            data: frame.data,
            peer: self.peer,
        };
        let req_peer = self.peer;
        self.tasks.spawn(async move {
            let (opcode, id) = (req.opcode, req.request_id);
            let result = tokio::select! {
                _ = cancel.cancelled() => return,
                r = handler.handle(req) => r,
            };
            let reply = match result {
                Ok(Outgoing { meta, data }) => {
                    let reply = Frame::response(opcode, id, meta, data);
                    if reply.wire_len() > max_frame {
                        let detail = format!("reply to {opcode} of {} bytes exceeds {max_frame}", reply.wire_len());
                        Frame::error(opcode, id, &ErrorCode::Internal(detail))
                    } else {
                        reply
                    }
                }
                Err(code) => Frame::error(opcode, id, &code),
            };
            if let Err(e) = sender.send(reply).await {
                debug!(peer = %req_peer, error = %e, "write failed, closing connection");
                cancel.cancel();
            }
            drop(permit);
        });
    }
}
