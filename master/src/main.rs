//! `ferrum-master`: parse flags, load the config, run the master until SIGTERM/SIGINT.

use clap::Parser;
use ferrum_master::{MasterArgs, MasterConfig};
use ferrum_raftstore::instance::{self, Role};

fn main() -> std::process::ExitCode {
    let args = MasterArgs::parse();
    instance::run(Role::Master, move || async move {
        let config = MasterConfig::load(&args)?;
        ferrum_master::run(config).await?;
        Ok(())
    })
}
