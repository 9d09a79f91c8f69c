//! The server-side contract: a request comes in, a reply or an [`ErrorCode`] goes out.

use std::future::Future;
use std::net::SocketAddr;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ErrorCode;
use crate::msg;
use crate::opcode::Opcode;

/// A request as the server received it.
#[derive(Clone, Debug)]
pub struct Incoming {
    pub opcode: Opcode,
    pub request_id: u64,
    /// A postcard message, see [`Incoming::decode`].
    pub meta: Bytes,
    /// Raw payload, a view into the read buffer (no copy). Holding it keeps that whole buffer alive:
    /// copy a small piece that must outlive the request.
    pub data: Bytes,
    pub peer: SocketAddr,
}

impl Incoming {
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ErrorCode> {
        msg::decode(&self.meta)
    }
}

/// A successful reply (also what a raw client call returns).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outgoing {
    pub meta: Bytes,
    pub data: Bytes,
}

impl Outgoing {
    pub fn msg<T: Serialize>(m: &T) -> Outgoing {
        Outgoing { meta: msg::encode(m), data: Bytes::new() }
    }

    pub fn with_data(mut self, data: Bytes) -> Outgoing {
        self.data = data;
        self
    }

    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ErrorCode> {
        msg::decode(&self.meta)
    }
}

/// Serves requests. Each request runs in its own task, so a slow request never holds up the others on
/// its connection. The future may be dropped when the connection or server shuts down.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: Incoming) -> impl Future<Output = Result<Outgoing, ErrorCode>> + Send;
}

/// A [`Handler`] from a closure, for tests and small services.
pub struct FnHandler<F>(F);

pub fn handler_fn<F, Fut>(f: F) -> FnHandler<F>
where
    F: Fn(Incoming) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Outgoing, ErrorCode>> + Send,
{
    FnHandler(f)
}

impl<F, Fut> Handler for FnHandler<F>
where
    F: Fn(Incoming) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Outgoing, ErrorCode>> + Send,
{
    fn handle(&self, req: Incoming) -> impl Future<Output = Result<Outgoing, ErrorCode>> + Send {
        (self.0)(req)
    }
}
