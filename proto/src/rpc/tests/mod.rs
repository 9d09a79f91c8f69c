//! Client, server and pool against each other on loopback.

mod calls;
mod faults;
mod pool;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::ErrorCode;
use crate::msg::{decode, encode, Rpc};
use crate::opcode::Opcode;
use crate::rpc::{serve, ClientConfig, Handler, Incoming, Outgoing, RpcClient, ServerConfig};

/// Replies with the request's meta and data.
const ECHO: Opcode = Opcode(0x0F01);
/// Fails with the `ErrorCode` in meta.
const FAIL: Opcode = Opcode(0x0F02);
/// Sleeps for `Nap::millis`, then replies with `Nap::tag`.
const NAP: Opcode = Opcode(0x0F03);
/// Replies with the client's port, which tells connections apart.
const PEER: Opcode = Opcode(0x0F04);
/// Replies with as many data bytes as the `u32` in meta says.
const PAD: Opcode = Opcode(0x0F06);

#[derive(Serialize, Deserialize)]
struct Add {
    a: u64,
    b: u64,
}

impl Rpc for Add {
    const OPCODE: Opcode = Opcode(0x0F05);
    type Response = u64;
}

#[derive(Serialize, Deserialize)]
struct Echo(String);

impl Rpc for Echo {
    const OPCODE: Opcode = ECHO;
    type Response = Echo;
}

#[derive(Serialize, Deserialize)]
struct Nap {
    millis: u64,
    tag: u32,
}

impl Rpc for Nap {
    const OPCODE: Opcode = NAP;
    type Response = u32;
}

#[derive(Default)]
struct TestService {
    /// Naps begun, so a test can wait until a request is in the handler.
    naps: AtomicUsize,
}

impl Handler for TestService {
    async fn handle(&self, req: Incoming) -> Result<Outgoing, ErrorCode> {
        match req.opcode {
            ECHO => Ok(Outgoing { meta: req.meta, data: req.data }),
            FAIL => Err(req.decode::<ErrorCode>()?),
            NAP => {
                let nap: Nap = req.decode()?;
                self.naps.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(nap.millis)).await;
                Ok(Outgoing::msg(&nap.tag))
            }
            PEER => Ok(Outgoing::msg(&req.peer.port())),
            PAD => {
                let n: u32 = req.decode()?;
                Ok(Outgoing::default().with_data(Bytes::from(vec![7u8; n as usize])))
            }
            Add::OPCODE => {
                let add: Add = req.decode()?;
                Ok(Outgoing::msg(&(add.a + add.b)))
            }
            other => Err(ErrorCode::UnknownOpcode(other.0)),
        }
    }
}

struct TestServer {
    addr: String,
    service: Arc<TestService>,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl TestServer {
    async fn start() -> TestServer {
        TestServer::start_with(ServerConfig::default()).await
    }

    async fn start_with(cfg: ServerConfig) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        TestServer::on(listener, cfg)
    }

    fn on(listener: TcpListener, cfg: ServerConfig) -> TestServer {
        let addr = listener.local_addr().unwrap().to_string();
        let shutdown = CancellationToken::new();
        let service = Arc::new(TestService::default());
        let task = tokio::spawn(serve(listener, service.clone(), cfg, shutdown.clone()));
        TestServer { addr, service, shutdown, task }
    }

    async fn client(&self) -> RpcClient {
        RpcClient::connect(&self.addr, &ClientConfig::default()).await.unwrap()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task).await.expect("server stops").unwrap();
    }
}

/// Polls `cond` until it holds, failing the test after 5 s.
async fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn peer_port(out: &Outgoing) -> u16 {
    decode(&out.meta).unwrap()
}

fn bytes_of(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn fail_meta(code: &ErrorCode) -> Bytes {
    encode(code)
}
