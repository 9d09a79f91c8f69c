//! Command-line flags shared by every service, merged over the optional TOML file.
//!
//! Precedence: flag > file > default. Everything is checked here, before any port is bound or any
//! file is written, so a bad setting fails the start with one line naming the flag and the key.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::de::DeserializeOwned;

use super::config_file::{self, FileConfig};
use super::error::ConfigError;
use super::raft_config::RaftConfig;

/// Flags every service accepts; `#[command(flatten)]` this into the binary's clap parser.
///
/// They are all optional for clap: the file may supply them, and `load` names whatever is missing.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct InstanceArgs {
    /// TOML config file with [instance], [raft] and a role section; flags override it.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Address for RPC and Raft traffic, e.g. 127.0.0.1:17010 (port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// HOST:PORT other instances use to reach this one [default: the --listen address].
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: Option<String>,

    /// Directory for this instance's data; one instance per directory.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Address for the Prometheus /metrics and /health HTTP endpoint (off if not given).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// Log level or filter directive [default: info]; RUST_LOG, if set, overrides it.
    #[arg(long, value_name = "LEVEL")]
    pub log: Option<String>,

    /// RocksDB block cache in MiB, shared by all of this instance's Raft groups [default: 128]: what
    /// keeps reads of a large namespace off the SST files.
    #[arg(long, value_name = "MIB")]
    pub block_cache_mib: Option<u64>,
}

/// The merged, validated settings of one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceConfig {
    pub listen: SocketAddr,
    /// HOST:PORT; never a wildcard address.
    pub advertise: String,
    pub data_dir: PathBuf,
    pub metrics_listen: Option<SocketAddr>,
    pub log: String,
    pub raft: RaftConfig,
    /// RocksDB block cache size (see [`crate::store::StoreOptions`]).
    pub block_cache_mib: u64,
}

pub const DEFAULT_LOG: &str = "info";
/// 128 MiB held the blocks a 1,000,000-file namespace's lookups touch (docs/performance.md).
pub const DEFAULT_BLOCK_CACHE_MIB: u64 = 128;

/// Merges `args` over the file named by `--config` (if any) and returns the instance settings and the
/// role-specific `[section]` (its `Default` if absent). `S` should be `#[serde(deny_unknown_fields)]`.
pub fn load<S: DeserializeOwned + Default>(
    args: &InstanceArgs,
    section: &str,
) -> Result<(InstanceConfig, S), ConfigError> {
    debug_assert!(section != "instance" && section != "raft", "role section name clashes");
    let file: FileConfig<S> = match &args.config {
        Some(path) => config_file::read(path, section)?,
        None => FileConfig::default(),
    };
    let config = merge(args, file.instance, file.raft)?;
    Ok((config, file.role))
}

fn merge(
    args: &InstanceArgs,
    file: config_file::InstanceSection,
    raft: RaftConfig,
) -> Result<InstanceConfig, ConfigError> {
    let listen = args.listen.or(file.listen).ok_or(ConfigError::Missing {
        what: "listen address",
        flag: "--listen ADDR",
        key: "listen",
    })?;
    let data_dir = args.data_dir.clone().or(file.data_dir).ok_or(ConfigError::Missing {
        what: "data dir",
        flag: "--data-dir DIR",
        key: "data_dir",
    })?;
    if data_dir.as_os_str().is_empty() {
        return Err(bad("--data-dir", "data_dir", "", "must not be empty"));
    }
    let advertise = match args.advertise.clone().or(file.advertise) {
        Some(advertise) => {
            check_advertise(&advertise)?;
            advertise
        }
        None if listen.ip().is_unspecified() => {
            return Err(bad(
                "--listen",
                "listen",
                &listen.to_string(),
                "a wildcard address cannot be advertised to other instances; also pass --advertise HOST:PORT",
            ))
        }
        // Port 0 stays 0 until the caller binds and calls `set_bound_listen`.
        None => listen.to_string(),
    };
    let log = args.log.clone().or(file.log).unwrap_or_else(|| DEFAULT_LOG.to_string());
    super::logging::check_filter(&log, "--log / `log`")?;
    let block_cache_mib = args.block_cache_mib.or(file.block_cache_mib).unwrap_or(DEFAULT_BLOCK_CACHE_MIB);
    if block_cache_mib == 0 || block_cache_mib > 1 << 20 {
        return Err(bad(
            "--block-cache-mib",
            "block_cache_mib",
            &block_cache_mib.to_string(),
            "must be from 1 to 1048576 (MiB)",
        ));
    }
    raft.validate()?;
    Ok(InstanceConfig {
        listen,
        advertise,
        data_dir,
        metrics_listen: args.metrics_listen.or(file.metrics_listen),
        log,
        raft,
        block_cache_mib,
    })
}

