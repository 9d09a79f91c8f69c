//! [`DataBackend`] in memory: each extent is a growable byte vector on one pretend data partition.
//! Clones share the extents; calls are counted (tests check the round trips a workload would cost).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ferrum_proto::{ErrorCode, ExtentId, PartitionId};

use crate::backend::{BResult, DataBackend, ExtentAddr};

#[derive(Clone)]
pub struct MemData {
    shared: Arc<Shared>,
}

struct Shared {
    extents: Mutex<HashMap<ExtentAddr, Vec<u8>>>,
    next: AtomicU64,
    /// What `statfs` reports as the size of the volume; writes past it fail with `NoSpace`.
    capacity: u64,
    stats: [AtomicU64; 5],
    /// Injected failures: the next `n` writes fail with this code.
    failing: Mutex<Option<(u64, ErrorCode)>>,
}

/// Calls served, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataStats {
    pub creates: u64,
    pub writes: u64,
    pub reads: u64,
    pub punches: u64,
    pub syncs: u64,
}

impl MemData {
    pub fn new(capacity: u64) -> MemData {
        MemData {
            shared: Arc::new(Shared {
                extents: Mutex::new(HashMap::new()),
                next: AtomicU64::new(1),
                capacity,
                stats: Default::default(),
                failing: Mutex::new(None),
            }),
        }
    }

    pub fn stats(&self) -> DataStats {
        let s = |i: usize| self.shared.stats[i].load(Ordering::Relaxed);
        DataStats { creates: s(0), writes: s(1), reads: s(2), punches: s(3), syncs: s(4) }
    }

    fn count(&self, i: usize) {
        self.shared.stats[i].fetch_add(1, Ordering::Relaxed);
    }

    fn used(extents: &HashMap<ExtentAddr, Vec<u8>>) -> u64 {
        extents.values().map(|v| v.len() as u64).sum()
    }

    /// The next `n` writes fail with `code` (as a cluster that lost a majority would answer).
    pub fn fail_writes(&self, n: u64, code: ErrorCode) {
        *self.shared.failing.lock().expect("memory data lock") = (n > 0).then_some((n, code));
    }

    fn injected_failure(&self) -> BResult<()> {
        let mut failing = self.shared.failing.lock().expect("memory data lock");
        let Some((n, code)) = failing.take() else { return Ok(()) };
        if n > 1 {
            *failing = Some((n - 1, code.clone()));
        }
        Err(code)
    }

    /// Bytes held over all extents.
    pub fn used_bytes(&self) -> u64 {
        Self::used(&self.shared.extents.lock().expect("memory data lock"))
    }
}

impl DataBackend for MemData {
    async fn create_extent(&self) -> BResult<ExtentAddr> {
        self.count(0);
        let id = ExtentId(self.shared.next.fetch_add(1, Ordering::Relaxed));
        let at = ExtentAddr { partition: PartitionId(1), extent: id };
        self.shared.extents.lock().expect("memory data lock").insert(at, Vec::new());
        Ok(at)
    }

    async fn write(&self, at: ExtentAddr, offset: u64, data: Bytes) -> BResult<()> {
        self.count(1);
        self.injected_failure()?;
        let mut extents = self.shared.extents.lock().expect("memory data lock");
        let end = offset as usize + data.len();
        let grow = end.saturating_sub(extents.get(&at).ok_or(ErrorCode::NotFound)?.len()) as u64;
        if Self::used(&extents) + grow > self.shared.capacity {
            return Err(ErrorCode::NoSpace);
        }
        let buf = extents.get_mut(&at).ok_or(ErrorCode::NotFound)?;
        if buf.len() < end {
            buf.resize(end, 0);
        }
        buf[offset as usize..end].copy_from_slice(&data);
        Ok(())
    }

    async fn read(&self, at: ExtentAddr, offset: u64, len: u32) -> BResult<Bytes> {
        self.count(2);
        let extents = self.shared.extents.lock().expect("memory data lock");
        let buf = extents.get(&at).ok_or(ErrorCode::NotFound)?;
        let start = (offset as usize).min(buf.len());
        let end = (start + len as usize).min(buf.len());
        Ok(Bytes::copy_from_slice(&buf[start..end]))
    }

    async fn punch_hole(&self, at: ExtentAddr, offset: u64, len: u64) -> BResult<()> {
        self.count(3);
        let mut extents = self.shared.extents.lock().expect("memory data lock");
        let buf = extents.get_mut(&at).ok_or(ErrorCode::NotFound)?;
        let start = (offset as usize).min(buf.len());
        let end = (offset.saturating_add(len) as usize).min(buf.len());
        buf[start..end].fill(0);
        Ok(())
    }

    async fn capacity(&self) -> BResult<Option<u64>> {
        Ok(Some(self.shared.capacity))
    }

    async fn sync(&self) -> BResult<()> {
        self.count(4);
        Ok(())
    }
}
