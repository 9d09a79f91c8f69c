//! The master group's [`App`]: applies [`MasterCmd`]s to the in-memory [`State`] and persists the
//! records they change, in the same RocksDB batch as the applied index.

use std::sync::{Arc, RwLock};

use bytes::Bytes;
use ferrum_proto::{msg, ErrorCode};
use ferrum_raftstore::{App, GroupBatch, GroupView};

use crate::state::{CmdReply, MasterCmd, State, Write};

/// `GroupDesc::kind` of the master group.
pub const GROUP_KIND: &str = "master";

/// The replicated state, shared by the app (writer) and the service (readers).
pub type SharedState = Arc<RwLock<State>>;

pub struct MasterApp {
    state: SharedState,
}

impl MasterApp {
    pub fn new(state: SharedState) -> MasterApp {
        MasterApp { state }
    }
}

/// Reads the whole keyspace of the group, in key order.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn scan_all(view: &GroupView<'_>) -> Result<Pairs, String> {
    const PAGE: usize = 1024;
    let mut out = Vec::new();
    let mut start: Vec<u8> = Vec::new();
    loop {
        let page = view.scan(b"", &start, PAGE).map_err(|e| e.to_string())?;
        let full = page.len() == PAGE;
        if let Some((last, _)) = page.last() {
            start = last.clone();
            start.push(0);
        }
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}

impl App for MasterApp {
    fn apply(&self, _view: &GroupView<'_>, batch: &mut GroupBatch<'_>, _index: u64, cmd: &[u8]) -> Bytes {
        let reply: Result<CmdReply, ErrorCode> = match postcard::from_bytes::<MasterCmd>(cmd) {
            Ok(cmd) => {
                let (reply, writes) = self.state.write().expect("state lock").apply(cmd);
                for w in writes {
                    match w {
                        Write::Put(k, v) => batch.put(&k, &v),
                        Write::Delete(k) => batch.delete(&k),
                    }
                }
                reply
            }
            // Proposed by a newer or buggy master; every replica refuses it alike.
            Err(e) => Err(ErrorCode::InvalidArgument(format!("malformed master command: {e}"))),
        };
        msg::encode(&reply)
    }

    fn on_reload(&self, view: &GroupView<'_>) {
        // Without its state the master cannot serve anything correctly: a failure here is fatal (the
        // panic hook aborts the process), and loud.
        let pairs = scan_all(view).unwrap_or_else(|e| panic!("cannot read the master state from RocksDB: {e}"));
        let state = State::load(pairs).unwrap_or_else(|e| panic!("cannot load the master state: {e}"));
        tracing::info!(
            nodes = state.nodes.len(),
            volumes = state.volumes.len(),
            partitions = state.partitions.len(),
            "master state loaded"
        );
        *self.state.write().expect("state lock") = state;
    }
}

/// The app of a group a master should never host (only group 0 is the master's): refuses everything,
/// so a stray group can do no harm.
pub struct ForeignApp;

impl App for ForeignApp {
    fn apply(&self, view: &GroupView<'_>, _batch: &mut GroupBatch<'_>, _index: u64, _cmd: &[u8]) -> Bytes {
        let e = ErrorCode::GroupNotFound(view.group());
        msg::encode(&Err::<CmdReply, ErrorCode>(e))
    }
}
