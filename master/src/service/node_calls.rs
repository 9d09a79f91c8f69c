//! The master's calls to nodes: create and delete partition replicas.
//!
//! Both are idempotent on the node, so the leader simply repeats them until they succeed (a retry
//! after a lost reply, a new leader finishing what the old one started).

use ferrum_proto::msg::master::{CreatePartition, DeletePartition, NodeState};
use ferrum_proto::msg::Rpc;
use ferrum_proto::{ErrorCode, NodeId};
use futures_util::future::join_all;

use super::info::replicas;
use super::Master;
use crate::state::PartitionRecord;

impl Master {
    pub(crate) async fn call_node<R: Rpc>(&self, addr: &str, req: &R) -> Result<R::Response, ErrorCode> {
        match tokio::time::timeout(self.cfg.node_rpc_timeout(), self.pool.call(addr, req)).await {
            Ok(r) => r.map_err(|e| e.code()),
            Err(_) => Err(ErrorCode::Timeout),
        }
    }

    /// Creates every replica of `parts`; fails naming every replica that failed. The first member of
    /// each partition starts its group's first election (see `crate::placement`), so it is created
    /// last, once the others host the group and can vote at once; all calls of a phase go at once.
    pub(crate) async fn create_on_nodes(&self, parts: &[PartitionRecord]) -> Result<(), ErrorCode> {
        let (mut others, mut firsts) = (Vec::new(), Vec::new());
        {
            let st = self.state.read().expect("state lock");
            for p in parts {
                let members = replicas(&st, p);
                let req = CreatePartition {
                    partition: p.id,
                    kind: p.kind,
                    volume: p.volume,
                    members: members.clone(),
                    inodes: p.inodes,
                };
                for (i, m) in members.into_iter().enumerate() {
                    let phase = if i == 0 { &mut firsts } else { &mut others };
                    phase.push((m.node, m.addr, req.clone()));
                }
            }
        }
        self.create_calls(&others).await?;
        self.create_calls(&firsts).await
    }

    async fn create_calls(&self, calls: &[(NodeId, String, CreatePartition)]) -> Result<(), ErrorCode> {
        let results = join_all(calls.iter().map(|(_, addr, req)| self.call_node(addr, req))).await;
        let failed: Vec<String> = calls
            .iter()
            .zip(results)
            .filter_map(|((node, addr, req), r)| {
                r.err().map(|e| format!("partition {} on node {node} ({addr}): {e}", req.partition))
            })
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(ErrorCode::Unavailable(format!("cannot create {}", failed.join("; "))))
        }
    }

    /// Removes every replica of `parts` from its node. A replica that is already gone counts as
    /// removed; one on a dead node is given up on (with a warning), or deletion would never end.
    pub(crate) async fn delete_on_nodes(&self, parts: &[PartitionRecord]) -> Result<(), ErrorCode> {
        let calls: Vec<(NodeId, String, DeletePartition)> = {
            let st = self.state.read().expect("state lock");
            let mut calls = Vec::new();
            for p in parts {
                for r in replicas(&st, p) {
                    if self.liveness.state(r.node).0 == NodeState::Dead {
                        tracing::warn!(partition = %p.id, node = %r.node, "node is dead: its replica stays on its disk");
                        continue;
                    }
                    calls.push((r.node, r.addr, DeletePartition { partition: p.id }));
                }
            }
            calls
        };
        let results = join_all(calls.iter().map(|(_, addr, req)| self.call_node(addr, req))).await;
        let failed: Vec<String> = calls
            .iter()
            .zip(results)
            .filter_map(|((node, addr, req), r)| match r {
                Ok(()) | Err(ErrorCode::PartitionNotFound(_)) | Err(ErrorCode::GroupNotFound(_)) => None,
                Err(e) => Some(format!("partition {} on node {node} ({addr}): {e}", req.partition)),
            })
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(ErrorCode::Unavailable(format!("cannot delete {}", failed.join("; "))))
        }
    }
}
