//! What a test asks a dev cluster beyond `ferrum dev ps`: the masters (over their RPC port, as `ferrum`'s
//! admin commands do), each instance's `/metrics` (its Raft groups), and the datanodes' own view of each
//! partition. Used to find leaders to kill and to prove a restarted instance rejoined and caught up.
//!
//! These are blocking calls with their own small runtime: call them from plain `#[test]`s (or from
//! `spawn_blocking`), not from inside a tokio runtime.

use std::future::Future;
use std::time::{Duration, Instant};

use ferrum_proto::msg::data::{PartitionStatus, PartitionStatusResp};
use ferrum_proto::msg::master::{
    ClusterStatus, GetClusterStatus, ListNodes, ListPartitions, NodeInfo, NodeState, PartitionInfo,
};
use ferrum_proto::msg::topology::PartitionKind;
use ferrum_proto::rpc::{ClientConfig, ConnPool, LeaderClient, RetryPolicy};

use super::{DevCluster, T};
use crate::harness::{http, wait_for};

/// Runs `f` to completion on a fresh current-thread runtime.
pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime").block_on(f)
}

/// The longest single operation a workload saw between two instants (e.g. while an instance was down).
#[derive(Clone, Copy, Debug, Default)]
pub struct Stall {
    pub longest: Duration,
    pub ops: u64,
}

impl DevCluster {
    fn masters_client(&self) -> LeaderClient {
        let policy = RetryPolicy { deadline: Duration::from_secs(20), ..Default::default() };
        LeaderClient::new(ConnPool::new(ClientConfig::default()), self.master_addrs(), policy)
    }

    pub fn cluster_status(&self) -> Result<ClusterStatus, String> {
        block_on(async { self.masters_client().call(&GetClusterStatus {}).await.map_err(|e| e.to_string()) })
    }

    /// Every registered metanode and datanode, as the master leader sees them.
    pub fn nodes(&self) -> Result<Vec<NodeInfo>, String> {
        block_on(async { self.masters_client().call(&ListNodes {}).await.map_err(|e| e.to_string()) })
    }

    pub fn partitions(&self) -> Result<Vec<PartitionInfo>, String> {
        let req = ListPartitions { volume: None };
        block_on(async { self.masters_client().call(&req).await.map_err(|e| e.to_string()) })
    }

    /// The name of the master that leads the master group now.
    pub fn master_leader(&self) -> String {
        let ps = self.ps();
        wait_for("a master leader", T, || {
            let addr = self.cluster_status()?.leader.ok_or("no leader")?.addr;
            ps.of_role("master").find(|m| m.rpc == addr).map(|m| m.name.clone()).ok_or(format!("leader {addr}?"))
        })
    }

