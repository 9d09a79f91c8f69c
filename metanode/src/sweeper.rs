//! Recovery of cross-partition operations whose coordinator vanished (see [`crate::coord`]): every
//! partition's leader periodically resolves its old prepares (asking the decider, which fences a
//! decision never taken) and drains its old outboxes. It also forgets recorded outcomes past their TTL.
//!
//! "Old" means older than the recovery grace: a live coordinator normally finishes well within it.
//! Acting earlier would be safe (fencing makes a slow coordinator's decision fail) but would abort
//! operations that were about to succeed.

use std::sync::Arc;
use std::time::Duration;

use ferrum_proto::msg::attr::Time;
use ferrum_proto::msg::meta::MetaRoute;
use ferrum_proto::{ErrorCode, OpId, PartitionId};
use tokio_util::sync::CancellationToken;

use crate::cluster::{scan_all, Cluster};
use crate::cmd::{Body, OpKey, Outcome};
use crate::dedup::{self, Class};
use crate::peers::Peers;
use crate::records::{OutboxRec, PreparedRec};
use crate::service::MetaConfig;
use crate::steps;
use crate::wire::{ScanItem, Table};

/// What one sweep of one partition did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepStats {
    pub resolved: usize,
    pub drained: usize,
    /// Leftovers still younger than the grace.
    pub waiting: usize,
}

/// Whether `t` is at least `grace` before `now`.
pub fn older_than(t: Time, now: Time, grace: Duration) -> bool {
    let nanos = |t: Time| t.secs as i128 * 1_000_000_000 + t.nanos as i128;
    nanos(now) - nanos(t) >= grace.as_nanos() as i128
}

/// `now` minus `d`.
pub fn before(now: Time, d: Duration) -> Time {
    let n = now.secs as i128 * 1_000_000_000 + now.nanos as i128 - d.as_nanos() as i128;
    Time { secs: n.div_euclid(1_000_000_000) as i64, nanos: n.rem_euclid(1_000_000_000) as u32 }
}

/// Commits or undoes a prepare of partition `own` according to its decision. Returns the commit flag.
pub async fn resolve_prepared(
    c: &impl Cluster,
    own: &MetaRoute,
    op: OpId,
    step: u32,
    rec: &PreparedRec,
) -> Result<bool, ErrorCode> {
    let decider = rec
        .route
        .as_ref()
        .ok_or_else(|| ErrorCode::Internal(format!("prepare {op}/{step} has no route to its decider")))?;
    let commit = match c.step(decider, OpKey::new(op, rec.decide_step), Body::Resolve).await? {
        Outcome::Done { commit, .. } => commit,
        Outcome::Fenced => false,
        Outcome::Conflict(n) => return Err(ErrorCode::Internal(format!("resolve answered {n:?}"))),
    };
    let finish = Body::Finish { prepare_step: step, commit };
    c.step(own, OpKey::new(op, steps::finish_of(step)), finish).await?.into_result::<()>()?;
    tracing::info!(partition = %own.partition, %op, step, commit, "recovered a prepare left by its coordinator");
    Ok(commit)
}

/// Applies the effects of a decision of partition `own` left in its outbox, then deletes it.
pub async fn drain_outbox(
    c: &impl Cluster,
    own: &MetaRoute,
    op: OpId,
    step: u32,
    rec: &OutboxRec,
) -> Result<(), ErrorCode> {
    for item in &rec.items {
        let route = rec.routes.iter().find(|r| r.partition == item.partition).ok_or_else(|| {
            ErrorCode::Internal(format!("outbox {op}/{step} has no route to partition {}", item.partition))
        })?;
        match c.step(route, OpKey::new(op, item.step), Body::Effect(item.effect.clone())).await? {
            // Applied, or refused for good (recorded): either way it is done.
            Outcome::Done { .. } => {}
            other => return Err(ErrorCode::Internal(format!("effect {op}/{}: {other:?}", item.step))),
        }
    }
    c.step(own, OpKey::new(op, steps::outbox_done_of(step)), Body::OutboxDone { decide_step: step })
        .await?
        .into_result::<()>()?;
    tracing::info!(partition = %own.partition, %op, step, "drained an outbox left by its coordinator");
    Ok(())
}

/// Finishes the leftovers of partition `own` older than `grace`.
pub async fn sweep(c: &impl Cluster, own: &MetaRoute, grace: Duration) -> Result<SweepStats, ErrorCode> {
    let now = Time::now();
    let mut stats = SweepStats::default();
    for item in scan_all(c, own, Table::Prepared).await? {
        if let ScanItem::Prepared { op, step, rec } = item {
            if older_than(rec.created, now, grace) {
                resolve_prepared(c, own, op, step, &rec).await?;
                stats.resolved += 1;
            } else {
                stats.waiting += 1;
            }
        }
    }
    for item in scan_all(c, own, Table::Outbox).await? {
        if let ScanItem::Outbox { op, step, rec } = item {
            if older_than(rec.created, now, grace) {
                drain_outbox(c, own, op, step, &rec).await?;
                stats.drained += 1;
            } else {
                stats.waiting += 1;
            }
        }
    }
    Ok(stats)
}

/// Forgets recorded outcomes of partition `p` (hosted here) past their TTL. Returns how many.
pub async fn gc_outcomes(peers: &Peers, p: PartitionId, class: Class, ttl: Duration) -> Result<u64, ErrorCode> {
    let cutoff = before(Time::now(), ttl);
    let due = peers.read(p, |kv, _| dedup::oldest(kv, class)).await?.is_some_and(|t| t < cutoff);
    let mut total = 0;
    if due {
        loop {
            let body = Body::Gc { class, ttl_secs: ttl.as_secs(), limit: 4096 };
            let (n, more): (u64, bool) = peers.propose(p, None, body).await?.into_result()?;
            total += n;
            if !more {
                break;
            }
        }
    }
    Ok(total)
}

/// Runs until `stop`: sweeps every partition this node leads, and forgets expired outcomes.
pub async fn run(peers: Arc<Peers>, cfg: MetaConfig, stop: CancellationToken) {
    let grace = Duration::from_millis(cfg.recovery_grace_ms);
    let ttls = [
        (Class::Client, Duration::from_secs(cfg.op_ttl_secs)),
        (Class::Protocol, Duration::from_secs(cfg.protocol_ttl_secs)),
    ];
    let mut tick = tokio::time::interval(Duration::from_millis(cfg.sweep_interval_ms.max(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        for group in peers.raft().groups() {
            let p = PartitionId(group.get());
            if !peers.hosts(p) || !peers.is_leader(p) {
                continue;
            }
            let own = match peers.self_route(p) {
                Ok(r) => r,
                Err(_) => continue,
            };
            if let Err(e) = sweep(peers.as_ref(), &own, grace).await {
                tracing::warn!(partition = %p, "recovery sweep failed, will retry: {e}");
            }
            for (class, ttl) in ttls {
                match gc_outcomes(&peers, p, class, ttl).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(partition = %p, ?class, forgotten = n, "outcomes past their TTL"),
                    Err(e) => tracing::warn!(partition = %p, "forgetting expired outcomes failed: {e}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_arithmetic() {
        let t = |secs, nanos| Time { secs, nanos };
        assert!(older_than(t(10, 0), t(40, 0), Duration::from_secs(30)));
        assert!(!older_than(t(10, 1), t(40, 0), Duration::from_secs(30)));
        assert_eq!(before(t(10, 100), Duration::from_millis(1500)), t(8, 500_000_100));
        assert_eq!(before(t(0, 0), Duration::from_nanos(1)), t(-1, 999_999_999));
    }
}
