//! Why a master could not start.

use ferrum_raftstore::instance::{ConfigError, InstanceError};
use ferrum_raftstore::RaftStoreError;

#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Instance(#[from] InstanceError),
    #[error(transparent)]
    Store(#[from] RaftStoreError),
    #[error("this master advertises {advertise}, which is not in --peers ({peers}); list every initial master as it advertises itself, this one included, or use --join to add it to a running cluster")]
    NotInPeers { advertise: String, peers: String },
    #[error("cannot join the cluster through {through}: {reason}")]
    Join { through: String, reason: String },
    #[error("the master group's record in {what} is unreadable: {detail}; this data dir was not written by this master version")]
    Corrupt { what: &'static str, detail: String },
    #[error("cannot create the master group: {0}")]
    Group(ferrum_proto::ErrorCode),
}
