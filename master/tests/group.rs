//! Several masters in this process: bootstrapping a 3-master group from a peer list, joining masters
//! to a running group, and a leader failover without losing acknowledged changes.

mod common;

use std::time::Duration;

use common::*;
use ferrum_master::MasterSection;
use ferrum_proto::msg::master::NodeRole;
use ferrum_proto::msg::master::{GetClusterStatus, ListNodes, RegisterNode, RemoveMaster};
use ferrum_proto::{ErrorCode, NodeId};

fn register(i: u64) -> RegisterNode {
    RegisterNode {
        role: if i.is_multiple_of(2) { NodeRole::Meta } else { NodeRole::Data },
        advertise: format!("127.0.0.1:{}", 20000 + i),
        host: "h".into(),
        instance_uuid: format!("uuid-{i}"),
    }
}

async fn voters(masters: &[String]) -> usize {
    match call(masters, GetClusterStatus {}).await {
        Ok(s) => s.masters.iter().filter(|m| m.voter).count(),
        Err(_) => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bootstrap_three_then_fail_over() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let addrs: Vec<_> = (0..3).map(|_| free_addr()).collect();
    let peers: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    let section = MasterSection { peers: peers.clone(), ..test_section() };
    let mut running = Vec::new();
    for (d, a) in dirs.iter().zip(&addrs) {
        running.push(Some(start_master(d.path(), *a, section.clone()).await));
    }
    let mut acked = Vec::new();
    for i in 0..20 {
        acked.push((i, call(&peers, register(i)).await.unwrap().node_id));
    }
    // Kill the leader (in process: stop it; the multi-process test SIGKILLs).
    let status = call(&peers, GetClusterStatus {}).await.unwrap();
    let leader = status.leader.unwrap();
    let idx = peers.iter().position(|p| *p == leader.addr).unwrap();
    running[idx].take().unwrap().stop().await.unwrap();
    let live: Vec<String> = peers.iter().filter(|p| **p != leader.addr).cloned().collect();
    let t = tokio::time::Instant::now();
    let status = call(&live, GetClusterStatus {}).await.unwrap();
    assert_ne!(status.leader.as_ref().unwrap().addr, leader.addr);
    assert!(t.elapsed() < Duration::from_secs(10), "new leader after {:?}", t.elapsed());
    for (i, id) in &acked {
        assert_eq!(call(&live, register(*i)).await.unwrap().node_id, *id, "acknowledged registration {i} survived");
    }
    assert_eq!(call(&live, register(100)).await.unwrap().node_id, NodeId(21));
    assert_eq!(call(&live, ListNodes {}).await.unwrap().len(), 21);
    for r in running.into_iter().flatten() {
        r.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn masters_join_a_running_group() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let addrs: Vec<_> = (0..3).map(|_| free_addr()).collect();
    let first = addrs[0].to_string();
    let a = start_master(dirs[0].path(), addrs[0], test_section()).await;
    call(std::slice::from_ref(&first), register(1)).await.unwrap();
    let join = MasterSection { join: vec![first.clone()], ..test_section() };
    let b = start_master(dirs[1].path(), addrs[1], join.clone()).await;
    let c = start_master(dirs[2].path(), addrs[2], join).await;
    assert_eq!((b.master.id, c.master.id), (NodeId(2), NodeId(3)));
    let all: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    // `voter` means "in the committed membership": only then may an old master go away.
    wait_for("3 voters", T, || async { (voters(&all).await == 3).then_some(()) }).await;

    // The first master (the leader so far) goes away: the joined ones carry on with its state.
    a.stop().await.unwrap();
    let rest = all[1..].to_vec();
    assert_eq!(call(&rest, register(1)).await.unwrap().node_id, NodeId(1));
    assert_eq!(call(&rest, ListNodes {}).await.unwrap().len(), 1);
    // A joined master restarts on its state, without --join.
    c.stop().await.unwrap();
    let c = start_master(dirs[2].path(), addrs[2], test_section()).await;
    assert_eq!(c.master.id, NodeId(3));
    assert_eq!(call(&rest, register(2)).await.unwrap().node_id, NodeId(2));
    b.stop().await.unwrap();
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_redirects_to_the_leader() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let addrs: Vec<_> = (0..3).map(|_| free_addr()).collect();
    let peers: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    let section = MasterSection { peers: peers.clone(), ..test_section() };
    let mut running = Vec::new();
    for (d, a) in dirs.iter().zip(&addrs) {
        running.push(start_master(d.path(), *a, section.clone()).await);
    }
    let leader = call(&peers, GetClusterStatus {}).await.unwrap().leader.unwrap();
    let follower = peers.iter().find(|p| **p != leader.addr).unwrap();
    let direct = pool().call(follower, &register(1)).await.unwrap_err();
    match direct.code() {
        ErrorCode::NotLeader { leader: Some(h) } => assert_eq!(h.addr, leader.addr),
        other => panic!("{other:?}"),
    }
    for r in running {
        r.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn removing_masters_down_to_the_last_voter() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let addrs: Vec<_> = (0..3).map(|_| free_addr()).collect();
    let peers: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    let section = MasterSection { peers: peers.clone(), ..test_section() };
    let mut running = Vec::new();
    for (d, a) in dirs.iter().zip(&addrs) {
        running.push(start_master(d.path(), *a, section.clone()).await);
    }
    assert_eq!(call(&peers, register(1)).await.unwrap().node_id, NodeId(1));

    // The leader itself goes: it steps down once the membership without it is committed.
    let leader = call(&peers, GetClusterStatus {}).await.unwrap().leader.unwrap();
    assert!(call(&peers, RemoveMaster { id: leader.node }).await.unwrap().removed);
    let rest: Vec<String> = peers.iter().filter(|p| **p != leader.addr).cloned().collect();
    let status = wait_for("2 masters, a new leader", T, || async {
        let s = call(&rest, GetClusterStatus {}).await.ok()?;
        (s.masters.len() == 2 && s.leader.as_ref().is_some_and(|l| l.node != leader.node)).then_some(s)
    })
    .await;
    assert!(status.masters.iter().all(|m| m.voter && m.id != leader.node), "{:?}", status.masters);
    // The removed master no longer serves: it leads nothing and the group does not count it.
    let removed = running.iter().find(|r| r.master.id == leader.node).unwrap();
    assert!(!removed.master.members().iter().any(|m| m.id == leader.node && m.voter));
    assert!(matches!(pool().call(&leader.addr, &register(2)).await.unwrap_err().code(), ErrorCode::NotLeader { .. }));
    assert_eq!(call(&rest, register(2)).await.unwrap().node_id, NodeId(2));
    // Again: nothing to do, and said so.
    assert!(!call(&rest, RemoveMaster { id: leader.node }).await.unwrap().removed);

    // Down to one voter, which then cannot be removed.
    let second = status.masters.iter().find(|m| !m.leader).unwrap().clone();
    assert!(call(&rest, RemoveMaster { id: second.id }).await.unwrap().removed);
    let last: Vec<String> = rest.iter().filter(|p| **p != second.addr).cloned().collect();
    let status = wait_for("1 master", T, || async {
        let s = call(&last, GetClusterStatus {}).await.ok()?;
        (s.masters.len() == 1).then_some(s)
    })
    .await;
    let only = status.masters[0].id;
    match call(&last, RemoveMaster { id: only }).await.unwrap_err() {
        ErrorCode::InvalidArgument(e) => assert!(e.contains("only voter"), "{e}"),
        other => panic!("{other:?}"),
    }
    // The single remaining master carries on with the state, alone.
    assert_eq!(call(&last, register(1)).await.unwrap().node_id, NodeId(1));
    assert_eq!(call(&last, register(3)).await.unwrap().node_id, NodeId(3));
    for r in running {
        r.stop().await.unwrap();
    }
}
