//! Per-node background work: the periodic sync of written extents (with the usage gauges and the
//! read-only recovery check riding along), and the scrubber.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::metrics;
use crate::service::DataService;

/// Blocks verified per scrub step (1 MiB): small enough to keep lock hold times short.
const SCRUB_STEP_BLOCKS: u64 = (1 << 20) / crate::block::BLOCK_SIZE;

/// Starts the background tasks; they stop with `stop`.
pub fn start(svc: &Arc<DataService>, stop: CancellationToken) {
    tokio::spawn(sync_loop(svc.clone(), stop.clone()));
    tokio::spawn(scrub_loop(svc.clone(), stop));
}

async fn sync_loop(svc: Arc<DataService>, stop: CancellationToken) {
    let ctx = svc.context().clone();
    let mut tick = tokio::time::interval(Duration::from_millis(ctx.config.sync_interval_ms.max(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        for app in ctx.partitions() {
            let labels = metrics::partition(app.id());
            let u = app.usage();
            ctx.metrics.used_bytes.get_or_create(&labels).set(u.used_bytes as i64);
            ctx.metrics.extents.get_or_create(&labels).set(u.extents as i64);
            if u.read_only && ctx.space.recovered() {
                app.set_read_only(false);
            }
            if app.partition().needs_sync() {
                let a = app.clone();
                match tokio::task::spawn_blocking(move || a.partition().sync()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::error!(partition = %app.id(), "background sync failed: {e}"),
                    Err(e) => tracing::error!(partition = %app.id(), "background sync panicked: {e}"),
                }
            }
        }
    }
}

/// Walks every block of every extent at `scrub_bytes_per_sec`, repairing what fails its CRC, then
/// rests `scrub_interval_secs` and starts over.
async fn scrub_loop(svc: Arc<DataService>, stop: CancellationToken) {
    let ctx = svc.context().clone();
    let rate = ctx.config.scrub_bytes_per_sec;
    if rate == 0 {
        return;
    }
    let m = &ctx.metrics;
    loop {
        let apps = ctx.partitions();
        let total: u64 = apps.iter().map(|a| a.usage().used_bytes).sum::<u64>().max(1);
        let (mut done, start) = (0u64, Instant::now());
        m.scrub_progress.set(0.0);
        for app in apps {
            for ext in app.partition().extents() {
                let mut first = 0;
                loop {
                    let e = ext.clone();
                    let step = tokio::task::spawn_blocking(move || e.scrub(first, SCRUB_STEP_BLOCKS)).await;
                    let Ok(Ok((bad, bytes, more))) = step else { break };
                    if !bad.is_empty() {
                        svc.repairer().repair(&app, &ext, &bad).await;
                    }
                    done += bytes;
                    m.scrub_bytes.inc_by(bytes);
                    m.scrub_progress.set((done as f64 / total as f64).min(1.0));
                    // Rate limit: never ahead of `rate` bytes per second since the pass began.
                    let due = Duration::from_secs_f64(done as f64 / rate as f64);
                    if let Some(ahead) = due.checked_sub(start.elapsed()) {
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = tokio::time::sleep(ahead) => {}
                        }
                    }
                    if stop.is_cancelled() {
                        return;
                    }
                    if !more {
                        break;
                    }
                    first += SCRUB_STEP_BLOCKS;
                }
            }
        }
        m.scrub_progress.set(1.0);
        m.scrub_passes.inc();
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(ctx.config.scrub_interval_secs.max(1))) => {}
        }
    }
}
