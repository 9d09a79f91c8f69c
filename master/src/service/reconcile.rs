//! The leader's background work: finish volume creations and deletions (after a failure, or after a
//! failover interrupted them), create growth partitions left half-done, grow volumes; and start each
//! term as leader with fresh liveness.

use std::sync::Arc;

use ferrum_proto::msg::master::VolumeState;
use ferrum_proto::{ErrorCode, GroupId};
use tokio_util::sync::CancellationToken;

use super::Master;

impl Master {
    /// Runs until `stop`.
    pub async fn run_background(self: Arc<Self>, stop: CancellationToken) {
        tokio::spawn(self.clone().watch_leadership(stop.clone()));
        let mut tick = tokio::time::interval(self.cfg.reconcile_interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_error: Option<String> = None;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            if !self.is_leader() {
                continue;
            }
            match self.reconcile_once().await {
                Ok(()) => last_error = None,
                // The same failure every second (a node down) is logged once.
                Err(e) => {
                    let msg = e.to_string();
                    if last_error.as_deref() != Some(&msg) {
                        tracing::warn!(error = %msg, "background work failed; retrying");
                    }
                    last_error = Some(msg);
                }
            }
        }
    }

    /// One pass; the first failure ends it (the next pass retries).
    pub async fn reconcile_once(&self) -> Result<(), ErrorCode> {
        let _ops = self.ops.lock().await;
        self.lead().await?;
        let (creating, deleting, pending) = {
            let st = self.state.read().expect("state lock");
            let by_state =
                |s: VolumeState| st.volumes.values().filter(|v| v.state == s).map(|v| v.id).collect::<Vec<_>>();
            let pending: Vec<_> = st
                .partitions
                .values()
                .filter(|p| !p.ready && st.volumes.get(&p.volume).is_some_and(|v| v.state == VolumeState::Ready))
                .map(|p| p.id)
                .collect();
            (by_state(VolumeState::Creating), by_state(VolumeState::Deleting), pending)
        };
        for v in creating {
            self.finish_creating(v).await?;
            tracing::info!(volume = %v, "volume creation finished");
        }
        for v in deleting {
            self.finish_deleting(v).await?;
            tracing::info!(volume = %v, "volume removal finished");
        }
        if !pending.is_empty() {
            self.make_ready(&pending).await?;
        }
        self.grow().await
    }

    /// Each time this master becomes the leader, liveness starts over (see `Liveness::reset`).
    async fn watch_leadership(self: Arc<Self>, stop: CancellationToken) {
        let Some(h) = self.raft.handle(GroupId::MASTER) else { return };
        let mut metrics = h.raft.metrics();
        let mut leading = false;
        loop {
            let now_leading = metrics.borrow().current_leader == Some(self.id.get());
            if now_leading && !leading {
                tracing::info!(term = metrics.borrow().current_term, "this master is now the leader");
                self.liveness.reset();
            } else if leading && !now_leading {
                tracing::info!("this master is no longer the leader");
            }
            leading = now_leading;
            tokio::select! {
                _ = stop.cancelled() => return,
                changed = metrics.changed() => if changed.is_err() { return },
            }
        }
    }
}
