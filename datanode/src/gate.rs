//! Read barriers shared by concurrent reads.
//!
//! A leader read must not start before a read-index check that began after the read arrived (the
//! check confirms leadership with a quorum and waits until everything committed before it is
//! applied). One such check can serve every read waiting when it starts, so reads queue here and each
//! round runs one barrier for all of them: under a heavy read load the cost is one quorum round trip
//! per round, not per read.

use std::sync::{Arc, Mutex};

use ferrum_proto::{ErrorCode, GroupId};
use ferrum_raftstore::MultiRaft;
use tokio::sync::oneshot;

type Waiter = oneshot::Sender<Result<(), ErrorCode>>;

#[derive(Default)]
pub struct ReadGate {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    running: bool,
    waiting: Vec<Waiter>,
}

impl ReadGate {
    /// Returns once a barrier that started after this call completed: local reads then see every
    /// write acknowledged before this call.
    pub async fn barrier(self: &Arc<Self>, raft: &Arc<MultiRaft>, group: GroupId) -> Result<(), ErrorCode> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut s = self.state.lock().expect("gate lock");
            s.waiting.push(tx);
            !std::mem::replace(&mut s.running, true)
        };
        if start {
            tokio::spawn(run(self.clone(), raft.clone(), group));
        }
        rx.await.unwrap_or_else(|_| Err(ErrorCode::Unavailable("read barrier dropped".into())))
    }
}

/// Runs rounds while reads are waiting. Each round takes the waiters queued before it starts.
async fn run(gate: Arc<ReadGate>, raft: Arc<MultiRaft>, group: GroupId) {
    loop {
        let batch = {
            let mut s = gate.state.lock().expect("gate lock");
            if s.waiting.is_empty() {
                s.running = false;
                return;
            }
            std::mem::take(&mut s.waiting)
        };
        let r = raft.read_barrier(group).await;
        for tx in batch {
            let _ = tx.send(r.clone());
        }
    }
}
