//! The one task per connection that writes frames, so replies and requests from many tasks never
//! interleave on the socket.

use futures_util::SinkExt;
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio_util::codec::FramedWrite;

use crate::frame::{Frame, FrameCodec, FrameError};

/// Writes frames until every sender is gone (then flushes and shuts the write half down) or a write
/// fails. Frames already queued are coalesced into one flush.
pub(crate) async fn write_frames<W: AsyncWrite + Unpin>(
    mut out: FramedWrite<W, FrameCodec>,
    mut rx: mpsc::Receiver<Frame>,
) -> Result<(), FrameError> {
    while let Some(frame) = rx.recv().await {
        out.feed(frame).await?;
        while let Ok(frame) = rx.try_recv() {
            out.feed(frame).await?;
        }
        out.flush().await?;
    }
    out.close().await
}
