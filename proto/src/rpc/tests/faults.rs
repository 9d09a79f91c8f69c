//! Bad peers, dead servers, shutdowns: each failure is contained and reported as a typed error.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Encoder, Framed};

use super::*;
use crate::frame::{Frame, FrameCodec, FrameKind};
use crate::msg::hello::{Hello, PROTOCOL_VERSION};
use crate::rpc::RpcError;

async fn raw(addr: &str) -> Framed<TcpStream, FrameCodec> {
    Framed::new(TcpStream::connect(addr).await.unwrap(), FrameCodec::default())
}

async fn raw_after_hello(addr: &str) -> Framed<TcpStream, FrameCodec> {
    let mut conn = raw(addr).await;
    conn.send(Frame::request(Opcode::HELLO, 0, encode(&Hello::ours()), Bytes::new())).await.unwrap();
    let ack = conn.next().await.unwrap().unwrap();
    assert_eq!(ack.kind, FrameKind::Response);
    conn
}

/// Waits until the server closes `stream` (EOF or reset).
async fn assert_closed_by_server(stream: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    });
    closed.await.expect("server closes the connection");
}

#[tokio::test]
async fn version_mismatch_is_rejected_and_closed() {
    let server = TestServer::start().await;
    let mut conn = raw(&server.addr).await;
    let hello = Hello { min_version: PROTOCOL_VERSION + 6, max_version: PROTOCOL_VERSION + 8, client: "future".into() };
    conn.send(Frame::request(Opcode::HELLO, 0, encode(&hello), Bytes::new())).await.unwrap();
    let reply = conn.next().await.unwrap().unwrap();
    assert_eq!(reply.kind, FrameKind::Error);
    assert_eq!(
        decode::<ErrorCode>(&reply.meta).unwrap(),
        ErrorCode::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs_min: PROTOCOL_VERSION + 6,
            theirs_max: PROTOCOL_VERSION + 8
        }
    );
    assert!(conn.next().await.is_none());
    server.stop().await;
}

#[tokio::test]
async fn a_request_before_hello_is_a_version_mismatch() {
    let server = TestServer::start().await;
    let mut conn = raw(&server.addr).await;
    conn.send(Frame::request(ECHO, 5, Bytes::new(), Bytes::new())).await.unwrap();
    let reply = conn.next().await.unwrap().unwrap();
    assert_eq!((reply.kind, reply.request_id), (FrameKind::Error, 5));
    assert!(matches!(decode::<ErrorCode>(&reply.meta).unwrap(), ErrorCode::VersionMismatch { .. }));
    assert!(conn.next().await.is_none());
    server.stop().await;
}

#[tokio::test]
async fn garbage_closes_only_its_own_connection() {
    let server = TestServer::start().await;
    let good = server.client().await;
    assert_eq!(good.call(&Add { a: 1, b: 2 }).await.unwrap(), 3);

    // Garbage instead of a handshake.
    let mut bad = TcpStream::connect(&server.addr).await.unwrap();
    bad.write_all(&[0xAB; 64]).await.unwrap();
    assert_closed_by_server(&mut bad).await;

    // Garbage after a proper handshake.
    let mut bad = raw_after_hello(&server.addr).await.into_inner();
    bad.write_all(&[0xCD; 64]).await.unwrap();
    assert_closed_by_server(&mut bad).await;

    assert_eq!(good.call(&Add { a: 2, b: 2 }).await.unwrap(), 4);
    assert!(!good.is_closed());
    assert_eq!(server.client().await.call(&Add { a: 3, b: 3 }).await.unwrap(), 6);
    server.stop().await;
}

#[tokio::test]
async fn corrupted_frame_closes_its_connection() {
    let server = TestServer::start().await;
    let good = server.client().await;
    let mut wire = BytesMut::new();
    let frame = Frame::request(ECHO, 1, bytes_of("meta"), bytes_of("payload"));
    FrameCodec::default().encode(frame, &mut wire).unwrap();
    let last = wire.len() - 1;
    wire[last] ^= 1;
    let mut bad = raw_after_hello(&server.addr).await.into_inner();
    bad.write_all(&wire).await.unwrap();
    assert_closed_by_server(&mut bad).await;
    assert_eq!(good.call(&Add { a: 1, b: 1 }).await.unwrap(), 2);
    server.stop().await;
}

#[tokio::test]
async fn truncated_frame_closes_its_connection() {
    let server = TestServer::start().await;
    let good = server.client().await;
    let mut wire = BytesMut::new();
    FrameCodec::default().encode(Frame::request(ECHO, 1, bytes_of("m"), bytes_of("data")), &mut wire).unwrap();
    let mut bad = raw_after_hello(&server.addr).await.into_inner();
    bad.write_all(&wire[..wire.len() - 2]).await.unwrap();
    bad.shutdown().await.unwrap();
    assert_closed_by_server(&mut bad).await;
    assert_eq!(good.call(&Add { a: 1, b: 1 }).await.unwrap(), 2);
    server.stop().await;
}

#[tokio::test]
async fn oversized_frame_closes_its_connection() {
    let server = TestServer::start_with(ServerConfig { max_frame: 4096, ..ServerConfig::default() }).await;
    let good = server.client().await;
    let greedy = server.client().await;
    match greedy.call_raw(ECHO, Bytes::new(), Bytes::from(vec![0u8; 8192])).await {
        Err(RpcError::Closed) => {}
        other => panic!("{other:?}"),
    }
    assert!(greedy.is_closed());
    assert_eq!(good.call(&Add { a: 1, b: 1 }).await.unwrap(), 2);
    server.stop().await;
}

#[tokio::test]
async fn dead_server_fails_fast_with_connect() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let started = tokio::time::Instant::now();
    match RpcClient::connect(&addr, &ClientConfig::default()).await {
        Err(RpcError::Connect { addr: a, .. }) => assert_eq!(a, addr),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn silent_server_fails_the_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let _hold = tokio::spawn(async move {
        let (_stream, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let cfg = ClientConfig { connect_timeout: Duration::from_millis(200), ..ClientConfig::default() };
    assert!(matches!(RpcClient::connect(&addr, &cfg).await, Err(RpcError::Handshake(_))));
}

#[tokio::test]
async fn server_stop_fails_pending_calls_with_closed() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.call(&Nap { millis: 30_000, tag: 1 }).await }
    });
    wait_for("the call to reach the handler", || server.service.naps.load(Ordering::SeqCst) == 1).await;
    server.stop().await;
    let result = tokio::time::timeout(Duration::from_secs(2), pending).await.expect("fails fast").unwrap();
    assert!(matches!(result, Err(RpcError::Closed)), "{result:?}");
    assert!(client.is_closed());
    assert!(matches!(client.call(&Add { a: 1, b: 1 }).await, Err(RpcError::Closed)));
}

#[tokio::test]
async fn closing_a_client_fails_its_calls() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.call(&Nap { millis: 30_000, tag: 1 }).await }
    });
    wait_for("the call to reach the handler", || server.service.naps.load(Ordering::SeqCst) == 1).await;
    client.close();
    assert!(matches!(pending.await.unwrap(), Err(RpcError::Closed)));
    assert_eq!(client.pending_calls(), 0);
    server.stop().await;
}
