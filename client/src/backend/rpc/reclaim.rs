//! Releasing file data nobody references any more.
//!
//! Metanodes queue the extent pieces that evictions, truncates and overwrites freed, but cannot reach
//! the datanodes themselves: the client drains the queues (`FreedList`), releases the pieces on the
//! datanodes, and acknowledges (`FreedAck`). A piece of an evicted inode takes its whole extent with it
//! (`Delete`): this client never shares an extent between files, so nothing else points into it. Any
//! other piece has its byte range punched. Releasing twice is harmless, so several clients draining
//! the same queue, or a crash between release and acknowledgement, only repeat work.

use std::sync::Weak;
use std::time::Duration;

use bytes::Bytes;
use ferrum_proto::msg::data::{Delete, PunchHole};
use ferrum_proto::msg::meta::{FreedAck, FreedList, FreedPiece};
use ferrum_proto::ErrorCode;
use futures_util::future::try_join_all;

use super::cluster::Cluster;

/// Pieces fetched per `FreedList` call.
const BATCH: u32 = 256;

pub fn spawn_reclaimer(me: Weak<Cluster>, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(c) = me.upgrade() else { return };
            match reclaim(&c).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(volume = %c.volume(), pieces = n, "released freed file data"),
                Err(e) => {
                    tracing::warn!(volume = %c.volume(), error = %e, "releasing freed file data failed; will retry")
                }
            }
        }
    });
}

/// Drains every meta partition's queue once; returns how many pieces were released.
pub async fn reclaim(c: &Cluster) -> Result<usize, ErrorCode> {
    let mut released = 0;
    for (partition, first) in c.meta_partitions() {
        loop {
            let list = c.call_meta(first, |_| FreedList { partition, limit: BATCH }).await?;
            let Some(upto) = list.pieces.iter().map(|p| p.seq).max() else { break };
            try_join_all(list.pieces.iter().map(|p| release(c, p))).await?;
            let op = c.ops.next();
            c.call_meta(first, |_| FreedAck { partition, op, upto }).await?;
            released += list.pieces.len();
            if list.pieces.len() < BATCH as usize {
                break;
            }
        }
    }
    Ok(released)
}

async fn release(c: &Cluster, piece: &FreedPiece) -> Result<(), ErrorCode> {
    let k = &piece.extent;
    let op = c.ops.next();
    let result = if piece.inode_evicted {
        c.call_data(k.partition, &Delete { partition: k.partition, op, extent: k.extent }, Bytes::new()).await
    } else {
        let req = PunchHole { partition: k.partition, op, extent: k.extent, offset: k.extent_offset, len: k.len };
        c.call_data(k.partition, &req, Bytes::new()).await
    };
    match result {
        // Already deleted (by us, another client, or with its partition): nothing left to release.
        Ok(_) | Err(ErrorCode::NotFound) | Err(ErrorCode::PartitionNotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}
