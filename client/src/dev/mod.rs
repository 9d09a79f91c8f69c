//! `ferrum dev`: a local cluster on one host for development, tests and benchmarks. Every instance is a
//! real process with its own ports, data dir and log under `--dir`; the state file lets later commands
//! (`ps`, `stop`, `start`, `down`) find them.

mod cluster_api;
mod commands;
mod layout;
mod process;
mod state;
mod table;

use std::path::PathBuf;

use clap::{Args, Subcommand};

pub use commands::run;
pub use layout::{DevRole, InstanceSpec};
pub use state::Cluster;

#[derive(Subcommand, Debug)]
pub enum DevCmd {
    /// Start masters, metanodes and datanodes as background processes, create a volume, mount it.
    /// Returns when the mount is usable.
    Up(UpArgs),
    /// List the cluster's instances: name, role, pid, addresses, status.
    Ps {
        #[arg(long)]
        dir: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Stop one instance (SIGTERM; SIGKILL with --kill).
    Stop {
        #[arg(long)]
        dir: PathBuf,
        name: String,
        #[arg(long)]
        kill: bool,
    },
    /// Start a stopped instance again, on its existing data.
    Start {
        #[arg(long)]
        dir: PathBuf,
        name: String,
    },
    /// Unmount, stop everything; with --purge also delete DIR.
    Down {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        purge: bool,
    },
}

#[derive(Args, Debug, Clone)]
pub struct UpArgs {
    /// Where the cluster keeps its data dirs, logs and state file (created if missing).
    #[arg(long)]
    pub dir: PathBuf,
    /// Mount the volume here (created if missing).
    #[arg(long)]
    pub mount: Option<PathBuf>,
    #[arg(long, default_value_t = 3)]
    pub masters: u16,
    #[arg(long, default_value_t = 3)]
    pub metanodes: u16,
    #[arg(long, default_value_t = 3)]
    pub datanodes: u16,
    /// Replica count of the volume.
    #[arg(long, default_value_t = 3)]
    pub replicas: u8,
    #[arg(long, default_value = "dev")]
    pub volume: String,
    /// First port; each instance takes a block of 4 consecutive ports from here.
    #[arg(long, default_value_t = 27000)]
    pub base_port: u16,
    /// `ferrum mount --op-timeout` for the mount: seconds an operation retries when the cluster cannot
    /// serve it, then EIO (default: the mount's, 60).
    #[arg(long, value_name = "SECS")]
    pub op_timeout: Option<f64>,
    /// How long to wait for the cluster to become healthy, in seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}
