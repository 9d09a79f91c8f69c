//! `ferrum-datanode`: parse flags, open the instance and its data partitions, serve until SIGTERM.

use clap::Parser;
use ferrum_datanode::{background, data_app_factory, DataConfig, DataContext, DataMetrics, DataService};
use ferrum_proto::msg::master::NodeRole;
use ferrum_raftstore::instance::{self, InstanceArgs, MainError, Role};
use ferrum_raftstore::node::{Node, NodeArgs};

#[derive(Parser, Debug)]
#[command(name = "ferrum-datanode", about = "Ferrum datanode: replicated data partitions")]
struct Args {
    #[command(flatten)]
    node: NodeArgs,
    #[command(flatten)]
    instance: InstanceArgs,
}

/// Entries per AppendEntries. A data entry carries up to `MAX_WRITE` (4 MiB), and openraft 0.9 times an
/// AppendEntries out after one heartbeat interval: the message must reach the follower, be decoded and
/// fsynced within it, or replication retries the same message forever. Budget ~40 ms per 4 MiB entry
/// (so 3 entries at the default 150 ms), and never more than 8 (32 MiB, well under the frame limit).
fn max_payload_entries(heartbeat_ms: u64, configured: u64) -> u64 {
    configured.min((heartbeat_ms / 40).clamp(1, 8))
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    instance::run(Role::Datanode, move || run(args))
}

async fn run(args: Args) -> Result<(), MainError> {
    let (mut config, section) = instance::load::<DataConfig>(&args.instance, "datanode")?;
    let raft = &mut config.raft;
    raft.max_payload_entries = max_payload_entries(raft.heartbeat_ms, raft.max_payload_entries);
    let mut ctx = None;
    let node = Node::start(config, NodeRole::Data, args.node, |inst| {
        let metrics = DataMetrics::register(&inst.metrics);
        let c = DataContext::new(inst.data_dir.path().to_path_buf(), inst.store.clone(), metrics, section);
        ctx = Some(c.clone());
        data_app_factory(c)
    })
    .await?;
    let ctx = ctx.expect("the factory closure ran");
    let svc = DataService::new(node.raft.clone(), ctx, node.inst.pool.clone());
    background::start(&svc, node.inst.shutdown.token());
    node.serve(svc).await?;
    Ok(())
}
