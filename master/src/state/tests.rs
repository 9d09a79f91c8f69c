//! The state machine against a map standing in for the keyspace: after every command, reloading the
//! map must give back exactly the in-memory state (what a restart or a snapshot install does).

use std::collections::BTreeMap;

use ferrum_proto::msg::master::{NodeRole, VolumeState};
use ferrum_proto::msg::topology::{InodeRange, PartitionKind};
use ferrum_proto::{ClientId, ErrorCode, InodeId, NodeId, OpId, PartitionId, RequestId, VolumeId};

use super::*;

#[derive(Default)]
struct Harness {
    st: State,
    kv: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Harness {
    fn apply(&mut self, cmd: MasterCmd) -> Result<CmdReply, ErrorCode> {
        let before = self.st.clone();
        let (reply, writes) = self.st.apply(cmd);
        if reply.is_err() {
            assert_eq!(self.st, before, "a failed command changed the state");
            assert!(writes.is_empty());
        }
        for w in writes {
            match w {
                Write::Put(k, v) => self.kv.insert(k, v),
                Write::Delete(k) => self.kv.remove(&k),
            };
        }
        let reloaded = State::load(self.kv.clone()).expect("reload");
        assert_eq!(reloaded, self.st, "the persisted records do not rebuild the state");
        reply
    }

    fn register(&mut self, role: NodeRole, uuid: &str, addr: &str) -> NodeId {
        let cmd = MasterCmd::RegisterNode {
            role,
            advertise: addr.into(),
            host: "h".into(),
            instance_uuid: uuid.into(),
            now_unix_ms: 5,
        };
        match self.apply(cmd).unwrap() {
            CmdReply::Node(id) => id,
            r => panic!("{r:?}"),
        }
    }

    /// 3 metanodes (ids 1-3) and 3 datanodes (ids 4-6).
    fn with_nodes() -> Harness {
        let mut h = Harness::default();
        for i in 1..=3 {
            h.register(NodeRole::Meta, &format!("m{i}"), &format!("127.0.0.1:100{i}"));
        }
        for i in 1..=3 {
            h.register(NodeRole::Data, &format!("d{i}"), &format!("127.0.0.1:200{i}"));
        }
        h
    }
}

fn op(n: u64) -> OpId {
    OpId::new(ClientId(1), RequestId(n))
}

fn open_range(start: u64) -> Option<InodeRange> {
    Some(InodeRange { start: InodeId(start), end: InodeId(u64::MAX) })
}

fn create(name: &str, op_n: u64) -> MasterCmd {
    MasterCmd::CreateVolume {
        op: op(op_n),
        name: name.into(),
        replicas: 3,
        capacity: 0,
        owner: "me".into(),
        now_unix_ms: 7,
        partitions: vec![
            NewPartition { kind: PartitionKind::Meta, replicas: ids(&[1, 2, 3]), inodes: open_range(1) },
            NewPartition { kind: PartitionKind::Data, replicas: ids(&[4, 5, 6]), inodes: None },
            NewPartition { kind: PartitionKind::Data, replicas: ids(&[6, 5, 4]), inodes: None },
        ],
    }
}

fn ids(v: &[u64]) -> Vec<NodeId> {
    v.iter().copied().map(NodeId).collect()
}

#[test]
fn registration_is_stable_per_uuid() {
    let mut h = Harness::default();
    let a = h.register(NodeRole::Meta, "uuid-a", "127.0.0.1:1");
    let b = h.register(NodeRole::Data, "uuid-b", "127.0.0.1:2");
    assert_eq!((a, b), (NodeId(1), NodeId(2)));
    assert_eq!(h.register(NodeRole::Meta, "uuid-a", "127.0.0.1:1"), a);
    // A restart on another port keeps the id and records the new address.
    assert_eq!(h.register(NodeRole::Meta, "uuid-a", "127.0.0.1:9"), a);
    assert_eq!(h.st.nodes[&a].advertise, "127.0.0.1:9");
    let wrong_role = MasterCmd::RegisterNode {
        role: NodeRole::Data,
        advertise: "x:1".into(),
        host: "h".into(),
        instance_uuid: "uuid-a".into(),
        now_unix_ms: 0,
    };
    assert!(matches!(h.apply(wrong_role), Err(ErrorCode::InvalidArgument(_))));
}

#[test]
fn create_volume_records_partitions_not_ready() {
    let mut h = Harness::with_nodes();
    let r = h.apply(create("v1", 1)).unwrap();
    assert_eq!(
        r,
        CmdReply::Volume { volume: VolumeId(1), partitions: vec![PartitionId(1), PartitionId(2), PartitionId(3)] }
    );
    let v = h.st.volume_named("v1").unwrap();
    assert_eq!((v.state, v.view_version), (VolumeState::Creating, 1));
    assert!(h.st.partitions.values().all(|p| !p.ready && p.writable));
    assert_eq!(h.st.replica_counts()[&NodeId(4)], 2);

    h.apply(MasterCmd::VolumeReady { volume: VolumeId(1) }).unwrap();
    let v = h.st.volume_named("v1").unwrap();
    assert_eq!((v.state, v.view_version), (VolumeState::Ready, 2));
    assert!(h.st.partitions.values().all(|p| p.ready));
}

#[test]
fn duplicate_names_are_refused_but_a_retry_is_answered() {
    let mut h = Harness::with_nodes();
    let first = h.apply(create("v1", 1)).unwrap();
    assert_eq!(h.apply(create("v1", 1)).unwrap(), first, "same op id: the same volume");
    assert_eq!(h.apply(create("v1", 2)), Err(ErrorCode::VolumeExists("v1".into())));
    assert_eq!(h.st.volumes.len(), 1);
    assert_eq!(h.st.counters.next_partition, 4, "no ids burnt by refused commands");
}

#[test]
fn bad_placements_are_refused() {
    let mut h = Harness::with_nodes();
    let mut cmd = create("v1", 1);
    let MasterCmd::CreateVolume { partitions, .. } = &mut cmd else { unreachable!() };
    partitions[1].replicas = ids(&[4, 4, 5]);
    assert!(matches!(h.apply(cmd.clone()), Err(ErrorCode::InvalidArgument(m)) if m.contains("distinct")));
    let MasterCmd::CreateVolume { partitions, .. } = &mut cmd else { unreachable!() };
    partitions[1].replicas = ids(&[1, 5, 6]);
    assert!(matches!(h.apply(cmd.clone()), Err(ErrorCode::InvalidArgument(m)) if m.contains("not a Data")));
    let MasterCmd::CreateVolume { partitions, .. } = &mut cmd else { unreachable!() };
    partitions[1].replicas = ids(&[4, 5, 99]);
    assert!(matches!(h.apply(cmd), Err(ErrorCode::InvalidArgument(m)) if m.contains("not registered")));
    assert!(h.st.volumes.is_empty());
}

#[test]
fn delete_frees_the_name_then_remove_forgets_everything() {
    let mut h = Harness::with_nodes();
    h.apply(create("v1", 1)).unwrap();
    h.apply(MasterCmd::VolumeReady { volume: VolumeId(1) }).unwrap();
    h.apply(MasterCmd::DeleteVolume { op: op(2), name: "v1".into() }).unwrap();
    assert_eq!(h.st.volumes[&VolumeId(1)].state, VolumeState::Deleting);
    assert!(h.st.volume_named("v1").is_none());
    // Retry of the same delete: fine; another delete: not found.
    h.apply(MasterCmd::DeleteVolume { op: op(2), name: "v1".into() }).unwrap();
    assert_eq!(
        h.apply(MasterCmd::DeleteVolume { op: op(3), name: "v1".into() }),
        Err(ErrorCode::VolumeNotFound("v1".into()))
    );
    // The name can be reused while the old volume's partitions are still being removed.
    h.apply(create("v1", 4)).unwrap();
    h.apply(MasterCmd::RemoveVolume { volume: VolumeId(1) }).unwrap();
    assert_eq!(h.st.volumes.len(), 1);
    assert_eq!(h.st.partitions.len(), 3);
    assert!(h.st.partitions.values().all(|p| p.volume == VolumeId(2)));
}

#[test]
fn growth_adds_data_partitions_and_splits_the_last_meta_partition() {
    let mut h = Harness::with_nodes();
    h.apply(create("v1", 1)).unwrap();
    h.apply(MasterCmd::VolumeReady { volume: VolumeId(1) }).unwrap();

    let added = h
        .apply(MasterCmd::AddPartitions {
            volume: VolumeId(1),
            partitions: vec![NewPartition { kind: PartitionKind::Data, replicas: ids(&[5, 6, 4]), inodes: None }],
        })
        .unwrap();
    assert_eq!(added, CmdReply::Partitions(vec![PartitionId(4)]));
    let version = h.st.volumes[&VolumeId(1)].view_version;
    h.apply(MasterCmd::PartitionsReady { partitions: vec![PartitionId(4)] }).unwrap();
    assert_eq!(h.st.volumes[&VolumeId(1)].view_version, version + 1);

    h.apply(MasterCmd::SetWritable { partition: PartitionId(2), writable: false }).unwrap();
    assert!(!h.st.partitions[&PartitionId(2)].writable);

    let split = MasterCmd::SplitMeta { partition: PartitionId(1), end: InodeId(5000), replicas: ids(&[2, 3, 1]) };
    assert_eq!(h.apply(split.clone()).unwrap(), CmdReply::Partitions(vec![PartitionId(5)]));
    assert_eq!(h.st.partitions[&PartitionId(1)].inodes, Some(InodeRange { start: InodeId(1), end: InodeId(5000) }));
    assert_eq!(h.st.partitions[&PartitionId(5)].inodes, open_range(5000));
    assert_eq!(h.apply(split).unwrap(), CmdReply::Partitions(vec![PartitionId(5)]), "a retried split");
    // Only the last, open-ended partition splits, and only above its start.
    let again = MasterCmd::SplitMeta { partition: PartitionId(1), end: InodeId(6000), replicas: ids(&[1, 2, 3]) };
    assert!(h.apply(again).is_err());
    let low = MasterCmd::SplitMeta { partition: PartitionId(5), end: InodeId(4000), replicas: ids(&[1, 2, 3]) };
    assert!(h.apply(low).is_err());
}

#[test]
fn master_ids_are_allocated_above_the_members_and_stable_per_addr() {
    let mut h = Harness::default();
    let alloc = |addr: &str, min| MasterCmd::AllocMasterId { addr: addr.into(), min_id: NodeId(min) };
    assert_eq!(h.apply(alloc("m4:1", 4)).unwrap(), CmdReply::Master(NodeId(4)));
    assert_eq!(h.apply(alloc("m4:1", 5)).unwrap(), CmdReply::Master(NodeId(4)));
    assert_eq!(h.apply(alloc("m5:1", 4)).unwrap(), CmdReply::Master(NodeId(5)));
}

#[test]
fn address_change_bumps_the_views_that_show_it() {
    let mut h = Harness::with_nodes();
    h.apply(create("v1", 1)).unwrap();
    let before = h.st.volumes[&VolumeId(1)].view_version;
    h.register(NodeRole::Data, "d1", "127.0.0.1:2999");
    assert_eq!(h.st.volumes[&VolumeId(1)].view_version, before + 1);
    h.register(NodeRole::Data, "d1", "127.0.0.1:2999");
    assert_eq!(h.st.volumes[&VolumeId(1)].view_version, before + 1, "no change, no bump");
}

#[test]
fn unknown_keys_are_refused_at_load() {
    let err = State::load([(b"junk".to_vec(), vec![1])]).unwrap_err();
    assert!(err.contains("junk"), "{err}");
}
