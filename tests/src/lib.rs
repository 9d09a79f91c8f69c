//! Multi-process integration tests for Ferrum: real server binaries, each instance with its own temp dir and
//! loopback ports, logs to files, children killed when the test ends (STYLE.md "Tests, cheapest first", item 4).
//!
//! The tests live in `tests/tests/*.rs`; this library is the harness they share.

pub mod harness {
    //! Building blocks, one concept per module.

    /// Locate workspace binaries (`ferrum-master`, `ferrum-kvnode`, ...) next to the test executable.
    pub mod bin;
    /// `DevCluster`: a cluster started and driven by the real `ferrum dev` binary (up, ps, stop, start, down).
    pub mod dev;
    /// Minimal HTTP/1.1 GET over a plain `TcpStream`, for `/metrics` and the admin API.
    pub mod http;
    /// Free loopback ports that are never handed out twice within one test process.
    pub mod ports;
    /// `Proc`: a child server process with a log file, killed on drop, logs dumped when a test panics.
    pub mod process;
    /// `TestDir`: a per-test temp dir, kept for post-mortem when the test panics.
    pub mod tempdir;
    /// Poll-until-true helpers with a deadline, instead of sleeps.
    pub mod wait;

    pub use bin::binary;
    pub use dev::DevCluster;
    pub use ports::{dev_base_port, free_addr, free_port};
    pub use process::Proc;
    pub use tempdir::TestDir;
    pub use wait::{wait_for, wait_for_async, wait_port_open};
}
