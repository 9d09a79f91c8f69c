//! One shared connection per server address, re-dialled when it dies.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::msg::Rpc;
use crate::opcode::Opcode;
use crate::rpc::client::{ClientConfig, RpcClient};
use crate::rpc::error::RpcError;
use crate::rpc::handler::Outgoing;

/// Cheap to clone; clones share the connections.
#[derive(Clone)]
pub struct ConnPool {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: ClientConfig,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    /// Held while dialling, so concurrent getters wait for one attempt instead of each dialling.
    dial: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct SlotState {
    client: Option<RpcClient>,
    /// Failed dial attempts so far, and the last failure: getters that waited on a failed attempt
    /// share its error instead of each waiting out their own connect timeout in turn.
    failures: u64,
    last_error: Option<RpcError>,
}

impl SlotState {
    fn live(&self) -> Option<RpcClient> {
        self.client.as_ref().filter(|c| !c.is_closed()).cloned()
    }
}

impl ConnPool {
    pub fn new(cfg: ClientConfig) -> ConnPool {
        ConnPool { inner: Arc::new(Inner { cfg, slots: Mutex::new(HashMap::new()) }) }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }

    /// The live connection to `addr`, dialling it if there is none.
    pub async fn get(&self, addr: &str) -> Result<RpcClient, RpcError> {
        let slot = self.inner.slots.lock().expect("pool lock").entry(addr.to_string()).or_default().clone();
        let seen_failures = {
            let state = slot.state.lock().expect("slot lock");
            if let Some(client) = state.live() {
                return Ok(client);
            }
            state.failures
        };
        let _dialling = slot.dial.lock().await;
        {
            let state = slot.state.lock().expect("slot lock");
            if let Some(client) = state.live() {
                return Ok(client);
            }
            if state.failures != seen_failures {
                if let Some(e) = &state.last_error {
                    return Err(e.clone());
                }
            }
        }
        let dialled = RpcClient::connect(addr, &self.inner.cfg).await;
        let mut state = slot.state.lock().expect("slot lock");
        match dialled {
            Ok(client) => {
                state.client = Some(client.clone());
                Ok(client)
            }
            Err(e) => {
                state.client = None;
                state.failures += 1;
                state.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    pub async fn call<R: Rpc>(&self, addr: &str, req: &R) -> Result<R::Response, RpcError> {
        self.get(addr).await?.call(req).await
    }

    pub async fn call_raw(&self, addr: &str, opcode: Opcode, meta: Bytes, data: Bytes) -> Result<Outgoing, RpcError> {
        self.get(addr).await?.call_raw(opcode, meta, data).await
    }
}
