//! Extents created ahead of need. Creating an extent is a Raft write on a data partition: for a small
//! file it would be one of four round trips on the way to `close`. The pool keeps a few ready, refilled
//! in the background, so a new file's first write-back starts at once.
//!
//! Cost: at unmount up to [`TARGET`] empty extents stay allocated (no data, a few hundred bytes each).
//! An extent whose partition stopped being writable (full, closed, gone) is dropped, never handed out.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ferrum_proto::msg::data::CreateExtent;
use ferrum_proto::ErrorCode;
use futures_util::{stream, StreamExt};
use tokio::time::Instant;

use super::cluster::Cluster;
use crate::backend::{BResult, ExtentAddr};

/// Extents kept ready: enough for a burst of small files from several writers.
pub const TARGET: usize = 16;
/// Creations in flight during a refill.
const PARALLEL: usize = 4;

#[derive(Default)]
pub struct ExtentPool {
    ready: Mutex<VecDeque<ExtentAddr>>,
    refilling: AtomicBool,
}

impl ExtentPool {
    /// A ready extent on a partition that is still writable, if any.
    pub fn take(&self, c: &Cluster) -> Option<ExtentAddr> {
        let mut ready = self.ready.lock().expect("pool lock");
        while let Some(at) = ready.pop_front() {
            if c.is_writable(at.partition) {
                return Some(at);
            }
        }
        None
    }

    /// Starts a background refill unless one is running.
    pub fn refill(self: &Arc<Self>, c: &Arc<Cluster>) {
        if self.refilling.swap(true, Ordering::AcqRel) {
            return;
        }
        let (pool, c) = (self.clone(), c.clone());
        tokio::spawn(async move {
            let missing = TARGET.saturating_sub(pool.ready.lock().expect("pool lock").len());
            let mut made = stream::iter(0..missing).map(|_| create(&c)).buffer_unordered(PARALLEL);
            while let Some(r) = made.next().await {
                match r {
                    Ok(at) => pool.ready.lock().expect("pool lock").push_back(at),
                    // The caller's own creation reports errors; a refill just stops.
                    Err(_) => break,
                }
            }
            pool.refilling.store(false, Ordering::Release);
        });
    }
}

/// Creates an extent on the next writable data partition (round-robin), skipping full ones, within one
/// op timeout: each partition tried gets an equal share of what is left, so one that cannot answer
/// (its majority is down) leaves time for the others.
pub async fn create(c: &Cluster) -> BResult<ExtentAddr> {
    let deadline = c.deadline();
    let mut last = ErrorCode::NoSpace;
    let candidates = c.data_candidates();
    for (i, &partition) in candidates.iter().enumerate() {
        let left = (candidates.len() - i) as u32;
        let share = deadline.saturating_duration_since(Instant::now()) / left;
        let op = c.ops.next();
        let req = CreateExtent { partition, op };
        match c.call_data_until(partition, &req, Bytes::new(), Instant::now() + share).await {
            Ok((resp, _)) => return Ok(ExtentAddr { partition, extent: resp.extent }),
            Err(e @ (ErrorCode::NoSpace | ErrorCode::ReadOnly)) => {
                c.mark_full(partition);
                last = e;
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}
