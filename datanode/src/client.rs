//! A small typed client for one data partition over the proto's [`LeaderClient`] (which follows
//! `NotLeader` hints and retries what is retryable). A mutation keeps its [`OpId`] across those
//! retries, so it is applied once. For tests, tools and benchmarks; the FUSE client has its own, with
//! the volume view behind it.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use ferrum_proto::msg::data::{
    CreateExtent, Delete, PartitionStatus, PartitionStatusResp, PunchHole, Read, StatExtent, Truncate, Write,
};
use ferrum_proto::rpc::{ConnPool, LeaderClient, RetryPolicy};
use ferrum_proto::{ClientId, ErrorCode, ExtentId, OpId, PartitionId, RequestId};

pub struct PartitionClient {
    pool: ConnPool,
    leader: LeaderClient,
    partition: PartitionId,
    client: ClientId,
    next_request: AtomicU64,
}

impl PartitionClient {
    pub fn new(pool: ConnPool, partition: PartitionId, replicas: Vec<String>, client: ClientId) -> PartitionClient {
        let policy = RetryPolicy { deadline: std::time::Duration::from_secs(30), ..Default::default() };
        PartitionClient {
            leader: LeaderClient::new(pool.clone(), replicas, policy),
            pool,
            partition,
            client,
            next_request: AtomicU64::new(1),
        }
    }

    pub fn partition(&self) -> PartitionId {
        self.partition
    }

    /// A fresh op id (a retry of an earlier mutation reuses the earlier one instead).
    pub fn next_op(&self) -> OpId {
        OpId::new(self.client, RequestId(self.next_request.fetch_add(1, Ordering::Relaxed)))
    }

    pub async fn create_extent(&self) -> Result<ExtentId, ErrorCode> {
        let req = CreateExtent { partition: self.partition, op: self.next_op() };
        Ok(self.leader.call(&req).await.map_err(|e| e.code())?.extent)
    }

    pub async fn write(&self, extent: ExtentId, offset: u64, data: Bytes) -> Result<(), ErrorCode> {
        self.write_as(self.next_op(), extent, offset, data).await
    }

    pub async fn write_as(&self, op: OpId, extent: ExtentId, offset: u64, data: Bytes) -> Result<(), ErrorCode> {
        let req = Write { partition: self.partition, op, extent, offset };
        self.leader.call_with_data(&req, data).await.map(drop).map_err(|e| e.code())
    }

    pub async fn read(&self, extent: ExtentId, offset: u64, len: u32) -> Result<Bytes, ErrorCode> {
        let req = Read { partition: self.partition, extent, offset, len };
        Ok(self.leader.call_with_data(&req, Bytes::new()).await.map_err(|e| e.code())?.1)
    }

    pub async fn truncate(&self, extent: ExtentId, size: u64) -> Result<(), ErrorCode> {
        let req = Truncate { partition: self.partition, op: self.next_op(), extent, size };
        self.leader.call(&req).await.map_err(|e| e.code())
    }

    pub async fn punch_hole(&self, extent: ExtentId, offset: u64, len: u64) -> Result<(), ErrorCode> {
        let req = PunchHole { partition: self.partition, op: self.next_op(), extent, offset, len };
        self.leader.call(&req).await.map_err(|e| e.code())
    }

    pub async fn delete(&self, extent: ExtentId) -> Result<(), ErrorCode> {
        let req = Delete { partition: self.partition, op: self.next_op(), extent };
        self.leader.call(&req).await.map_err(|e| e.code())
    }

    pub async fn size(&self, extent: ExtentId) -> Result<u64, ErrorCode> {
        let req = StatExtent { partition: self.partition, extent };
        Ok(self.leader.call(&req).await.map_err(|e| e.code())?.size)
    }

    /// One replica's own view of the partition (no leader involved, no retries).
    pub async fn status_at(&self, addr: &str) -> Result<PartitionStatusResp, ErrorCode> {
        self.pool.call(addr, &PartitionStatus { partition: self.partition }).await.map_err(|e| e.code())
    }
}
