//! Group commit of client writes at the partition leader.
//!
//! A few proposals per partition are in flight at a time. A write that finds a free slot is proposed
//! at once (no added latency when idle); writes arriving while all slots are busy queue, and the next
//! free slot proposes everything queued (up to `MAX_WRITE` bytes) as one [`DataCmd::Batch`] entry. Under
//! load, entries are therefore few and large whatever the client's write size: a 4 KiB write does not
//! cost a log entry, a replication round and an apply of its own, and the number of entries per
//! replication message (which openraft bounds by count, not bytes) stays meaningful.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use ferrum_proto::msg::data::MAX_WRITE;
use ferrum_proto::{ErrorCode, ExtentId, OpId};
use ferrum_raftstore::MultiRaft;
use tokio::sync::oneshot;

use crate::app::DataApp;
use crate::cmd::{self, DataCmd, WriteCmd};

/// Proposals of one partition in flight at once.
const SLOTS: usize = 4;

pub struct ClientWrite {
    pub op: OpId,
    pub extent: ExtentId,
    pub offset: u64,
    pub data: Bytes,
}

struct Queued {
    write: ClientWrite,
    reply: oneshot::Sender<Result<(), ErrorCode>>,
}

#[derive(Default)]
pub struct WriteBatcher {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Queued>,
    busy: usize,
}

impl WriteBatcher {
    /// Replicates `w` (alone or with others) and returns its outcome once this leader applied it.
    pub async fn write(
        self: &Arc<Self>,
        raft: &Arc<MultiRaft>,
        app: &Arc<DataApp>,
        w: ClientWrite,
    ) -> Result<(), ErrorCode> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut s = self.state.lock().expect("batcher lock");
            s.queue.push_back(Queued { write: w, reply: tx });
            let free = s.busy < SLOTS;
            s.busy += free as usize;
            free
        };
        if start {
            tokio::spawn(propose(self.clone(), raft.clone(), app.clone()));
        }
        rx.await.unwrap_or_else(|_| Err(ErrorCode::Unavailable("write dropped".into())))
    }

    /// Takes queued writes for one entry: at least one, at most `MAX_WRITE` bytes.
    fn take(&self) -> Vec<Queued> {
        let mut s = self.state.lock().expect("batcher lock");
        let mut out: Vec<Queued> = Vec::new();
        let mut bytes = 0;
        while let Some(q) = s.queue.front() {
            if !out.is_empty() && bytes + q.write.data.len() > MAX_WRITE {
                break;
            }
            bytes += q.write.data.len();
            out.push(s.queue.pop_front().expect("front exists"));
        }
        if out.is_empty() {
            s.busy -= 1;
        }
        out
    }
}

/// One slot: proposes queued writes until the queue is empty.
async fn propose(b: Arc<WriteBatcher>, raft: Arc<MultiRaft>, app: Arc<DataApp>) {
    loop {
        let batch = b.take();
        if batch.is_empty() {
            return;
        }
        let c = match &batch[..] {
            [one] => {
                let w = &one.write;
                cmd::encode(&DataCmd::Write { op: w.op, extent: w.extent, offset: w.offset, data: &w.data })
            }
            many => cmd::encode(&DataCmd::Batch(
                many.iter()
                    .map(|q| WriteCmd {
                        op: q.write.op,
                        extent: q.write.extent,
                        offset: q.write.offset,
                        data: &q.write.data,
                    })
                    .collect(),
            )),
        };
        let start = Instant::now();
        let result = raft.write(app.group(), c).await;
        app.metrics().commit_seconds.observe(start.elapsed().as_secs_f64());
        let replies: Vec<Result<(), ErrorCode>> = match result {
            Err(e) => batch.iter().map(|_| Err(e.clone())).collect(),
            Ok(r) if batch.len() == 1 => vec![cmd::decode_reply(&r).map(drop)],
            Ok(r) => match cmd::decode_batch_reply(&r) {
                Ok(rs) if rs.len() == batch.len() => rs.into_iter().map(|r| r.map(drop)).collect(),
                Ok(rs) => batch.iter().map(|_| Err(ErrorCode::Internal(format!("{} replies", rs.len())))).collect(),
                Err(e) => batch.iter().map(|_| Err(e.clone())).collect(),
            },
        };
        for (q, r) in batch.into_iter().zip(replies) {
            let _ = q.reply.send(r);
        }
    }
}