    /// A gauge or counter from the instance's `/metrics` (the unlabelled-name prefix `series`).
    pub fn metric(&self, name: &str, series: &str) -> Option<f64> {
        let addr = self.ps().get(name).metrics.parse().ok()?;
        let text = http::get(addr, "/metrics", Duration::from_secs(5)).ok()?.text();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find(|l| l.split(['{', ' ']).next() == Some(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// The running instance of `role` that leads the most Raft groups (waits until one leads any).
    pub fn busiest_leader(&self, role: &str) -> String {
        wait_for(&format!("a {role} leading a Raft group"), T, || {
            let ps = self.ps();
            let best = ps
                .of_role(role)
                .filter(|i| i.running())
                .map(|i| (self.metric(&i.name, "ferrum_raft_leader_groups").unwrap_or(0.0), i.name.clone()))
                .max_by(|a, b| a.0.total_cmp(&b.0))?;
            (best.0 > 0.0).then_some(best.1)
        })
    }

    /// Proves that instance `name` (started again after a stop) is back:
    /// - `ferrum dev ps` shows it running;
    /// - the master leader lists it alive and counts its replicas live in the partition list (a metanode or
    ///   datanode), or it is a voter of the master group (a master);
    /// - it hosts as many Raft groups as the master assigned it (as its peers of the same role, for a master),
    ///   none of them without a leader;
    /// - it caught up: a datanode's applied index of each of its partitions reached what the most advanced
    ///   other replica had applied when the check began; for metanodes and masters the same on the sum of the
    ///   applied indexes of their groups (`ferrum_raft_applied_entries`).
    ///
    /// Returns how long that took from the call.
    pub fn wait_rejoined(&self, name: &str) -> Duration {
        let start = Instant::now();
        let ps = self.ps();
        let me = ps.get(name).clone();
        assert!(me.running(), "{name} is not running: {me:?}");
        let peers: Vec<String> =
            ps.of_role(&me.role).filter(|i| i.name != name && i.running()).map(|i| i.name.clone()).collect();
        let gauge = |n: &str, s: &str| self.metric(n, s).ok_or(format!("{n}: no {s} yet"));

        let groups: f64 = if me.role == "master" {
            wait_for(&format!("{name} to be a voter of the master group"), T, || {
                let st = self.cluster_status()?;
                st.masters.iter().any(|m| m.addr == me.rpc && m.voter).then_some(()).ok_or(format!("{:?}", st.masters))
            });
            1.0
        } else {
            wait_for(&format!("the master to list {name} alive"), T, || {
                let nodes = self.nodes()?;
                let n = nodes.iter().find(|n| n.advertise == me.rpc).ok_or(format!("{name} not registered"))?;
                if n.state == NodeState::Alive {
                    Ok((n.meta_partitions + n.data_partitions) as f64)
                } else {
                    Err(format!("{name} is {:?}", n.state))
                }
            })
        };
        if me.role != "master" {
            wait_for(&format!("the master to count every replica on {name} live"), T, || {
                let parts = self.partitions()?;
                let short: Vec<String> = parts
                    .iter()
                    .filter(|p| p.replicas.iter().any(|r| r.addr == me.rpc))
                    .filter(|p| (p.live_replicas as usize) < p.replicas.len())
                    .map(|p| format!("{} {}/{}", p.partition, p.live_replicas, p.replicas.len()))
                    .collect();
                if short.is_empty() {
                    Ok(())
                } else {
                    Err(format!("partitions short of live replicas: {short:?}"))
                }
            });
        }
        wait_for(&format!("{name} to host its {groups} Raft groups, each with a leader"), T, || {
            let (g, l) = (gauge(name, "ferrum_raft_groups")?, gauge(name, "ferrum_raft_leaderless_groups")?);
            if g == groups && l == 0.0 {
                Ok(())
            } else {
                Err(format!("{g} groups, {l} without a leader"))
            }
        });

        if me.role == "datanode" {
            self.wait_data_replicas_caught_up(&me);
        } else {
            let target = peers.iter().filter_map(|p| self.metric(p, "ferrum_raft_applied_entries")).fold(0.0, f64::max);
            wait_for(&format!("{name} to catch up with its peers' applied entries ({target})"), T, || {
                let mine = gauge(name, "ferrum_raft_applied_entries")?;
                if mine >= target {
                    Ok(())
                } else {
                    Err(format!("{mine} < {target}"))
                }
            });
        }
        start.elapsed()
    }

    /// Every data partition with a replica on `me`: its applied index reaches the other replicas' (at the time
    /// of the first look), as each replica reports it (`PartitionStatus`, no leader involved).
    fn wait_data_replicas_caught_up(&self, me: &super::DevInstance) {
        let parts: Vec<PartitionInfo> = wait_for("the partition list", T, || self.partitions())
            .into_iter()
            .filter(|p| p.kind == PartitionKind::Data && p.replicas.iter().any(|r| r.addr == me.rpc))
            .collect();
        assert!(!parts.is_empty(), "{} hosts no data partition", me.name);
        // A pool per call: each call runs on its own runtime, and a pooled connection dies with its runtime.
        let status = |addr: &str, p: &PartitionInfo| -> Result<PartitionStatusResp, String> {
            block_on(async {
                let pool = ConnPool::new(ClientConfig::default());
                let req = PartitionStatus { partition: p.partition };
                tokio::time::timeout(Duration::from_secs(5), pool.call(addr, &req))
                    .await
                    .map_err(|_| "timed out".to_string())?
                    .map_err(|e| e.to_string())
            })
        };
        for p in &parts {
            let target = p
                .replicas
                .iter()
                .filter(|r| r.addr != me.rpc)
                .filter_map(|r| status(&r.addr, p).ok())
                .map(|s| s.applied)
                .max()
                .unwrap_or(0);
            wait_for(
                &format!("{}'s replica of partition {} to reach applied {target}", me.name, p.partition),
                T,
                || {
                    let s = status(&me.rpc, p)?;
                    if s.applied >= target && s.leader.is_some() {
                        Ok(())
                    } else {
                        Err(format!("{s:?}"))
                    }
                },
            );
        }
    }
}
