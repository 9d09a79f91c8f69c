//! `ferrum cluster|node|volume|partition ...`: the admin CLI, over the admin HTTP API of any master.
//!
//! The `ferrum` binary (client crate) flattens [`AdminCommand`] into its subcommands and hands it to
//! [`main`] (or awaits [`run`] from async code):
//!
//! ```ignore
//! #[derive(clap::Subcommand)]
//! enum Command {
//!     #[command(flatten)]
//!     Admin(ferrum_master::cli::AdminCommand),
//!     // mount, dev, ...
//! }
//! // Command::Admin(cmd) => ferrum_master::cli::main(cmd),
//! ```

mod client;
pub mod format;
pub mod http;
mod render;

use std::io::Write;
use std::process::ExitCode;

use ferrum_proto::{ClientId, OpId, RequestId};

pub use client::{AdminClient, CliError};

/// Where the admin API listens unless told otherwise.
pub const DEFAULT_ADMIN_ADDR: &str = "127.0.0.1:17080";

/// How to reach the masters; given at any level (`ferrum volume list --admin h:p`).
#[derive(clap::Args, Debug, Clone)]
pub struct Connection {
    /// Admin API address(es) of the masters, i.e. their --admin-listen (HOST:PORT, comma separated;
    /// any one will do). Not their RPC port, which `ferrum mount --master` takes.
    #[arg(long, global = true, env = "FERRUM_ADMIN", value_delimiter = ',', default_value = DEFAULT_ADMIN_ADDR)]
    pub admin: Vec<String>,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum AdminCommand {
    /// The cluster as a whole.
    Cluster(ClusterArgs),
    /// Metanodes and datanodes.
    Node(NodeArgs),
    /// Volumes: create, list, info, delete.
    Volume(VolumeArgs),
    /// Meta and data partitions.
    Partition(PartitionArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub cmd: ClusterCmd,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum ClusterCmd {
    /// Health (OK / degraded / unavailable, with reasons), leader, masters, node counts, volumes,
    /// partitions, replica moves in flight, enabled features.
    Status {
        /// Refresh every `--interval` until interrupted, with the progress of replica moves.
        #[arg(long)]
        watch: bool,
        /// Seconds between refreshes of `--watch`.
        #[arg(long, default_value_t = 2.0)]
        interval: f64,
    },
    /// Take a master out of the master group (its id as `cluster status` shows it). The group
    /// keeps at least one voter; stop the removed master afterwards.
    RemoveMaster { id: u64 },
}

#[derive(clap::Args, Debug, Clone)]
pub struct NodeArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub cmd: NodeCmd,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum NodeCmd {
    /// Every registered instance: role, address, host, status, partitions, capacity.
    List,
    /// Move every replica off a node (a new replica is added before the old one goes, so partitions
    /// never have fewer copies than configured); progress shows in `node list` and `cluster status`.
    Decommission { id: u64 },
    /// Forget a node; refused while it still holds replicas (decommission it first).
    Remove { id: u64 },
}

#[derive(clap::Args, Debug, Clone)]
pub struct VolumeArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub cmd: VolumeCmd,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum VolumeCmd {
    /// Create a volume and its partitions.
    Create {
        name: String,
        /// Replicas of every partition (1 to 5).
        #[arg(long, default_value_t = 3)]
        replicas: u8,
        /// Capacity, e.g. 100G (binary units); unlimited if not given.
        #[arg(long, value_parser = format::parse_size)]
        capacity: Option<u64>,
        /// Owner recorded with the volume [default: $USER].
        #[arg(long)]
        owner: Option<String>,
    },
    /// All volumes.
    List,
    /// One volume.
    Info { name: String },
    /// Delete a volume and remove its partitions from their nodes.
    Delete { name: String },
}

#[derive(clap::Args, Debug, Clone)]
pub struct PartitionArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub cmd: PartitionCmd,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum PartitionCmd {
    /// Partitions with their replicas, leader and state.
    List {
        /// Only this volume's.
        #[arg(long)]
        volume: Option<String>,
    },
}

/// Runs one admin command, writing its output to `out`.
pub async fn run(cmd: &AdminCommand, out: &mut dyn Write) -> Result<(), CliError> {
    let conn = match cmd {
        AdminCommand::Cluster(a) => &a.conn,
        AdminCommand::Node(a) => &a.conn,
        AdminCommand::Volume(a) => &a.conn,
        AdminCommand::Partition(a) => &a.conn,
    };
    let api = AdminClient::new(conn.admin.clone());
    let json = conn.json;
    let text = match cmd {
        AdminCommand::Cluster(ClusterArgs { cmd: ClusterCmd::Status { watch: true, interval }, .. }) => {
            return watch(&api, json, *interval, out).await;
        }
        AdminCommand::Cluster(ClusterArgs { cmd: ClusterCmd::Status { .. }, .. }) => {
            render::status(&api.get("/api/v1/cluster").await?, json)?
        }
        AdminCommand::Cluster(ClusterArgs { cmd: ClusterCmd::RemoveMaster { id }, .. }) => {
            render::removed_master(*id, &api.send("DELETE", &format!("/api/v1/masters/{id}"), None).await?, json)?
        }
        AdminCommand::Node(NodeArgs { cmd: NodeCmd::List, .. }) => {
            render::nodes(&api.get("/api/v1/nodes").await?, json)?
        }
        AdminCommand::Node(NodeArgs { cmd: NodeCmd::Decommission { id }, .. }) => {
            api.send("POST", &format!("/api/v1/nodes/{id}/decommission"), None).await?;
            if json {
                "{}\n".to_string()
            } else {
                format!("node {id} is being decommissioned: its replicas are moving (see `ferrum node list`)\n")
            }
        }
        AdminCommand::Node(NodeArgs { cmd: NodeCmd::Remove { id }, .. }) => {
            api.send("DELETE", &format!("/api/v1/nodes/{id}"), None).await?;
            if json {
                "{}\n".to_string()
            } else {
                format!("node {id} removed\n")
            }
        }
        AdminCommand::Volume(a) => match &a.cmd {
            VolumeCmd::Create { name, replicas, capacity, owner } => {
                let body = serde_json::json!({
                    "name": name,
                    "replicas": replicas,
                    "capacity": capacity.unwrap_or(0),
                    "owner": owner.clone().or_else(|| std::env::var("USER").ok()).unwrap_or_default(),
                    // One op id for this command: a retry after a lost answer is not a conflict.
                    "op": new_op(),
                });
                render::created(&api.send("POST", "/api/v1/volumes", Some(body)).await?, json)?
            }
            VolumeCmd::List => render::volumes(&api.get("/api/v1/volumes").await?, json)?,
            VolumeCmd::Info { name } => {
                render::volume(&api.get(&format!("/api/v1/volumes/{}", path_escape(name))).await?, json)?
            }
            VolumeCmd::Delete { name } => {
                let op = new_op();
                let path =
                    format!("/api/v1/volumes/{}?op_client={}&op_request={}", path_escape(name), op.client, op.request);
                api.send("DELETE", &path, None).await?;
                if json {
                    "{}\n".to_string()
                } else {
                    format!("deleted volume {name:?}; its partitions are being removed from their nodes\n")
                }
            }
        },
        AdminCommand::Partition(PartitionArgs { cmd: PartitionCmd::List { volume }, .. }) => {
            let path = match volume {
                Some(v) => format!("/api/v1/partitions?volume={}", path_escape(v)),
                None => "/api/v1/partitions".to_string(),
            };
            render::partitions(&api.get(&path).await?, json)?
        }
    };
    out.write_all(text.as_bytes()).map_err(|e| CliError::Output(e.to_string()))?;
    Ok(())
}

/// `cluster status --watch`: the status, redrawn every `interval` seconds until interrupted. A master
/// that cannot be reached is shown as such, and the watch goes on.
async fn watch(api: &AdminClient, json: bool, interval: f64, out: &mut dyn Write) -> Result<(), CliError> {
    let period = std::time::Duration::from_secs_f64(interval.max(0.2));
    loop {
        let text = match api.get("/api/v1/cluster").await {
            Ok(v) => render::status(&v, json)?,
            Err(e) => format!("health:      UNKNOWN (no master answers: {e})\n"),
        };
        // Clear the screen and go home, like watch(1).
        let frame = format!("\x1b[2J\x1b[H{text}");
        out.write_all(frame.as_bytes()).and_then(|_| out.flush()).map_err(|e| CliError::Output(e.to_string()))?;
        tokio::time::sleep(period).await;
    }
}

/// Runs one admin command on a runtime of its own, printing the output to stdout or one error line
/// to stderr: the whole of a synchronous `main`'s work for these subcommands.
pub fn main(cmd: AdminCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ferrum: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&cmd, &mut std::io::stdout())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrum: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn new_op() -> OpId {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    OpId::new(ClientId(random), RequestId(1))
}

/// Volume names are restricted to `[A-Za-z0-9._-]`, but a typo must not turn into another path.
fn path_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
