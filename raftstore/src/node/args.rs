//! Command-line flags of metanodes and datanodes, on top of the instance flags.

/// Flattened into `ferrum-metanode` and `ferrum-datanode`.
#[derive(clap::Args, Debug, Clone)]
pub struct NodeArgs {
    /// Masters to register with (host:port, comma-separated); any one of them will do.
    #[arg(long, value_delimiter = ',')]
    pub master: Vec<String>,
    /// Pin this instance's node id instead of getting one from the master (tests, static layouts
    /// without a master). Stored in the data dir on first start.
    #[arg(long)]
    pub node_id: Option<u64>,
    /// Host name (failure domain) reported to the master, so replicas spread over hosts
    /// [default: this machine's host name].
    #[arg(long)]
    pub host: Option<String>,
    /// Interval of heartbeats to the master, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub heartbeat_ms: u64,
}

impl Default for NodeArgs {
    fn default() -> Self {
        NodeArgs { master: Vec::new(), node_id: None, host: None, heartbeat_ms: 1000 }
    }
}

/// This machine's host name (from the kernel), or "localhost" if it cannot be read.
pub fn default_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
