//! The connection pool.

use bytes::Bytes;
use futures_util::future::join_all;
use std::collections::HashSet;
use tokio::net::TcpListener;

use super::*;
use crate::rpc::{ConnPool, RpcError};

#[tokio::test]
async fn concurrent_getters_share_one_connection() {
    let server = TestServer::start().await;
    let pool = ConnPool::new(ClientConfig::default());
    let calls = (0..50).map(|_| {
        let pool = pool.clone();
        let addr = server.addr.clone();
        async move { peer_port(&pool.call_raw(&addr, PEER, Bytes::new(), Bytes::new()).await.unwrap()) }
    });
    let ports: HashSet<u16> = join_all(calls).await.into_iter().collect();
    assert_eq!(ports.len(), 1, "{ports:?}");
    assert_eq!(pool.call(&server.addr, &Add { a: 4, b: 5 }).await.unwrap(), 9);
    server.stop().await;
}

#[tokio::test]
async fn reconnects_after_the_server_restarts() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bound = listener.local_addr().unwrap();
    let server = TestServer::on(listener, ServerConfig::default());
    let pool = ConnPool::new(ClientConfig::default());
    let first = pool.get(&server.addr).await.unwrap();
    let port_before = peer_port(&first.call_raw(PEER, Bytes::new(), Bytes::new()).await.unwrap());
    server.stop().await;
    wait_for("the client to notice the server is gone", || first.is_closed()).await;

    let server = TestServer::on(TcpListener::bind(bound).await.unwrap(), ServerConfig::default());
    let out = pool.call_raw(&server.addr, PEER, Bytes::new(), Bytes::new()).await.unwrap();
    assert_ne!(peer_port(&out), port_before);
    server.stop().await;
}

#[tokio::test]
async fn dead_address_fails_every_waiter_with_connect() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let pool = ConnPool::new(ClientConfig::default());
    let results = join_all((0..10).map(|_| pool.get(&addr))).await;
    for r in results {
        assert!(matches!(r, Err(RpcError::Connect { .. })), "{r:?}");
    }
}
