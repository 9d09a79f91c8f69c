//! Group commit: concurrent commands to one partition travel in one Raft log entry.
//!
//! Every Raft entry costs a log write and a replication round on a majority of replicas (and an fsync
//! with `sync_every_entry`), and a group appends its entries one after another, so a partition that
//! proposed one entry per command would pay all of that per command, however many clients wait.
//! Instead each partition has a proposer task: commands queue up while earlier batches are being
//! committed, and leave together as the next entry (applied in order, each atomically, each with its
//! own outcome — see `MetaApp::apply`). Commands in one batch were all in flight at once, so any order
//! among them is a valid one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ferrum_proto::{msg, ErrorCode, GroupId, PartitionId};
use ferrum_raftstore::MultiRaft;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::cmd::{MetaCmd, Outcome};

/// Most commands in one entry.
const MAX_BATCH: usize = 256;
/// Entries of one partition being committed at once; more commands wait and batch up meanwhile.
const IN_FLIGHT: usize = 4;

type Reply = oneshot::Sender<Result<Outcome, ErrorCode>>;

pub struct Batcher {
    raft: Arc<MultiRaft>,
    queues: Mutex<HashMap<PartitionId, mpsc::UnboundedSender<(MetaCmd, Reply)>>>,
}

impl Batcher {
    pub fn new(raft: Arc<MultiRaft>) -> Batcher {
        Batcher { raft, queues: Mutex::new(HashMap::new()) }
    }

    /// Proposes `cmd` to partition `p` and returns its outcome once committed and applied here.
    pub async fn propose(&self, p: PartitionId, cmd: MetaCmd) -> Result<Outcome, ErrorCode> {
        let (tx, rx) = oneshot::channel();
        self.queue(p).send((cmd, tx)).map_err(|_| ErrorCode::Unavailable("proposer stopped".into()))?;
        rx.await.map_err(|_| ErrorCode::Unavailable("proposer stopped".into()))?
    }

    fn queue(&self, p: PartitionId) -> mpsc::UnboundedSender<(MetaCmd, Reply)> {
        let mut queues = self.queues.lock().expect("queues lock");
        if let Some(q) = queues.get(&p).filter(|q| !q.is_closed()) {
            return q.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(self.raft.clone(), GroupId::from(p), rx));
        queues.insert(p, tx.clone());
        tx
    }
}

async fn run(raft: Arc<MultiRaft>, group: GroupId, mut rx: mpsc::UnboundedReceiver<(MetaCmd, Reply)>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        // Wait for a slot first: what arrives meanwhile joins this batch.
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            let (cmds, replies): (Vec<MetaCmd>, Vec<Reply>) = batch.into_iter().unzip();
            let result = raft.write(group, msg::encode(&cmds)).await.and_then(|b| msg::decode::<Vec<Outcome>>(&b));
            match result {
                Ok(outcomes) if outcomes.len() == replies.len() => {
                    for (reply, outcome) in replies.into_iter().zip(outcomes) {
                        let _ = reply.send(Ok(outcome));
                    }
                }
                Ok(outcomes) => {
                    let e = match outcomes.into_iter().next() {
                        Some(Outcome::Done { result: Err(e), .. }) => e,
                        _ => ErrorCode::Internal("a batch's outcomes do not match its commands".into()),
                    };
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
                Err(e) => {
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
            drop(slot);
        });
    }
}
