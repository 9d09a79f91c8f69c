//! [`DataBackend`] over the datanodes: extents are created on a writable data partition (round-robin,
//! skipping full ones), then written and read at their partition's leader. File bytes travel in the
//! frame's payload, never through postcard.

use std::sync::Arc;

use bytes::Bytes;
use ferrum_proto::msg::data::{CreateExtent, PunchHole, Read, Write};
use ferrum_proto::ErrorCode;

use super::cluster::Cluster;
use crate::backend::{BResult, DataBackend, ExtentAddr};

pub struct RpcData {
    c: Arc<Cluster>,
}

impl RpcData {
    pub fn new(c: Arc<Cluster>) -> RpcData {
        RpcData { c }
    }
}

impl DataBackend for RpcData {
    async fn create_extent(&self) -> BResult<ExtentAddr> {
        let mut last = ErrorCode::NoSpace;
        for partition in self.c.data_candidates() {
            let op = self.c.ops.next();
            match self.c.call_data(partition, &CreateExtent { partition, op }, Bytes::new()).await {
                Ok((resp, _)) => return Ok(ExtentAddr { partition, extent: resp.extent }),
                Err(e @ (ErrorCode::NoSpace | ErrorCode::ReadOnly)) => {
                    self.c.mark_full(partition);
                    last = e;
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn write(&self, at: ExtentAddr, offset: u64, data: Bytes) -> BResult<()> {
        let op = self.c.ops.next();
        let req = Write { partition: at.partition, op, extent: at.extent, offset };
        self.c.call_data(at.partition, &req, data).await.map(drop)
    }

    async fn read(&self, at: ExtentAddr, offset: u64, len: u32) -> BResult<Bytes> {
        let req = Read { partition: at.partition, extent: at.extent, offset, len };
        Ok(self.c.call_data(at.partition, &req, Bytes::new()).await?.1)
    }

    async fn punch_hole(&self, at: ExtentAddr, offset: u64, len: u64) -> BResult<()> {
        let op = self.c.ops.next();
        let req = PunchHole { partition: at.partition, op, extent: at.extent, offset, len };
        self.c.call_data(at.partition, &req, Bytes::new()).await.map(drop)
    }

    async fn capacity(&self) -> BResult<Option<u64>> {
        self.c.capacity().await
    }
}
