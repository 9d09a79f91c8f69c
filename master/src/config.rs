//! The master's flags and `[master]` config section, merged (flag > file > default) and checked
//! before anything starts.

use std::net::SocketAddr;
use std::time::Duration;

use ferrum_raftstore::instance::{self, ConfigError, InstanceArgs, InstanceConfig};
use serde::Deserialize;

use crate::liveness::Timeouts;
use crate::resources::Ttls;

/// `ferrum-master` command line.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "ferrum-master", version, about = "Ferrum master: the Raft-replicated cluster manager")]
pub struct MasterArgs {
    #[command(flatten)]
    pub instance: InstanceArgs,

    /// Bootstrap a new cluster with these masters (HOST:PORT as each advertises itself, comma
    /// separated, this one included; the same list on every one of them). Ignored once this master
    /// has state. Default: a cluster of this master alone.
    #[arg(long, value_name = "HOST:PORT[,...]", value_delimiter = ',')]
    pub peers: Vec<String>,

    /// Join an existing cluster through any of its masters, instead of bootstrapping one.
    #[arg(long, value_name = "HOST:PORT[,...]", value_delimiter = ',', conflicts_with = "peers")]
    pub join: Vec<String>,

    /// Address of the admin HTTP API (JSON), e.g. 127.0.0.1:17080 (off if not given).
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,

    /// How long a node stays dead before its replicas are rebuilt elsewhere (`[master]
    /// repair_grace_ms`).
    #[arg(long, value_name = "MS")]
    pub repair_grace_ms: Option<u64>,
}

/// The `[master]` section; every key may be left out.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MasterSection {
    pub peers: Vec<String>,
    pub join: Vec<String>,
    pub admin_listen: Option<SocketAddr>,
    /// A node silent this long is suspect: no new partitions are placed on it.
    pub suspect_after_ms: u64,
    /// A node silent this long is dead: its replicas count as missing.
    pub dead_after_ms: u64,
    /// How long a fetched free-space figure is trusted.
    pub resource_space_ttl_ms: u64,
    /// How long fetched memory, cores, version and features are trusted.
    pub resource_facts_ttl_ms: u64,
    /// Meta partitions of a new volume; all but the last get `meta_partition_inodes` inodes each.
    pub meta_partitions_per_volume: u32,
    pub meta_partition_inodes: u64,
    /// Data partitions of a new volume.
    pub data_partitions_per_volume: u32,
    /// A data partition holding this many bytes is full (read-only for new extents).
    pub data_partition_size: u64,
    /// A volume gets new data partitions when fewer than this many are writable.
    pub min_writable_data_partitions: u32,
    /// The last meta partition is split once it holds this many inodes.
    pub meta_split_inodes: u64,
    /// Inodes left to the old partition after a split (it ends at its highest inode + 1 + this).
    pub meta_split_step: u64,
    /// Nodes with less free space receive no new partitions.
    pub min_free_bytes: u64,
    /// Period of the leader's background work (finishing creations and deletions, growth).
    pub reconcile_interval_ms: u64,
    /// Timeout of one master → node call (`CreatePartition`, `GetResources`, ...).
    pub node_rpc_timeout_ms: u64,
    /// A node dead (see `dead_after_ms`) this much longer gets its replicas rebuilt on other nodes. A
    /// node back within it costs nothing; one back later finds its old replicas deleted.
    pub repair_grace_ms: u64,
    /// Replica moves (repairs and decommissions) in flight at once, cluster-wide.
    pub repair_concurrency: u32,
    /// How often the leader spreads partition leaders evenly over instances and hosts (a few
    /// leadership handovers per pass, each stalling its partition for about one election timeout);
    /// 0 turns it off. At least 1000 (node heartbeats report leaders once a second).
    pub leader_balance_interval_ms: u64,
}

impl Default for MasterSection {
    fn default() -> Self {
        MasterSection {
            peers: Vec::new(),
            join: Vec::new(),
            admin_listen: None,
            suspect_after_ms: 5_000,
            dead_after_ms: 30_000,
            resource_space_ttl_ms: 10_000,
            resource_facts_ttl_ms: 600_000,
            meta_partitions_per_volume: 1,
            meta_partition_inodes: 1 << 24,
            data_partitions_per_volume: 3,
            data_partition_size: 32 << 30,
            min_writable_data_partitions: 2,
            meta_split_inodes: 1 << 22,
            meta_split_step: 1 << 20,
            min_free_bytes: 64 << 20,
            reconcile_interval_ms: 1_000,
            node_rpc_timeout_ms: 10_000,
            repair_grace_ms: 300_000,
            repair_concurrency: 8,
            leader_balance_interval_ms: 10_000,
        }
    }
}

