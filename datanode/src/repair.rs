//! Rewrites blocks whose CRC failed with a healthy replica's copy of the same version.
//!
//! A peer's copy is taken only when the peer wrote it at the same log index (replicas apply the same
//! log, so that copy is what this one should hold) and it passes the checks in `Extent::repair`. A peer
//! that is behind may catch up within moments, so the peers are asked a few times.

use std::sync::Arc;
use std::time::Duration;

use ferrum_proto::msg::data::ReadBlocks;
use ferrum_proto::rpc::ConnPool;
use ferrum_raftstore::MultiRaft;

use crate::app::DataApp;
use crate::extent::{BadBlock, Extent, RepairOutcome};
use crate::metrics;

/// Waits between rounds over the peers, when one of them was behind.
const ROUNDS: [Duration; 3] = [Duration::ZERO, Duration::from_millis(50), Duration::from_millis(300)];

pub struct Repairer {
    raft: Arc<MultiRaft>,
    pool: ConnPool,
}

impl Repairer {
    pub fn new(raft: Arc<MultiRaft>, pool: ConnPool) -> Repairer {
        Repairer { raft, pool }
    }

    /// Tries to repair each bad block; returns how many now verify (or changed under us, so the
    /// caller should look again).
    pub async fn repair(&self, app: &DataApp, ext: &Arc<Extent>, bad: &[BadBlock]) -> usize {
        let labels = metrics::partition(app.id());
        let m = app.metrics();
        m.crc_failures.get_or_create(&labels).inc_by(bad.len() as u64);
        let mut fixed = 0;
        for b in bad {
            tracing::warn!(partition = %app.id(), extent = %ext.id(), block = b.block, "CRC mismatch, repairing");
            match self.repair_one(app, ext, *b).await {
                Some(RepairOutcome::Repaired) => {
                    m.crc_repaired.get_or_create(&labels).inc();
                    tracing::info!(partition = %app.id(), extent = %ext.id(), block = b.block, "block repaired");
                    fixed += 1;
                }
                Some(RepairOutcome::Stale) => fixed += 1,
                _ => tracing::error!(
                    partition = %app.id(), extent = %ext.id(), block = b.block,
                    "no replica holds a good copy of this block version"
                ),
            }
        }
        fixed
    }

    async fn repair_one(&self, app: &DataApp, ext: &Arc<Extent>, bad: BadBlock) -> Option<RepairOutcome> {
        if bad.entry.is_hole() {
            // A hole reads as zeros: nothing to fetch.
            return self.apply(ext, bad, None).await;
        }
        let me = self.raft.node_id();
        let peers: Vec<String> = match self.raft.status(app.group()) {
            Ok(s) => s.members.into_iter().filter(|(n, _)| *n != me).map(|(_, a)| a).collect(),
            Err(_) => return None,
        };
        let req = ReadBlocks { partition: app.id(), extent: ext.id(), first_block: bad.block, count: 1 };
        for wait in ROUNDS {
            tokio::time::sleep(wait).await;
            let mut behind = false;
            for addr in &peers {
                let Ok(client) = self.pool.get(addr).await else { continue };
                let Ok((resp, data)) = client.call_with_data(&req, bytes::Bytes::new()).await else { continue };
                let Some(copy) = resp.blocks.first() else { continue };
                if u64::from(resp.block_size) != crate::block::BLOCK_SIZE {
                    // A replica written with another block size (another format) cannot be a source.
                    continue;
                }
                if copy.index < bad.entry.index {
                    behind = true;
                    continue;
                }
                if copy.index > bad.entry.index {
                    // This replica is behind: applying the newer write will replace the block (a
                    // partial one marks it suspect, and that version is then repairable).
                    tracing::info!(block = bad.block, ours = bad.entry.index, theirs = copy.index, "peer is ahead");
                    return Some(RepairOutcome::Stale);
                }
                if !copy.valid || copy.index != bad.entry.index {
                    continue;
                }
                match self.apply(ext, bad, Some((data, copy.suspect))).await {
                    Some(RepairOutcome::Mismatch) => continue,
                    other => return other,
                }
            }
            if !behind {
                break;
            }
        }
        Some(RepairOutcome::Mismatch)
    }

    async fn apply(
        &self,
        ext: &Arc<Extent>,
        bad: BadBlock,
        offered: Option<(bytes::Bytes, bool)>,
    ) -> Option<RepairOutcome> {
        let ext = ext.clone();
        tokio::task::spawn_blocking(move || {
            ext.repair(bad.block, bad.entry, offered.as_ref().map(|(d, s)| (&d[..], *s)))
        })
        .await
        .ok()?
        .map_err(|e| tracing::error!("writing a repaired block: {e}"))
        .ok()
    }
}
