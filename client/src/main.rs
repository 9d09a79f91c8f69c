//! `ferrum`: the command line of a Ferrum cluster's users and operators.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ferrum_client::cli::{self, MountArgs, UmountArgs};
use ferrum_client::dev;

#[derive(Parser, Debug)]
#[command(name = "ferrum", version, about = "Ferrum, a distributed POSIX filesystem")]
struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Mount a volume: `ferrum mount --master HOST:PORT[,...] --volume NAME MOUNTPOINT`.
    Mount(MountArgs),
    /// Unmount a mounted volume.
    Umount(UmountArgs),
    /// A local cluster on this host: every instance a process with its own ports, a mounted volume.
    #[command(subcommand)]
    Dev(dev::DevCmd),
    /// Cluster administration over a master's admin API: `cluster`, `node`, `volume`, `partition`.
    #[command(flatten)]
    Admin(ferrum_master::cli::AdminCommand),
}

fn main() -> ExitCode {
    match Cli::parse().cmd {
        Command::Mount(args) => cli::run_mount(args),
        Command::Umount(args) => cli::run_umount(args),
        Command::Dev(cmd) => match dev::run(cmd) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ferrum dev: error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Admin(cmd) => ferrum_master::cli::main(cmd),
    }
}
