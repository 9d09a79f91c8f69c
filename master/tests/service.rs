//! One master in this process with fake nodes: volumes end to end, placement, the resource cache,
//! liveness, growth and restart.

mod common;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use ferrum_proto::msg::master::{
    CreateVolume, DeleteVolume, GetClusterStatus, GetVolumeView, ListNodes, ListPartitions, ListVolumes, NodeRole,
    NodeState, PartitionReport, VolumeState, VolumeViewReply,
};
use ferrum_proto::msg::topology::{InodeRange, PartitionKind, VolumeView};
use ferrum_proto::{ClientId, ErrorCode, InodeId, OpId, PartitionId, RequestId};

fn create(name: &str, op: u64, replicas: u8) -> CreateVolume {
    CreateVolume {
        op: OpId::new(ClientId(7), RequestId(op)),
        name: name.into(),
        replicas,
        capacity: 0,
        owner: "test".into(),
    }
}

async fn view(masters: &[String], name: &str) -> Result<VolumeView, ErrorCode> {
    match call(masters, GetVolumeView { name: name.into(), known_version: 0 }).await? {
        VolumeViewReply::Changed(v) => Ok(v),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn volume_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let listen = free_addr();
    let running = start_master(dir.path(), listen, test_section()).await;
    let masters = vec![listen.to_string()];
    let metas = nodes(NodeRole::Meta, 3, |i| format!("host{i}"), &masters).await;
    let datas = nodes(NodeRole::Data, 3, |i| format!("host{i}"), &masters).await;

    let created = call(&masters, create("v1", 1, 3)).await.unwrap();
    assert!(created.warnings.is_empty(), "{:?}", created.warnings);
    assert_eq!(created.volume.state, VolumeState::Ready);
    assert_eq!((created.volume.meta_partitions, created.volume.data_partitions), (1, 3));

    // Every replica was asked to host its partition with the same, complete member list.
    let v = view(&masters, "v1").await.unwrap();
    assert_eq!(v.meta_partitions.len(), 1);
    assert_eq!(v.meta_partitions[0].inodes, InodeRange { start: InodeId::ROOT, end: InodeId(u64::MAX) });
    assert_eq!(v.data_partitions.len(), 3);
    for (kind, replicas, part) in v
        .meta_partitions
        .iter()
        .map(|m| (PartitionKind::Meta, &m.replicas, m.partition))
        .chain(v.data_partitions.iter().map(|d| (PartitionKind::Data, &d.replicas, d.partition)))
    {
        let nodes: HashSet<_> = replicas.iter().map(|r| r.node).collect();
        assert_eq!(nodes.len(), 3, "3 distinct instances for {part}");
        let fleet = if kind == PartitionKind::Meta { &metas } else { &datas };
        for n in fleet {
            let c = n.created.lock().unwrap().get(&part).cloned().unwrap_or_else(|| panic!("{part} not on {}", n.addr));
            assert_eq!(&c.members, replicas);
            assert_eq!(c.kind, kind);
        }
    }
    let again = call(&masters, GetVolumeView { name: "v1".into(), known_version: v.version }).await.unwrap();
    assert_eq!(again, VolumeViewReply::Unchanged { version: v.version });

    // Clear errors.
    assert_eq!(call(&masters, create("v1", 2, 3)).await.unwrap_err(), ErrorCode::VolumeExists("v1".into()));
    assert_eq!(call(&masters, create("v1", 1, 3)).await.unwrap().volume.id, created.volume.id, "a retried create");
    let too_many = call(&masters, create("v2", 3, 4)).await.unwrap_err().to_string();
    assert!(too_many.contains("replica count 4 is above the number of usable metanodes"), "{too_many}");
    assert_eq!(view(&masters, "nope").await.unwrap_err(), ErrorCode::VolumeNotFound("nope".into()));
    assert!(matches!(call(&masters, create("bad/name", 4, 3)).await, Err(ErrorCode::InvalidArgument(_))));

    let listed = call(&masters, ListNodes {}).await.unwrap();
    assert_eq!(listed.len(), 6);
    assert!(listed.iter().all(|n| n.state == NodeState::Alive));
    assert!(listed.iter().filter(|n| n.role == NodeRole::Data).all(|n| n.data_partitions == 3));
    let status = call(&masters, GetClusterStatus {}).await.unwrap();
    assert_eq!((status.nodes_alive, status.volumes, status.meta_partitions, status.data_partitions), (6, 1, 1, 3));
    let mut features: Vec<String> = ferrum_raftstore::node::FEATURES.iter().map(|f| f.to_string()).collect();
    features.sort();
    assert_eq!(status.features, features);
    assert_eq!(status.masters.len(), 1);
    assert!(status.masters[0].leader && status.masters[0].resources.is_some());

    call(&masters, DeleteVolume { op: OpId::new(ClientId(7), RequestId(9)), name: "v1".into() }).await.unwrap();
    assert_eq!(view(&masters, "v1").await.unwrap_err(), ErrorCode::VolumeNotFound("v1".into()));
    wait_for("volume forgotten", T, || async {
        call(&masters, ListVolumes {}).await.unwrap().is_empty().then_some(())
    })
    .await;
    for n in metas.iter().chain(&datas) {
        assert!(n.created.lock().unwrap().is_empty(), "{} still hosts partitions", n.addr);
    }
    // The name is free again.
    call(&masters, create("v1", 10, 3)).await.unwrap();
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn placement_reads_resources_through_the_ttl_cache() {
    let dir = tempfile::tempdir().unwrap();
    let listen = free_addr();
    let ttl = Duration::from_secs(3);
    let section = ferrum_master::MasterSection { resource_space_ttl_ms: ttl.as_millis() as u64, ..test_section() };
    let running = start_master(dir.path(), listen, section).await;
    let masters = vec![listen.to_string()];
    let all: Vec<_> = [
        nodes(NodeRole::Meta, 3, |i| format!("h{i}"), &masters).await,
        nodes(NodeRole::Data, 3, |i| format!("h{i}"), &masters).await,
    ]
    .concat();
    let calls = || all.iter().map(|n| n.resource_calls.load(Ordering::SeqCst)).collect::<Vec<_>>();
    assert_eq!(calls(), vec![0; 6]);

    let t0 = tokio::time::Instant::now();
    call(&masters, create("a", 1, 3)).await.unwrap();
    assert_eq!(calls(), vec![1; 6], "the first placement asks every candidate");
    call(&masters, create("b", 2, 3)).await.unwrap();
    assert!(t0.elapsed() < ttl, "the test machine is too slow for this TTL");
    assert_eq!(calls(), vec![1; 6], "a second placement within the TTL asks nobody");

    // Let the TTL run out: nothing else to wait for.
    tokio::time::sleep_until(t0 + ttl + Duration::from_millis(100)).await;
    call(&masters, create("c", 3, 3)).await.unwrap();
    assert_eq!(calls(), vec![2; 6], "after the TTL every candidate is asked again");
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_one_host_cluster_works_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let listen = free_addr();
    let running = start_master(dir.path(), listen, test_section()).await;
    let masters = vec![listen.to_string()];
    let _metas = nodes(NodeRole::Meta, 3, |_| "onehost".into(), &masters).await;
    let _datas = nodes(NodeRole::Data, 3, |_| "onehost".into(), &masters).await;
    let created = call(&masters, create("v", 1, 3)).await.unwrap();
    assert_eq!(created.warnings.len(), 2, "{:?}", created.warnings);
    assert!(created.warnings.iter().all(|w| w.contains("share a host")), "{:?}", created.warnings);
    for p in call(&masters, ListPartitions { volume: Some("v".into()) }).await.unwrap() {
        assert_eq!(p.replicas.iter().map(|r| r.node).collect::<HashSet<_>>().len(), 3, "distinct instances");
    }
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_keeps_volumes_and_node_ids() {
    let dir = tempfile::tempdir().unwrap();
    let listen = free_addr();
    let running = start_master(dir.path(), listen, test_section()).await;
    let masters = vec![listen.to_string()];
    let all: Vec<_> = [
        nodes(NodeRole::Meta, 1, |_| "h".into(), &masters).await,
        nodes(NodeRole::Data, 1, |_| "h".into(), &masters).await,
    ]
    .concat();
    let created = call(&masters, create("kept", 1, 1)).await.unwrap();
    let ids: Vec<_> = all.iter().map(|n| n.id().unwrap()).collect();
    running.stop().await.unwrap();

    let running = start_master(dir.path(), listen, test_section()).await;
    let volumes = call(&masters, ListVolumes {}).await.unwrap();
    assert_eq!(volumes.len(), 1);
    assert_eq!(volumes[0].id, created.volume.id);
    assert_eq!(view(&masters, "kept").await.unwrap().data_partitions.len(), 3);
    // Nodes that register again (same uuid) keep their ids.
    for n in &all {
        *n.id.lock().unwrap() = None;
    }
    for (n, id) in all.iter().zip(ids) {
        assert_eq!(wait_for("re-registered", T, || async { n.id() }).await, id);
    }
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn silent_nodes_turn_dead_and_leave_partitions_under_replicated() {
    let dir = tempfile::tempdir().unwrap();
    let listen = free_addr();
    let running = start_master(dir.path(), listen, test_section()).await;
    let masters = vec![listen.to_string()];
    let _metas = nodes(NodeRole::Meta, 3, |i| format!("h{i}"), &masters).await;
    let datas = nodes(NodeRole::Data, 3, |i| format!("h{i}"), &masters).await;
    call(&masters, create("v", 1, 3)).await.unwrap();

    datas[0].beating.store(false, Ordering::SeqCst);
    let id = datas[0].id().unwrap();
    wait_for("node dead", T, || async {
        let n = call(&masters, ListNodes {}).await.unwrap();
        (n.iter().find(|n| n.id == id).unwrap().state == NodeState::Dead).then_some(())
    })
    .await;
    let status = call(&masters, GetClusterStatus {}).await.unwrap();
    assert_eq!((status.nodes_dead, status.under_replicated_partitions), (1, 3));
    let err = call(&masters, create("w", 2, 3)).await.unwrap_err().to_string();
    assert!(err.contains("2 of 3 registered are alive"), "{err}");
    datas[0].beating.store(true, Ordering::SeqCst);
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn volumes_grow_data_partitions_and_split_meta_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let listen = free_addr();
    let section = ferrum_master::MasterSection {
        data_partitions_per_volume: 2,
        min_writable_data_partitions: 2,
        data_partition_size: 1000,
        meta_split_inodes: 100,
        meta_split_step: 50,
        ..test_section()
    };
    let running = start_master(dir.path(), listen, section).await;
    let masters = vec![listen.to_string()];
    let metas = nodes(NodeRole::Meta, 3, |i| format!("h{i}"), &masters).await;
    let datas = nodes(NodeRole::Data, 3, |i| format!("h{i}"), &masters).await;
    let v0 = {
        call(&masters, create("v", 1, 3)).await.unwrap();
        view(&masters, "v").await.unwrap()
    };
    let full = v0.data_partitions[0].partition;
    let meta = v0.meta_partitions[0].partition;
    let report = |p: PartitionId, kind, leader, used, items| PartitionReport {
        partition: p,
        kind,
        is_leader: leader,
        used_bytes: used,
        items,
        read_only: false,
    };
    for (i, n) in datas.iter().enumerate() {
        n.reports.lock().unwrap().push(report(full, PartitionKind::Data, i == 0, 1000, 3));
    }
    for (i, n) in metas.iter().enumerate() {
        n.reports.lock().unwrap().push(report(meta, PartitionKind::Meta, i == 1, 0, 150));
    }
    let v1 = wait_for("growth", T, || async {
        let v = view(&masters, "v").await.ok()?;
        (v.data_partitions.len() == 3 && v.meta_partitions.len() == 2).then_some(v)
    })
    .await;
    assert!(v1.version > v0.version);
    let old = v1.data_partitions.iter().find(|d| d.partition == full).unwrap();
    assert!(!old.writable, "the full partition is read-only");
    assert_eq!(v1.data_partitions.iter().filter(|d| d.writable).count(), 2);
    // The split: the old range ends where the metanode said (items + 1 + step), the new one goes on.
    let end = InodeId(150 + 1 + 50);
    assert_eq!(v1.meta_partitions[0].inodes, InodeRange { start: InodeId::ROOT, end });
    assert_eq!(v1.meta_partitions[1].inodes, InodeRange { start: end, end: InodeId(u64::MAX) });
    assert_eq!(v1.meta_partitions[0].leader.as_ref().map(|l| l.node), metas[1].id());
    let new_meta = v1.meta_partitions[1].partition;
    assert_eq!(metas.iter().filter(|n| n.hosts(new_meta)).count(), 3);
    running.stop().await.unwrap();
}
