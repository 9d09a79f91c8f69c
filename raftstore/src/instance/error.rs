//! Errors of instance start-up: config, data dir, ports, signals, the metrics server.
//!
//! Every message is ONE line (it ends up as `ferrum-<role>: error: <message>` on stderr, and in scripts'
//! logs), names the file, dir, port or key at fault, and says what the operator can do about it.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the configuration (flags plus optional TOML file) was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}; check the --config path")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A syntax error, an unknown section or key, or a value of the wrong type. `message` comes from
    /// serde/toml and names the key (`unknown field `hb`, expected one of ...`).
    #[error("invalid config file {path}, line {line}{}: {message}", in_section(.section))]
    Invalid { path: PathBuf, line: usize, section: Option<String>, message: String },

    #[error("no {what} given: pass {flag} or set `{key}` in the [instance] section of the config file")]
    Missing { what: &'static str, flag: &'static str, key: &'static str },

    #[error("invalid {flag} / `{key}` value {value:?}: {reason}")]
    BadValue { flag: &'static str, key: &'static str, value: String, reason: String },

    /// Raft timings or sizes that openraft would refuse or that cannot work (heartbeat >= election timeout).
    #[error("invalid [raft] config: {0}; fix the [raft] section of the config file")]
    Raft(String),

    #[error("invalid log filter {value:?} from {origin}: {reason}; use a level (error, warn, info, debug, trace) or a RUST_LOG-style directive")]
    LogFilter { origin: &'static str, value: String, reason: String },
}

fn in_section(section: &Option<String>) -> String {
    match section {
        Some(name) => format!(", in [{name}]"),
        None => String::new(),
    }
}

/// Why an instance could not start (or its plumbing failed).
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("data dir {} is locked by another instance{}; stop it or use another --data-dir", dir.display(), holder(*holder_pid))]
    DirLocked { dir: PathBuf, holder_pid: Option<u32> },

    #[error("data dir {} belongs to a {found} instance, not a {wanted}; use another --data-dir", dir.display())]
    RoleMismatch { dir: PathBuf, found: String, wanted: String },

    #[error("identity file {} is corrupt ({reason}); restore it from a backup, or if the dir holds no data delete the dir", path.display())]
    IdentityCorrupt { path: PathBuf, reason: String },

    #[error(
        "cannot listen on {addr} ({what}): address already in use; stop whatever holds the port or choose another one"
    )]
    PortInUse { addr: SocketAddr, what: String },

    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        addr: SocketAddr,
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot access {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot install the SIGTERM/SIGINT handlers: {0}")]
    Signals(#[source] std::io::Error),

    #[error("HTTP server on {addr} ({what}) failed: {source}")]
    Http {
        addr: String,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Config(#[from] ConfigError),
}

fn holder(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!(" (pid {pid})"),
        None => String::new(),
    }
}

impl InstanceError {
    /// Shorthand for the common "this file operation failed" case.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        InstanceError::Io { path: path.into(), source }
    }
}
