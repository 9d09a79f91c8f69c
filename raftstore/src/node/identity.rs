//! The node id: stored in `<data-dir>/NODE_ID` once known, so it survives restarts. The master assigns
//! it (same instance uuid → same id); `--node-id` pins it for setups without a master.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use ferrum_proto::msg::master::{NodeRole, RegisterNode};
use ferrum_proto::rpc::LeaderClient;
use ferrum_proto::NodeId;

use super::args::{default_host, NodeArgs};
use crate::error::RaftStoreError;
use crate::server::Instance;

const FILE: &str = "NODE_ID";

pub(super) async fn resolve(
    inst: &Instance,
    role: NodeRole,
    args: &NodeArgs,
    master: Option<&LeaderClient>,
) -> Result<NodeId, RaftStoreError> {
    let path = inst.data_dir.path().join(FILE);
    let stored = read(&path)?;
    let conflict = |what: &str, other: NodeId, stored: NodeId| {
        RaftStoreError::Config(format!(
            "data dir {} belongs to node {stored}, but {what} says {other}; use the data dir of node {other} or a fresh one",
            inst.data_dir.path().display()
        ))
    };
    if let (Some(s), Some(f)) = (stored, args.node_id.map(NodeId::from)) {
        if s != f {
            return Err(conflict("--node-id", f, s));
        }
    }
    let id = match master {
        Some(m) => {
            let id = register(inst, role, args, m).await?;
            if let Some(s) = stored.filter(|s| *s != id) {
                return Err(conflict("the master", id, s));
            }
            id
        }
        None => stored.or(args.node_id.map(NodeId::from)).ok_or_else(|| {
            RaftStoreError::Config("no node id: give --master to register with a master, or --node-id".into())
        })?,
    };
    if stored.is_none() {
        write(&path, id)?;
    }
    Ok(id)
}

/// Registers (again) with the master: keeps its view of our address current. Waits for a master to
/// answer (a node started before its masters is normal), until shutdown.
async fn register(
    inst: &Instance,
    role: NodeRole,
    args: &NodeArgs,
    master: &LeaderClient,
) -> Result<NodeId, RaftStoreError> {
    let req = registration(inst, role, args);
    let mut wait = Duration::from_millis(200);
    loop {
        match master.call(&req).await {
            Ok(resp) => return Ok(resp.node_id),
            Err(e) if e.is_retryable() => {
                tracing::warn!("registering with master {:?}: {e}; retrying", master.addrs());
            }
            Err(e) => return Err(RaftStoreError::Config(format!("master refused registration: {e}"))),
        }
        tokio::select! {
            _ = inst.shutdown.cancelled() => return Err(RaftStoreError::Config("shut down before a master answered".into())),
            _ = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}

pub(super) fn registration(inst: &Instance, role: NodeRole, args: &NodeArgs) -> RegisterNode {
    RegisterNode {
        role,
        advertise: inst.config.advertise.clone(),
        host: args.host.clone().unwrap_or_else(default_host),
        instance_uuid: inst.data_dir.instance_uuid().as_str().to_string(),
    }
}

fn read(path: &Path) -> Result<Option<NodeId>, RaftStoreError> {
    match std::fs::read_to_string(path) {
        Ok(s) => s
            .trim()
            .parse::<u64>()
            .map(|n| Some(NodeId::from(n)))
            .map_err(|e| RaftStoreError::Corrupt { what: "NODE_ID", detail: format!("{}: {e}", path.display()) }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RaftStoreError::Io { path: path.to_path_buf(), source }),
    }
}

/// Written atomically and durably: a node id, once used for Raft, must never change under a data dir.
fn write(path: &Path, id: NodeId) -> Result<(), RaftStoreError> {
    let io = |source| RaftStoreError::Io { path: path.to_path_buf(), source };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    writeln!(f, "{id}").map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_file_round_trips_and_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(FILE);
        assert_eq!(read(&p).unwrap(), None);
        write(&p, NodeId::from(42)).unwrap();
        assert_eq!(read(&p).unwrap(), Some(NodeId::from(42)));
        std::fs::write(&p, "forty-two").unwrap();
        assert!(matches!(read(&p), Err(RaftStoreError::Corrupt { .. })));
    }
}
