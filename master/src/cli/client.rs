//! The CLI's view of the admin API: try each given master until one answers, and turn the API's
//! errors into one clear line.

use std::time::Duration;

use serde_json::Value;

use super::http;
use crate::admin_http::ErrorBody;

/// A request may wait for a leader election (the API gives it 15 s) or for partitions to be created.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("no master reachable ({}); pass --admin HOST:PORT of a master's admin API (its --admin-listen) or set FERRUM_ADMIN", tried.join("; "))]
    NoMaster { tried: Vec<String> },
    /// The master answered with an error: its message says what went wrong.
    #[error("{message}")]
    Api { status: u16, code: String, message: String },
    #[error("unexpected answer from {addr}: {detail}")]
    Protocol { addr: String, detail: String },
    #[error("cannot write output: {0}")]
    Output(String),
}

pub struct AdminClient {
    masters: Vec<String>,
}

impl AdminClient {
    pub fn new(masters: Vec<String>) -> AdminClient {
        AdminClient { masters }
    }

    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        self.send("GET", path, None).await
    }

    /// Sends the request to the first master that answers. A master that cannot reach a leader (503)
    /// is passed over too: another one may be on the right side of a partition.
    pub async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, CliError> {
        let body = body.map(|b| serde_json::to_vec(&b).expect("JSON encodes"));
        let mut tried = Vec::new();
        let mut unavailable = None;
        for addr in &self.masters {
            let resp = match http::request(addr, method, path, body.as_deref(), REQUEST_TIMEOUT).await {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    // Something answered, but not HTTP: most likely a master's RPC port.
                    tried.push(format!("{addr}: {e} (is this the RPC port rather than the admin API's?)"));
                    continue;
                }
                Err(e) => {
                    tried.push(format!("{addr}: {e}"));
                    continue;
                }
            };
            if (200..300).contains(&resp.status) {
                return serde_json::from_slice(&resp.body)
                    .map_err(|e| CliError::Protocol { addr: addr.clone(), detail: format!("invalid JSON: {e}") });
            }
            let err = match serde_json::from_slice::<ErrorBody>(&resp.body) {
                Ok(b) => CliError::Api { status: resp.status, code: b.code, message: b.error },
                Err(_) => CliError::Protocol {
                    addr: addr.clone(),
                    detail: format!("HTTP {}: {}", resp.status, String::from_utf8_lossy(&resp.body).trim()),
                },
            };
            if resp.status == 503 {
                tried.push(format!("{addr}: {err}"));
                unavailable = Some(err);
                continue;
            }
            return Err(err);
        }
        match unavailable {
            // Every master answered, none could reach a leader: that is the clearest error.
            Some(e) if tried.len() == 1 => Err(e),
            _ => Err(CliError::NoMaster { tried }),
        }
    }
}
