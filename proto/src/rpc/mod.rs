//! RPC over TCP: a multiplexed client, a connection pool, and a server that runs each request in its
//! own task. Every connection starts with a HELLO handshake; after it, requests and replies are
//! [`crate::frame::Frame`]s matched by request id.

mod client;
mod error;
mod handler;
mod handshake;
mod leader;
mod pool;
mod server;
mod writer;

pub use client::{ClientConfig, RpcClient};
pub use error::RpcError;
pub use handler::{handler_fn, FnHandler, Handler, Incoming, Outgoing};
pub use leader::{LeaderClient, RetryPolicy};
pub use pool::ConnPool;
pub use server::{serve, ServerConfig};

#[cfg(test)]
mod tests;
