//! A raftstore instance hosting replicated key-value groups: the multi-process Raft tests run this
//! binary the way the real services run (one port for Raft and requests, one RocksDB, metrics, locks).

use std::sync::Arc;

use clap::Parser;
use ferrum_proto::NodeId;
use ferrum_raftstore::instance::{self, InstanceArgs, MainError, Role};
use ferrum_raftstore::kv::{KvApp, KvService};
use ferrum_raftstore::{App, AppFactory, Instance};

const ROLE: Role = Role::Other("kvnode");

#[derive(Parser, Debug)]
#[command(name = "ferrum-kvnode", about = "Replicated key-value test node (raftstore test harness)")]
struct Args {
    /// This instance's Raft node id (the real services get theirs from the master).
    #[arg(long)]
    node_id: u64,
    #[command(flatten)]
    instance: InstanceArgs,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    instance::run(ROLE, move || run(args))
}

async fn run(args: Args) -> Result<(), MainError> {
    let (config, ()) = instance::load::<()>(&args.instance, "kvnode")?;
    let inst = Instance::start(config, ROLE).await?;
    let factory: AppFactory = Arc::new(|_, _| Arc::new(KvApp) as Arc<dyn App>);
    let raft = inst.open_raft(NodeId::from(args.node_id), factory).await?;
    inst.serve(Arc::new(KvService { raft: raft.clone() }), Some(raft)).await?;
    Ok(())
}
