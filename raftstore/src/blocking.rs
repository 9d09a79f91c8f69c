//! Disk work done inside a Raft group's tasks without stalling the rest of the instance.
//!
//! openraft calls the log store's `append` and the state machine's `apply` from its own tasks and awaits
//! them, so their file I/O (a data partition's MiB entries: `O_DIRECT` writes and `fdatasync`s) runs on a
//! tokio worker. A process has two workers on a 2-core host; while both sat in such I/O, the network
//! reads and the other groups' tasks waited for them.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `f`, which blocks on disk I/O, letting this worker's other tasks move to another thread meanwhile
/// (`block_in_place`). On a current-thread runtime (unit tests) or outside tokio, just runs it.
pub fn io<R>(f: impl FnOnce() -> R) -> R {
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}
