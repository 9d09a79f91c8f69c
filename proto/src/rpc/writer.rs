//! The write half of a connection, shared by every task that sends on it.
//!
//! A sender queues its frame, then takes the write half; whoever holds it writes every frame queued so
//! far and flushes once. Frames never interleave, a burst from many tasks still leaves in one write,
//! and a lone frame goes out from the sending task itself: no hand-over to a writer task, which on
//! loopback costs more than the write (two wake-ups per message, one each way). A large frame (a Raft
//! entry of file data, a read's reply) is not copied into the write buffer: its header goes through
//! the buffer, its meta and data are written from their own `Bytes`, all in one vectored write.

use std::sync::Mutex;

use bytes::Buf;
use futures_util::SinkExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_util::codec::FramedWrite;

use crate::frame::{Frame, FrameCodec, FrameError};

/// Frames with at least this many bytes of meta and data are written without copying them.
const DIRECT: usize = 64 << 10;

pub(crate) struct FrameSender<W> {
    queue: Mutex<Vec<Frame>>,
    out: tokio::sync::Mutex<FramedWrite<W, FrameCodec>>,
}

impl<W: AsyncWrite + Unpin> FrameSender<W> {
    pub(crate) fn new(out: FramedWrite<W, FrameCodec>) -> Self {
        FrameSender { queue: Mutex::new(Vec::new()), out: tokio::sync::Mutex::new(out) }
    }

    /// Returns once `frame` is written (by this task or one that held the write half before it). An
    /// error means the connection is unusable: the caller closes it, which fails every call waiting on
    /// it, including those whose frames were in the failed write.
    pub(crate) async fn send(&self, frame: Frame) -> Result<(), FrameError> {
        self.queue.lock().expect("send queue lock").push(frame);
        let mut out = self.out.lock().await;
        let batch = std::mem::take(&mut *self.queue.lock().expect("send queue lock"));
        if batch.is_empty() {
            return Ok(());
        }
        for frame in batch {
            if frame.meta.len() + frame.data.len() < DIRECT {
                out.feed(frame).await?;
                continue;
            }
            let mut head = bytes::BytesMut::new();
            out.encoder().encode_header(&frame, &mut head)?;
            out.write_buffer_mut().extend_from_slice(&head);
            // The frames buffered before it, its header, meta and data: one vectored write (`writev`),
            // so the peer does not wake up for a header alone.
            let pending = out.write_buffer_mut().split().freeze();
            let mut all = pending.chain(frame.meta).chain(frame.data);
            out.get_mut().write_all_buf(&mut all).await?;
        }
        out.flush().await
    }

    /// Flushes and shuts the write half down.
    pub(crate) async fn close(&self) -> Result<(), FrameError> {
        self.out.lock().await.close().await
    }
}
