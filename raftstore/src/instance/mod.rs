//! Per-instance plumbing shared by the master, metanode and datanode binaries: config, data dir
//! lock and identity, ports, metrics, logs, shutdown, and the `main` wrapper.
//!
//! Several instances of each role may run on one host, so everything here is per instance: its own
//! ports, data dir, metrics labels and log tag, and every start-up failure names the one at fault.

mod config;
mod config_file;
mod error;
mod identity;
mod listen;
mod lock;
mod logging;
mod main_support;
mod metrics;
mod raft_config;
mod role;
mod shutdown;

pub use config::{load, InstanceArgs, InstanceConfig, DEFAULT_BLOCK_CACHE_MIB, DEFAULT_LOG};
pub use error::{ConfigError, InstanceError};
pub use identity::{Identity, InstanceUuid};
pub use listen::bind;
pub use lock::DataDir;
pub use logging::init_tracing;
pub use main_support::{run, MainError};
pub use metrics::{serve as serve_metrics, Metrics, CONTENT_TYPE as METRICS_CONTENT_TYPE};
pub use raft_config::RaftConfig;
pub use role::Role;
pub use shutdown::Shutdown;
