//! Tests run in parallel threads of one process and each starts several servers. Binding `127.0.0.1:0` learns a
//! port the kernel considers free right now; remembering every port handed out stops two tests (or two instances
//! of one test) from being given the same one before either server has bound it.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{LazyLock, Mutex, PoisonError};

static HANDED_OUT: LazyLock<Mutex<HashSet<u16>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

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
}
