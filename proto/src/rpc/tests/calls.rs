//! Calls that work.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::join_all;

use super::*;
use crate::error::LeaderHint;
use crate::frame::{FrameError, HEADER_LEN};
use crate::ids::NodeId;
use crate::rpc::RpcError;

#[tokio::test]
async fn echo_round_trip_with_meta_and_data() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let data = Bytes::from((0..1 << 20).map(|i| (i % 253) as u8).collect::<Vec<u8>>());
    let out = client.call_raw(ECHO, bytes_of("meta"), data.clone()).await.unwrap();
    assert_eq!(out.meta, bytes_of("meta"));
    assert_eq!(out.data, data);
    let empty = client.call_raw(ECHO, Bytes::new(), Bytes::new()).await.unwrap();
    assert_eq!(empty, Outgoing::default());
    assert_eq!(client.version(), crate::msg::hello::PROTOCOL_VERSION);
    assert_eq!(client.addr(), server.addr);
    server.stop().await;
}

/// Large frames (written from their own buffers) and small ones (through the write buffer) sent at
/// once on one connection, both ways, arrive whole and in their own replies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_and_small_frames_interleave_on_one_connection() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let calls = (0..24u32).map(|i| {
        let len = if i % 3 == 0 { (1 << 20) + i as usize } else { i as usize * 7 };
        let data = Bytes::from((0..len).map(|j| (j as u32 ^ i) as u8).collect::<Vec<u8>>());
        let meta = if i % 4 == 0 { Bytes::from(vec![i as u8; 100 << 10]) } else { bytes_of(&format!("m{i}")) };
        let client = &client;
        async move {
            let out = client.call_raw(ECHO, meta.clone(), data.clone()).await.unwrap();
            assert_eq!((out.meta, out.data), (meta, data), "call {i}");
        }
    });
    join_all(calls).await;
    server.stop().await;
}

#[tokio::test]
async fn typed_calls() {
    let server = TestServer::start().await;
    let client = server.client().await;
    assert_eq!(client.call(&Add { a: 2, b: 3 }).await.unwrap(), 5);
    let (reply, data) = client.call_with_data(&Echo("hi".into()), bytes_of("payload")).await.unwrap();
    assert_eq!(reply.0, "hi");
    assert_eq!(data, bytes_of("payload"));
    server.stop().await;
}

#[tokio::test]
async fn remote_error_arrives_typed() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let hint = LeaderHint { node: NodeId(3), addr: "10.1.1.3:7000".into() };
    let code = ErrorCode::NotLeader { leader: Some(hint.clone()) };
    match client.call_raw(FAIL, fail_meta(&code), Bytes::new()).await {
        Err(RpcError::Remote(got)) => {
            assert_eq!(got, code);
            assert_eq!(got.leader_hint(), Some(&hint));
        }
        other => panic!("{other:?}"),
    }
    match client.call_raw(Opcode(0x0F77), Bytes::new(), Bytes::new()).await {
        Err(e) => assert_eq!(e.code(), ErrorCode::UnknownOpcode(0x0F77)),
        other => panic!("{other:?}"),
    }
    // A malformed request is the caller's error, and the connection stays up.
    match client.call_raw(Add::OPCODE, bytes_of("\u{1}"), Bytes::new()).await {
        Err(RpcError::Remote(ErrorCode::InvalidArgument(s))) => {
            assert!(s.contains("malformed"), "{s}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(client.call(&Add { a: 1, b: 1 }).await.unwrap(), 2);
    server.stop().await;
}

#[tokio::test]
async fn thousand_concurrent_calls_on_one_connection() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let calls = (0..1000u32).map(|i| {
        let client = client.clone();
        async move {
            let data = Bytes::from(vec![(i % 256) as u8; (i % 64) as usize]);
            let out = client.call_raw(ECHO, encode(&i), data.clone()).await.unwrap();
            assert_eq!(decode::<u32>(&out.meta).unwrap(), i);
            assert_eq!(out.data, data);
        }
    });
    join_all(calls).await;
    assert_eq!(client.pending_calls(), 0);
    server.stop().await;
}

#[tokio::test]
async fn slow_requests_do_not_hold_up_fast_ones() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let finished = Arc::new(Mutex::new(Vec::new()));
    // Even tags sleep, odd ones do not: the odd replies overtake the even ones on the same connection.
    let calls = (0..20u32).map(|tag| {
        let (client, finished) = (client.clone(), finished.clone());
        async move {
            let millis = if tag % 2 == 0 { 300 } else { 0 };
            assert_eq!(client.call(&Nap { millis, tag }).await.unwrap(), tag);
            finished.lock().unwrap().push(tag);
        }
    });
    join_all(calls).await;
    let order = finished.lock().unwrap().clone();
    assert_eq!(order.len(), 20);
    assert!(order[..10].iter().all(|t| t % 2 == 1), "{order:?}");
    server.stop().await;
}

#[tokio::test]
async fn oversized_request_fails_locally_and_connection_survives() {
    let server = TestServer::start().await;
    let cfg = ClientConfig { max_frame: 1024, ..ClientConfig::default() };
    let client = RpcClient::connect(&server.addr, &cfg).await.unwrap();
    let big = Bytes::from(vec![0u8; 1024 - HEADER_LEN + 1]);
    match client.call_raw(ECHO, Bytes::new(), big).await {
        Err(RpcError::Frame(FrameError::TooLarge { max: 1024, .. })) => {}
        other => panic!("{other:?}"),
    }
    let fits = Bytes::from(vec![0u8; 1024 - HEADER_LEN]);
    assert_eq!(client.call_raw(ECHO, Bytes::new(), fits.clone()).await.unwrap().data, fits);
    server.stop().await;
}

#[tokio::test]
async fn oversized_reply_becomes_an_error() {
    let server = TestServer::start_with(ServerConfig { max_frame: 4096, ..ServerConfig::default() }).await;
    let client = server.client().await;
    match client.call_raw(PAD, encode(&5000u32), Bytes::new()).await {
        Err(RpcError::Remote(ErrorCode::Internal(s))) => assert!(s.contains("exceeds"), "{s}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(client.call_raw(PAD, encode(&4000u32), Bytes::new()).await.unwrap().data.len(), 4000);
    server.stop().await;
}

#[tokio::test]
async fn request_timeout() {
    let server = TestServer::start().await;
    let cfg = ClientConfig { request_timeout: Duration::from_millis(200), ..ClientConfig::default() };
    let client = RpcClient::connect(&server.addr, &cfg).await.unwrap();
    let started = tokio::time::Instant::now();
    assert!(matches!(client.call(&Nap { millis: 5_000, tag: 1 }).await, Err(RpcError::Timeout)));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(client.pending_calls(), 0);
    assert!(!client.is_closed());
    assert_eq!(client.call(&Nap { millis: 0, tag: 2 }).await.unwrap(), 2);
    server.stop().await;
}