impl InstanceConfig {
    /// How this instance opens its RocksDB.
    pub fn store_options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions { block_cache_bytes: (self.block_cache_mib << 20) as usize }
    }

    /// Records the address actually bound; when `--listen` asked for port 0 and the advertised address
    /// was derived from it, the real port is advertised (how tests run many instances on one host).
    pub fn set_bound_listen(&mut self, bound: SocketAddr) {
        if self.advertise == self.listen.to_string() {
            self.advertise = bound.to_string();
        }
        self.listen = bound;
    }
}

fn bad(flag: &'static str, key: &'static str, value: &str, reason: &str) -> ConfigError {
    ConfigError::BadValue { flag, key, value: value.to_string(), reason: reason.to_string() }
}

/// HOST:PORT where HOST is a name or an address other hosts can dial: not empty, not a wildcard,
/// IPv6 in brackets, port not 0.
fn check_advertise(advertise: &str) -> Result<(), ConfigError> {
    let refuse = |reason: &str| Err(bad("--advertise", "advertise", advertise, reason));
    if let Ok(addr) = advertise.parse::<SocketAddr>() {
        if addr.ip().is_unspecified() {
            return refuse("a wildcard address cannot be dialled; give this host's address or name");
        }
        if addr.port() == 0 {
            return refuse("port 0 cannot be dialled; give the port other instances should use");
        }
        return Ok(());
    }
    let Some((host, port)) = advertise.rsplit_once(':') else {
        return refuse("expected HOST:PORT");
    };
    if host.is_empty() || host.contains(':') || host.contains('[') {
        return refuse("expected HOST:PORT, with IPv6 addresses in brackets ([::1]:17010)");
    }
    match port.parse::<u16>() {
        Ok(0) => refuse("port 0 cannot be dialled; give the port other instances should use"),
        Ok(_) => Ok(()),
        Err(_) => refuse("the port must be a number from 1 to 65535"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use serde::Deserialize;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        instance: InstanceArgs,
    }

    #[derive(Debug, Default, PartialEq, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Master {
        replicas: u32,
    }

    fn args(flags: &[&str]) -> InstanceArgs {
        let argv = std::iter::once("ferrum-master").chain(flags.iter().copied());
        Cli::try_parse_from(argv).expect("flags parse").instance
    }

    fn config_file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut file, text.as_bytes()).expect("write config");
        file
    }

    fn load_master(args: &InstanceArgs) -> Result<(InstanceConfig, Master), ConfigError> {
        load(args, "master")
    }

    #[test]
    fn flags_only() {
        let a = args(&["--listen", "127.0.0.1:17010", "--data-dir", "/tmp/m1", "--metrics-listen", "127.0.0.1:17090"]);
        let (config, master) = load_master(&a).expect("valid flags");
        assert_eq!(config.listen, "127.0.0.1:17010".parse().expect("addr"));
        assert_eq!(config.advertise, "127.0.0.1:17010", "advertise defaults to listen");
        assert_eq!(config.data_dir, PathBuf::from("/tmp/m1"));
        assert_eq!(config.metrics_listen, Some("127.0.0.1:17090".parse().expect("addr")));
        assert_eq!(config.log, "info");
        assert_eq!(config.raft, RaftConfig::default());
        assert_eq!(config.block_cache_mib, DEFAULT_BLOCK_CACHE_MIB);
        assert_eq!(master, Master::default());
    }

    #[test]
    fn block_cache_from_file_and_flag() {
        let file = config_file("[instance]\nlisten = \"127.0.0.1:1\"\ndata_dir = \"/x\"\nblock_cache_mib = 512\n");
        let path = file.path().display().to_string();
        let (config, _) = load_master(&args(&["--config", &path])).expect("valid");
        assert_eq!(config.block_cache_mib, 512);
        assert_eq!(config.store_options().block_cache_bytes, 512 << 20);
        let (config, _) = load_master(&args(&["--config", &path, "--block-cache-mib", "64"])).expect("valid");
        assert_eq!(config.block_cache_mib, 64, "the flag wins");
        let msg = load_master(&args(&["--config", &path, "--block-cache-mib", "0"])).unwrap_err().to_string();
        assert!(msg.contains("--block-cache-mib") && msg.contains("`block_cache_mib`"), "{msg}");
    }

    #[test]
    fn file_only() {
        let file = config_file(
            "[instance]\nlisten = \"127.0.0.1:17011\"\nadvertise = \"m1.example:17011\"\n\
             data_dir = \"/tmp/m2\"\nlog = \"debug\"\n[raft]\nheartbeat_ms = 50\n[master]\nreplicas = 3\n",
        );
        let a = args(&["--config", &file.path().display().to_string()]);
        let (config, master) = load_master(&a).expect("valid file");
        assert_eq!(config.listen.port(), 17011);
        assert_eq!(config.advertise, "m1.example:17011");
        assert_eq!(config.data_dir, PathBuf::from("/tmp/m2"));
        assert_eq!(config.metrics_listen, None);
        assert_eq!(config.log, "debug");
        assert_eq!(config.raft.heartbeat_ms, 50);
        assert_eq!(master.replicas, 3);
    }

    #[test]
    fn flag_overrides_file() {
        let file = config_file("[instance]\nlisten = \"127.0.0.1:17011\"\ndata_dir = \"/tmp/file\"\nlog = \"debug\"\n");
        let path = file.path().display().to_string();
        let a = args(&["--config", &path, "--listen", "127.0.0.1:17012", "--log", "warn"]);
        let (config, _) = load_master(&a).expect("valid");
        assert_eq!(config.listen.port(), 17012);
        assert_eq!(config.advertise, "127.0.0.1:17012", "advertise follows the effective listen");
        assert_eq!(config.data_dir, PathBuf::from("/tmp/file"));
        assert_eq!(config.log, "warn");
    }

    #[test]
    fn missing_listen_names_flag_and_key() {
        let msg = load_master(&args(&["--data-dir", "/tmp/x"])).unwrap_err().to_string();
        assert!(msg.contains("--listen") && msg.contains("`listen`"), "{msg}");
        let msg = load_master(&args(&["--listen", "127.0.0.1:1"])).unwrap_err().to_string();
        assert!(msg.contains("--data-dir") && msg.contains("`data_dir`"), "{msg}");
    }

    #[test]
    fn unknown_section_and_keys_in_file_are_named() {
        let cases = [
            ("[instance]\nlisten = \"127.0.0.1:1\"\n[datanode]\n", "[datanode]"),
            ("[instance]\ndata-dir = \"/x\"\n", "`data-dir`"),
            ("[raft]\nheartbeat = 10\n", "`heartbeat`"),
            ("[master]\nreplica = 3\n", "`replica`"),
        ];
        for (text, named) in cases {
            let file = config_file(text);
            let path = file.path().display().to_string();
            let msg = load_master(&args(&["--config", &path])).unwrap_err().to_string();
            assert!(msg.contains(named), "{msg}");
            assert!(msg.contains(&path), "{msg}");
        }
    }

    #[test]
    fn bad_raft_timings_are_refused() {
        let file = config_file("[raft]\nelection_timeout_min_ms = 2000\nelection_timeout_max_ms = 1000\n");
        let path = file.path().display().to_string();
        let a = args(&["--config", &path, "--listen", "127.0.0.1:1", "--data-dir", "/x"]);
        let msg = load_master(&a).unwrap_err().to_string();
        assert!(msg.contains("election_timeout_min_ms"), "{msg}");
    }

    #[test]
    fn missing_config_file_names_it() {
        let msg = load_master(&args(&["--config", "/nonexistent/ferrum.toml"])).unwrap_err().to_string();
        assert!(msg.contains("/nonexistent/ferrum.toml"), "{msg}");
    }

    #[test]
    fn wildcard_listen_needs_advertise() {
        let base = ["--listen", "0.0.0.0:17010", "--data-dir", "/x"];
        let msg = load_master(&args(&base)).unwrap_err().to_string();
        assert!(msg.contains("--advertise"), "{msg}");

        let mut flags = base.to_vec();
        flags.extend(["--advertise", "10.0.0.5:17010"]);
        let (config, _) = load_master(&args(&flags)).expect("valid");
        assert_eq!(config.advertise, "10.0.0.5:17010");
    }

    #[test]
    fn bad_advertise_is_refused() {
        for advertise in ["0.0.0.0:17010", "[::]:17010", "host", "host:0", "host:x", ":17010", "::1:17010"] {
            let a = args(&["--listen", "127.0.0.1:1", "--data-dir", "/x", "--advertise", advertise]);
            let msg = load_master(&a).unwrap_err().to_string();
            assert!(msg.contains("--advertise"), "{advertise}: {msg}");
        }
        for advertise in ["m1.example:17010", "[::1]:17010", "10.0.0.5:1"] {
            let a = args(&["--listen", "127.0.0.1:1", "--data-dir", "/x", "--advertise", advertise]);
            load_master(&a).expect(advertise);
        }
    }

    #[test]
    fn bad_log_filter_is_refused() {
        let a = args(&["--listen", "127.0.0.1:1", "--data-dir", "/x", "--log", "lots=[[["]);
        let msg = load_master(&a).unwrap_err().to_string();
        assert!(msg.contains("--log"), "{msg}");
    }

    #[test]
    fn port_zero_advertises_the_bound_port() {
        let a = args(&["--listen", "127.0.0.1:0", "--data-dir", "/x"]);
        let (mut config, _) = load_master(&a).expect("valid");
        config.set_bound_listen("127.0.0.1:40123".parse().expect("addr"));
        assert_eq!(config.advertise, "127.0.0.1:40123");
        assert_eq!(config.listen.port(), 40123);
    }
}
