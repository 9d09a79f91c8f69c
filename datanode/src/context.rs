//! What every data partition of one datanode shares, and the raftstore `AppFactory` that opens them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use ferrum_proto::{ErrorCode, PartitionId};
use ferrum_raftstore::{App, AppFactory, Store};

use crate::app::DataApp;
use crate::config::DataConfig;
use crate::metrics::DataMetrics;
use crate::space::Space;

/// The `GroupDesc.kind` of data partitions.
pub const KIND: &str = "data";

pub struct DataContext {
    /// `<data-dir>/partitions`: one dir per partition.
    pub partitions_dir: PathBuf,
    /// The instance's RocksDB (the raft log, read when a partition replays it at open).
    pub store: Store,
    pub metrics: DataMetrics,
    pub space: Space,
    pub config: DataConfig,
    partitions: RwLock<HashMap<PartitionId, Arc<DataApp>>>,
}

impl DataContext {
    pub fn new(data_dir: PathBuf, store: Store, metrics: DataMetrics, config: DataConfig) -> Arc<DataContext> {
        let partitions_dir = data_dir.join("partitions");
        Arc::new(DataContext {
            space: Space::new(&data_dir, config.reserve_bytes),
            partitions_dir,
            store,
            metrics,
            config,
            partitions: RwLock::new(HashMap::new()),
        })
    }

    /// The partition hosted here, or `PartitionNotFound`.
    pub fn partition(&self, p: PartitionId) -> Result<Arc<DataApp>, ErrorCode> {
        self.partitions.read().expect("partitions lock").get(&p).cloned().ok_or(ErrorCode::PartitionNotFound(p))
    }

    pub fn partitions(&self) -> Vec<Arc<DataApp>> {
        let mut v: Vec<_> = self.partitions.read().expect("partitions lock").values().cloned().collect();
        v.sort_by_key(|a| a.id());
        v
    }

    /// Forgets a partition whose group was removed, and deletes its files.
    pub fn remove(&self, p: PartitionId) -> std::io::Result<()> {
        self.partitions.write().expect("partitions lock").remove(&p);
        match std::fs::remove_dir_all(self.partitions_dir.join(p.to_string())) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// The factory the raftstore calls to open (or create) a data partition's [`App`]. Opening replays
/// log entries whose effect may have been lost (see `replay`); a partition that cannot be opened
/// stops the process, because serving it half-open could return wrong data.
pub fn data_app_factory(ctx: Arc<DataContext>) -> AppFactory {
    Arc::new(move |group, desc| {
        assert_eq!(desc.kind, KIND, "a datanode hosts only data partitions, not {:?} (group {group})", desc.kind);
        let app = DataApp::open(&ctx, group).unwrap_or_else(|e| panic!("cannot open data partition {group}: {e}"));
        let app = Arc::new(app);
        ctx.partitions.write().expect("partitions lock").insert(app.id(), app.clone());
        app as Arc<dyn App>
    })
}
