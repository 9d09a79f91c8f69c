//! Tests run in parallel threads of one process and each starts several servers. Binding `127.0.0.1:0` learns a
//! port the kernel considers free right now; remembering every port handed out stops two tests (or two instances
//! of one test) from being given the same one before either server has bound it.
//!
//! A `ferrum dev` cluster takes one block of consecutive ports from its `--base-port` on instead. Those blocks
//! come from below the kernel's ephemeral range, so no outgoing connection (which takes an ephemeral port) can
//! sit on one; each block is probed free before it is handed out, and a process never hands one out twice.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{LazyLock, Mutex, PoisonError};

static HANDED_OUT: LazyLock<Mutex<HashSet<u16>>> = LazyLock::new(|| Mutex::new(HashSet::new()));
static BLOCKS_HANDED_OUT: LazyLock<Mutex<HashSet<u16>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

/// Where dev-cluster port blocks start; below it are well-known and registered services' ports.
pub const DEV_PORTS_START: u16 = 20000;
/// Ports per block: room for 16 instances of 4 ports (`ferrum dev` layout) without overlap.
pub const DEV_BLOCK: u16 = 64;

/// A loopback TCP port that was free when probed and has never been returned before in this process.
pub fn free_port() -> u16 {
    // Bounded: the kernel's ephemeral range holds ~28k ports; failing loudly beats spinning forever.
    for _ in 0..1000 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0 to find a free port: {e}"));
        let port = listener.local_addr().expect("local_addr of a bound listener").port();
        // The probe listener closes here, before the server binds: nothing connected, so no TIME_WAIT lingers.
        drop(listener);
        if HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner).insert(port) {
            return port;
        }
    }
    panic!("no fresh free loopback port after 1000 probes");
}

/// `127.0.0.1:<free_port()>`.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()))
}

/// The first port of the kernel's ephemeral range (where `connect` picks local ports).
pub fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()))
        .unwrap_or(32768)
}

/// A `--base-port` for a `ferrum dev` cluster: the first of [`DEV_BLOCK`] consecutive loopback ports that are all
/// bindable right now, below the ephemeral range, and never handed out before in this process. The starting
/// block depends on the process id, so concurrent test processes (nextest runs one per test) rarely probe the
/// same block; a clash that slips through makes `ferrum dev up` fail with "not free", and the caller retries.
pub fn dev_base_port() -> u16 {
    let end = ephemeral_start().min(u16::MAX - DEV_BLOCK);
    assert!(
        end >= DEV_PORTS_START + 4 * DEV_BLOCK,
        "the ephemeral port range starts at {end}: no room below it for dev clusters from {DEV_PORTS_START} on"
    );
    let blocks = (end - DEV_PORTS_START) / DEV_BLOCK;
    let first = (std::process::id() as u64).wrapping_mul(2654435761) % blocks as u64;
    for i in 0..blocks as u64 {
        let base = DEV_PORTS_START + ((first + i) % blocks as u64) as u16 * DEV_BLOCK;
        let free = (base..base + DEV_BLOCK).all(|p| TcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_ok());
        if free && BLOCKS_HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner).insert(base) {
            return base;
        }
    }
    panic!("no free block of {DEV_BLOCK} loopback ports between {DEV_PORTS_START} and {end}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_unique_across_threads_and_bindable() {
        let threads: Vec<_> =
            (0..8).map(|_| std::thread::spawn(|| (0..50).map(|_| free_port()).collect::<Vec<_>>())).collect();
        let mut all = HashSet::new();
        for t in threads {
            for port in t.join().unwrap() {
                assert!(all.insert(port), "port {port} handed out twice");
            }
        }
        let addr = free_addr();
        TcpListener::bind(addr).unwrap_or_else(|e| panic!("free_addr() {addr} is not bindable: {e}"));
    }

    #[test]
    fn dev_blocks_are_distinct_free_and_below_the_ephemeral_range() {
        let (a, b) = (dev_base_port(), dev_base_port());
        assert_ne!(a, b);
        for base in [a, b] {
            assert!(base >= DEV_PORTS_START && base + DEV_BLOCK <= ephemeral_start(), "{base}");
            TcpListener::bind((Ipv4Addr::LOCALHOST, base + DEV_BLOCK - 1)).expect("the block's last port is free");
        }
    }
}
