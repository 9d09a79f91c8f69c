//! `ferrum umount`: unmount a Ferrum (or any FUSE) mount; its server process then exits.

use std::process::ExitCode;

use super::{fail, UmountArgs};
use crate::fuse;

pub fn run(args: UmountArgs) -> ExitCode {
    let mnt = &args.mountpoint;
    if !fuse::is_fuse_mount(mnt) {
        return fail(&*Box::<dyn std::error::Error>::from(format!("{} is not a FUSE mount", mnt.display())));
    }
    match fuse::unmount(mnt, args.lazy) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => fail(&*Box::<dyn std::error::Error>::from(format!(
            "{} is busy (files or directories in use); close them, or unmount with --lazy",
            mnt.display()
        ))),
        Err(e) => fail(&*Box::<dyn std::error::Error>::from(format!("cannot unmount {}: {e}", mnt.display()))),
    }
}
