//! Operation ids: `(client, sequence)` names one logical mutation across its retries, so a server that
//! applied it answers a retry with the first outcome instead of applying it twice.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use ferrum_proto::{ClientId, OpId, RequestId};

pub struct OpIds {
    client: ClientId,
    next: AtomicU64,
}

impl Default for OpIds {
    fn default() -> Self {
        OpIds::new()
    }
}

impl OpIds {
    /// A random client id: nothing hands them out, and two mounts must never share one (a collision
    /// would make one mount's mutation look like a retry of the other's). 64 random bits make that
    /// negligible.
    pub fn new() -> OpIds {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
        OpIds::with_client(ClientId(h.finish()))
    }

    pub fn with_client(client: ClientId) -> OpIds {
        OpIds { client, next: AtomicU64::new(1) }
    }

    pub fn client(&self) -> ClientId {
        self.client
    }

    pub fn next(&self) -> OpId {
        OpId::new(self.client, RequestId(self.next.fetch_add(1, Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_per_client_and_clients_differ() {
        let a = OpIds::new();
        let b = OpIds::new();
        assert_ne!(a.client(), b.client());
        let (x, y) = (a.next(), a.next());
        assert_eq!(x.client, y.client);
        assert_ne!(x.request, y.request);
    }
}
