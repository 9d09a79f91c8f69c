//! The `[datanode]` section of an instance's config file.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Free disk space kept in reserve: a write that would eat into it gets `NoSpace` and the
    /// partition turns read-only (see `space`).
    pub reserve_bytes: u64,
    /// Scrubber read rate in bytes per second; 0 turns the scrubber off.
    pub scrub_bytes_per_sec: u64,
    /// Pause between two scrub passes over all partitions.
    pub scrub_interval_secs: u64,
    /// How often written extents are fsynced in the background (bounds the replay after a power loss).
    pub sync_interval_ms: u64,
    /// Client write bytes being replicated at once; more wait (backpressure instead of memory growth).
    pub max_inflight_write_bytes: u64,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            reserve_bytes: 1 << 30,
            scrub_bytes_per_sec: 16 << 20,
            scrub_interval_secs: 3600,
            sync_interval_ms: 1000,
            max_inflight_write_bytes: 256 << 20,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrum_raftstore::instance::{load, InstanceArgs};

    fn load_file(body: &str) -> Result<DataConfig, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.toml");
        std::fs::write(&path, format!("[instance]\nlisten = \"127.0.0.1:1\"\ndata_dir = \"/x\"\n[datanode]\n{body}"))
            .unwrap();
        let args = InstanceArgs { config: Some(path), ..Default::default() };
        load::<DataConfig>(&args, "datanode").map(|(_, c)| c).map_err(|e| e.to_string())
    }

    #[test]
    fn partial_section_keeps_defaults_and_unknown_keys_are_refused() {
        let c = load_file("reserve_bytes = 5").unwrap();
        assert_eq!(c, DataConfig { reserve_bytes: 5, ..Default::default() });
        let e = load_file("reserve = 5").unwrap_err();
        assert!(e.contains("reserve"), "{e}");
    }
}
