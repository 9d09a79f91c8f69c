//! `ferrum-metanode`: hosts meta partitions. Flags: the instance's (`--listen`, `--data-dir`, ...) and
//! the node's (`--master` or `--node-id`); config section `[metanode]` (see `MetaConfig`).

use std::sync::Arc;

use clap::Parser;
use ferrum_metanode::failpoint::Failpoints;
use ferrum_metanode::{meta_app_factory, sweeper, MetaConfig, MetaService};
use ferrum_proto::msg::master::NodeRole;
use ferrum_raftstore::instance::{self, InstanceArgs, MainError, Role};
use ferrum_raftstore::node::{Node, NodeArgs};

#[derive(Parser, Debug)]
#[command(
    name = "ferrum-metanode",
    version,
    about = "Ferrum metanode: hosts meta partitions (namespace, attributes, extent maps)"
)]
struct Args {
    #[command(flatten)]
    instance: InstanceArgs,
    #[command(flatten)]
    node: NodeArgs,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    instance::run(Role::Metanode, move || run(args))
}

async fn run(args: Args) -> Result<(), MainError> {
    let (config, meta) = instance::load::<MetaConfig>(&args.instance, "metanode")?;
    let node = Node::start(config, NodeRole::Meta, args.node, |_| meta_app_factory()).await?;
    let service = MetaService::new(node.raft.clone(), node.inst.pool.clone(), &meta, Failpoints::from_env());
    tokio::spawn(sweeper::run(service.peers().clone(), meta, node.inst.shutdown.token()));
    node.serve(Arc::new(service)).await?;
    Ok(())
}
