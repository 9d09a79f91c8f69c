//! Binding the instance's ports, failing at once and by name when one is taken.

use std::io::ErrorKind;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

use super::error::InstanceError;

/// Pending connections the kernel queues before we accept; std's default (128) is small for a
/// burst of clients reconnecting after a leader change.
const BACKLOG: u32 = 1024;

/// Binds `addr` for `what` ("rpc", "metrics", ...). Must be called inside a tokio runtime.
///
/// SO_REUSEADDR is on (as std and tokio do on Unix): on Linux it only lets a restarted instance
/// rebind while old connections sit in TIME_WAIT; a port another socket listens on still fails
/// with EADDRINUSE. SO_REUSEPORT, which would let two instances share a port, stays off.
pub fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, InstanceError> {
    let fail = |source: std::io::Error| {
        if source.kind() == ErrorKind::AddrInUse {
            InstanceError::PortInUse { addr, what: what.to_string() }
        } else {
            InstanceError::Bind { addr, what: what.to_string(), source }
        }
    };
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(fail)?;
    socket.set_reuseaddr(true).map_err(fail)?;
    socket.bind(addr).map_err(fail)?;
    socket.listen(BACKLOG).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn port_in_use_fails_naming_address_and_purpose() {
        let first = bind("127.0.0.1:0".parse().expect("addr"), "rpc").expect("first bind");
        let addr = first.local_addr().expect("local addr");
        let err = bind(addr, "rpc").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with(&format!("cannot listen on {addr} (rpc): address already in use")), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
        assert!(matches!(err, InstanceError::PortInUse { .. }));
    }

    #[tokio::test]
    async fn other_bind_errors_keep_the_cause() {
        // 192.0.2.0/24 is TEST-NET-1: never configured on a host, so binding it fails (EADDRNOTAVAIL)
        // unless the host allows non-local binds; then there is nothing to check.
        let Err(err) = bind("192.0.2.1:0".parse().expect("addr"), "metrics") else {
            return;
        };
        let msg = err.to_string();
        assert!(msg.starts_with("cannot listen on 192.0.2.1:0 (metrics): "), "{msg}");
    }
}
