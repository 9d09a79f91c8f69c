//! The `[raft]` section: timings and log sizes shared by every Raft group of an instance.

use serde::{Deserialize, Serialize};

use super::error::ConfigError;

/// Raft settings; every field has a default so the section (or any key of it) may be left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftConfig {
    /// Leader heartbeat period.
    pub heartbeat_ms: u64,
    /// A follower that heard nothing for a random time in [min, max) starts an election.
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Build a snapshot once this many entries were applied since the last one (more in large groups:
    /// one entry per `raftstore::snapshot_policy::KEYS_PER_LOG` keys of the last snapshot).
    pub snapshot_after_logs: u64,
    /// Entries kept after a snapshot, so a slightly lagging follower catches up from the log
    /// instead of receiving the whole snapshot.
    pub keep_logs_after_snapshot: u64,
    /// Upper bound on entries per AppendEntries message.
    pub max_payload_entries: u64,
    /// fsync the log for every entry. Off (the default): an acknowledged write is in the memory of a
    /// majority and `fsync` puts it on a majority's disks (see `raftstore::durability`).
    pub sync_every_entry: bool,
    /// After a reboot that followed an unclean stop, how long a group waits for a leader to catch it up
    /// before it votes again (only matters when a majority lost power at once).
    pub recovery_timeout_ms: u64,
    /// Snapshot bytes per second this instance sends, all groups together (0: unlimited): bounds
    /// how much of the network and disks rebuilding a replica takes from users.
    pub snapshot_rate_bytes_per_sec: u64,
}

/// The slowest snapshot rate allowed: one chunk (openraft's 3 MiB) must go out well within openraft's
/// 10 s per-chunk timeout.
pub const MIN_SNAPSHOT_RATE: u64 = 1 << 20;

impl Default for RaftConfig {
    fn default() -> Self {
        // Loopback and LAN round trips are well under 10 ms: 150 ms heartbeats are cheap, and a 750 ms
        // minimum election timeout tolerates several lost heartbeats before disrupting a healthy leader.
        RaftConfig {
            heartbeat_ms: 150,
            election_timeout_min_ms: 750,
            election_timeout_max_ms: 1500,
            snapshot_after_logs: 5000,
            keep_logs_after_snapshot: 1000,
            max_payload_entries: 256,
            sync_every_entry: false,
            recovery_timeout_ms: 60_000,
            snapshot_rate_bytes_per_sec: 64 << 20,
        }
    }
}

impl RaftConfig {
    /// Refuse settings openraft would reject later (at a less helpful moment) or that cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let zero = [
            ("heartbeat_ms", self.heartbeat_ms),
            ("election_timeout_min_ms", self.election_timeout_min_ms),
            ("snapshot_after_logs", self.snapshot_after_logs),
            ("max_payload_entries", self.max_payload_entries),
        ];
        if let Some((key, _)) = zero.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Raft(format!("`{key}` must be greater than 0")));
        }
        if self.snapshot_rate_bytes_per_sec != 0 && self.snapshot_rate_bytes_per_sec < MIN_SNAPSHOT_RATE {
            return Err(ConfigError::Raft(format!(
                "`snapshot_rate_bytes_per_sec` ({}) must be 0 (unlimited) or at least {MIN_SNAPSHOT_RATE}",
                self.snapshot_rate_bytes_per_sec
            )));
        }
        if self.election_timeout_min_ms >= self.election_timeout_max_ms {
            return Err(ConfigError::Raft(format!(
                "`election_timeout_min_ms` ({}) must be less than `election_timeout_max_ms` ({})",
                self.election_timeout_min_ms, self.election_timeout_max_ms
            )));
        }
        if self.heartbeat_ms >= self.election_timeout_min_ms {
            return Err(ConfigError::Raft(format!(
                "`heartbeat_ms` ({}) must be less than `election_timeout_min_ms` ({}), or followers \
                 start elections against a healthy leader",
                self.heartbeat_ms, self.election_timeout_min_ms
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_for_us_and_openraft() {
        let raft = RaftConfig::default();
        raft.validate().expect("defaults valid");
        crate::router::MultiRaftConfig::from_raft(ferrum_proto::NodeId(1), "127.0.0.1:1".into(), &raft)
            .openraft()
            .expect("openraft accepts the defaults");
    }

    #[test]
    fn min_not_below_max_is_refused() {
        let raft = RaftConfig { election_timeout_min_ms: 1500, election_timeout_max_ms: 1500, ..Default::default() };
        let msg = raft.validate().unwrap_err().to_string();
        assert!(msg.contains("election_timeout_min_ms"), "{msg}");
    }

    #[test]
    fn heartbeat_not_below_min_is_refused() {
        let raft = RaftConfig { heartbeat_ms: 800, ..Default::default() };
        let msg = raft.validate().unwrap_err().to_string();
        assert!(msg.contains("heartbeat_ms"), "{msg}");
    }

    #[test]
    fn zero_is_refused() {
        let raft = RaftConfig { max_payload_entries: 0, ..Default::default() };
        let msg = raft.validate().unwrap_err().to_string();
        assert!(msg.contains("max_payload_entries"), "{msg}");
    }
}