impl MasterSection {
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            suspect_after: Duration::from_millis(self.suspect_after_ms),
            dead_after: Duration::from_millis(self.dead_after_ms),
        }
    }

    pub fn ttls(&self) -> Ttls {
        Ttls {
            space: Duration::from_millis(self.resource_space_ttl_ms),
            facts: Duration::from_millis(self.resource_facts_ttl_ms),
        }
    }

    pub fn node_rpc_timeout(&self) -> Duration {
        Duration::from_millis(self.node_rpc_timeout_ms)
    }

    /// Silence after which a node's replicas are rebuilt elsewhere: dead, then the grace period.
    pub fn repair_after(&self) -> Duration {
        Duration::from_millis(self.dead_after_ms + self.repair_grace_ms)
    }

    /// `None`: leader balancing is off.
    pub fn leader_balance_interval(&self) -> Option<Duration> {
        (self.leader_balance_interval_ms > 0).then(|| Duration::from_millis(self.leader_balance_interval_ms))
    }

    pub fn reconcile_interval(&self) -> Duration {
        Duration::from_millis(self.reconcile_interval_ms)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("suspect_after_ms", self.suspect_after_ms),
            ("dead_after_ms", self.dead_after_ms),
            ("meta_partitions_per_volume", self.meta_partitions_per_volume as u64),
            ("meta_partition_inodes", self.meta_partition_inodes),
            ("data_partitions_per_volume", self.data_partitions_per_volume as u64),
            ("data_partition_size", self.data_partition_size),
            ("meta_split_inodes", self.meta_split_inodes),
            ("meta_split_step", self.meta_split_step),
            ("reconcile_interval_ms", self.reconcile_interval_ms),
            ("node_rpc_timeout_ms", self.node_rpc_timeout_ms),
            ("repair_concurrency", self.repair_concurrency as u64),
        ];
        if let Some((key, v)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(bad(key, &v.to_string(), "must be greater than 0"));
        }
        if self.leader_balance_interval_ms != 0 && self.leader_balance_interval_ms < 1000 {
            return Err(bad(
                "leader_balance_interval_ms",
                &self.leader_balance_interval_ms.to_string(),
                "must be 0 (off) or at least 1000",
            ));
        }
        if self.dead_after_ms <= self.suspect_after_ms {
            return Err(bad(
                "dead_after_ms",
                &self.dead_after_ms.to_string(),
                &format!("must be greater than suspect_after_ms ({})", self.suspect_after_ms),
            ));
        }
        for (key, list) in [("peers", &self.peers), ("join", &self.join)] {
            if let Some(a) = list.iter().find(|a| !is_host_port(a)) {
                return Err(bad(key, a, "expected HOST:PORT"));
            }
        }
        if !self.peers.is_empty() && !self.join.is_empty() {
            return Err(bad(
                "join",
                &self.join.join(","),
                "give either peers (a new cluster) or join (an existing one)",
            ));
        }
        Ok(())
    }
}

fn bad(key: &'static str, value: &str, reason: &str) -> ConfigError {
    let flag = match key {
        "peers" => "--peers",
        "join" => "--join",
        "admin_listen" => "--admin-listen",
        "repair_grace_ms" => "--repair-grace-ms",
        _ => "[master]",
    };
    ConfigError::BadValue { flag, key, value: value.to_string(), reason: reason.to_string() }
}

fn is_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0),
        None => false,
    }
}

/// Everything a master instance starts from.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    pub instance: InstanceConfig,
    pub master: MasterSection,
}

impl MasterConfig {
    pub fn load(args: &MasterArgs) -> Result<MasterConfig, ConfigError> {
        let (instance, mut master) = instance::load::<MasterSection>(&args.instance, "master")?;
        if !args.peers.is_empty() {
            master.peers = args.peers.clone();
            master.join.clear();
        }
        if !args.join.is_empty() {
            master.join = args.join.clone();
            master.peers.clear();
        }
        if args.admin_listen.is_some() {
            master.admin_listen = args.admin_listen;
        }
        if let Some(g) = args.repair_grace_ms {
            master.repair_grace_ms = g;
        }
        master.peers.retain(|p| !p.is_empty());
        master.join.retain(|p| !p.is_empty());
        master.validate()?;
        Ok(MasterConfig { instance, master })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn load(argv: &[&str], file: Option<&str>) -> Result<MasterConfig, ConfigError> {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let mut args: Vec<String> = vec![
            "ferrum-master".into(),
            "--listen".into(),
            "127.0.0.1:7000".into(),
            "--data-dir".into(),
            "/tmp/x".into(),
        ];
        if let Some(text) = file {
            std::fs::write(tmp.path(), text).unwrap();
            args.push("--config".into());
            args.push(tmp.path().display().to_string());
        }
        args.extend(argv.iter().map(|s| s.to_string()));
        MasterConfig::load(&MasterArgs::try_parse_from(args).unwrap())
    }

    #[test]
    fn flags_override_the_file() {
        let c = load(
            &["--peers", "a:1,b:2", "--admin-listen", "127.0.0.1:9"],
            Some("[master]\npeers = [\"x:1\"]\ndead_after_ms = 60000\n"),
        )
        .unwrap();
        assert_eq!(c.master.peers, vec!["a:1", "b:2"]);
        assert_eq!(c.master.admin_listen, Some("127.0.0.1:9".parse().unwrap()));
        assert_eq!(c.master.dead_after_ms, 60000);
        let c = load(&["--repair-grace-ms", "1500"], Some("[master]\nrepair_grace_ms = 9\n")).unwrap();
        assert_eq!(c.master.repair_grace_ms, 1500);
        assert_eq!(c.master.repair_after(), Duration::from_millis(31_500));
        let c = load(&["--join", "a:1"], Some("[master]\npeers = [\"x:1\"]\n")).unwrap();
        assert_eq!((c.master.join.len(), c.master.peers.len()), (1, 0));
    }

    #[test]
    fn bad_values_and_unknown_keys_are_refused() {
        let msg = load(&[], Some("[master]\nsuspect_after_ms = 10\ndead_after_ms = 5\n")).unwrap_err().to_string();
        assert!(msg.contains("dead_after_ms"), "{msg}");
        let msg = load(&[], Some("[master]\nreplicas = 3\n")).unwrap_err().to_string();
        assert!(msg.contains("replicas"), "{msg}");
        let msg = load(&["--peers", "nohost"], None).unwrap_err().to_string();
        assert!(msg.contains("--peers") && msg.contains("HOST:PORT"), "{msg}");
        let msg = load(&[], Some("[master]\npeers = [\"a:1\"]\njoin = [\"b:1\"]\n")).unwrap_err().to_string();
        assert!(msg.contains("either"), "{msg}");
    }
}
