//! [`DataBackend`] over the datanodes: extents are created on a writable data partition (round-robin,
//! skipping full ones; a few ahead of need, see `extent_pool`), then written and read at their partition's leader. File bytes travel in the
//! frame's payload, never through postcard.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ferrum_proto::msg::data::{PunchHole, Read, SyncPartition, Write};
use ferrum_proto::PartitionId;
use futures_util::future::try_join_all;

use super::cluster::Cluster;
use super::extent_pool::{self, ExtentPool};
use crate::backend::{BResult, DataBackend, ExtentAddr};

pub struct RpcData {
    c: Arc<Cluster>,
    /// Partitions written since the last sync: what the next `sync` must cover.
    unsynced: Mutex<HashSet<PartitionId>>,
    pool: Arc<ExtentPool>,
}

impl RpcData {
    pub fn new(c: Arc<Cluster>) -> RpcData {
        RpcData { c, unsynced: Mutex::new(HashSet::new()), pool: Arc::default() }
    }

    fn written(&self, p: PartitionId) {
        self.unsynced.lock().expect("unsynced lock").insert(p);
    }
}

impl DataBackend for RpcData {
    async fn create_extent(&self) -> BResult<ExtentAddr> {
        let at = match self.pool.take(&self.c) {
            Some(at) => at,
            None => extent_pool::create(&self.c).await?,
        };
        self.pool.refill(&self.c);
        self.written(at.partition);
        Ok(at)
    }

    async fn write(&self, at: ExtentAddr, offset: u64, data: Bytes) -> BResult<()> {
        let op = self.c.ops.next();
        let req = Write { partition: at.partition, op, extent: at.extent, offset };
        self.c.call_data(at.partition, &req, data).await?;
        // Marked once acknowledged: a sync that started earlier may not cover it, the next one will.
        self.written(at.partition);
        Ok(())
    }

    async fn read(&self, at: ExtentAddr, offset: u64, len: u32) -> BResult<Bytes> {
        let req = Read { partition: at.partition, extent: at.extent, offset, len };
        Ok(self.c.call_data(at.partition, &req, Bytes::new()).await?.1)
    }

    async fn punch_hole(&self, at: ExtentAddr, offset: u64, len: u64) -> BResult<()> {
        let op = self.c.ops.next();
        let req = PunchHole { partition: at.partition, op, extent: at.extent, offset, len };
        self.c.call_data(at.partition, &req, Bytes::new()).await?;
        self.written(at.partition);
        Ok(())
    }

    async fn capacity(&self) -> BResult<Option<u64>> {
        self.c.capacity().await
    }

    async fn sync(&self) -> BResult<()> {
        // Taken before syncing: a write acknowledged after this point is marked again for the next sync.
        let parts: Vec<PartitionId> = self.unsynced.lock().expect("unsynced lock").drain().collect();
        let synced = try_join_all(parts.iter().map(|&partition| async move {
            self.c.call_data(partition, &SyncPartition { partition }, Bytes::new()).await
        }))
        .await;
        if synced.is_err() {
            self.unsynced.lock().expect("unsynced lock").extend(parts);
        }
        synced.map(drop)
    }
}
