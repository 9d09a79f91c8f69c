//! The master group's replicated state: nodes, volumes, partitions, joined masters.
//!
//! It is held in memory (small: thousands of records) and persisted record by record in the group's
//! keyspace. [`State::apply`] changes the memory and returns the writes that persist the change; the
//! raftstore commits them atomically with the applied index, and [`State::load`] rebuilds the memory
//! from the keyspace at open and after a snapshot install.

mod apply;
mod apply_repair;
mod cmd;
pub mod keys;
mod records;
pub mod validate;

use std::collections::{BTreeMap, HashMap};

use ferrum_proto::{ErrorCode, NodeId, PartitionId, VolumeId};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use cmd::{CmdReply, MasterCmd, NewPartition};
pub use records::{Counters, DecommissionRecord, MasterRecord, NodeRecord, PartitionRecord, RepairTask, VolumeRecord};

/// One change to the keyspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub nodes: BTreeMap<NodeId, NodeRecord>,
    pub volumes: BTreeMap<VolumeId, VolumeRecord>,
    pub partitions: BTreeMap<PartitionId, PartitionRecord>,
    pub masters: BTreeMap<NodeId, MasterRecord>,
    /// Replica moves in flight, one per partition at most.
    pub repairs: BTreeMap<PartitionId, RepairTask>,
    pub decommissioning: BTreeMap<NodeId, DecommissionRecord>,
    pub counters: Counters,
    // Indexes, rebuilt at load.
    node_by_uuid: HashMap<String, NodeId>,
    /// Volumes that are not being deleted, by name.
    volume_by_name: HashMap<String, VolumeId>,
}

impl State {
    /// Rebuilds the state from every key/value pair of the keyspace.
    pub fn load<I>(pairs: I) -> Result<State, String>
    where
        I: IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    {
        let mut st = State::default();
        for (k, v) in pairs {
            if k.starts_with(keys::NODE) {
                let r: NodeRecord = decode(&k, &v)?;
                st.nodes.insert(r.id, r);
            } else if k.starts_with(keys::VOLUME) {
                let r: VolumeRecord = decode(&k, &v)?;
                st.volumes.insert(r.id, r);
            } else if k.starts_with(keys::PARTITION) {
                let r: PartitionRecord = decode(&k, &v)?;
                st.partitions.insert(r.id, r);
            } else if k.starts_with(keys::MASTER) {
                let r: MasterRecord = decode(&k, &v)?;
                st.masters.insert(r.id, r);
            } else if k.starts_with(keys::REPAIR) {
                let r: RepairTask = decode(&k, &v)?;
                st.repairs.insert(r.partition, r);
            } else if k.starts_with(keys::DECOMMISSION) {
                let r: DecommissionRecord = decode(&k, &v)?;
                st.decommissioning.insert(r.node, r);
            } else if k == keys::COUNTERS {
                st.counters = decode(&k, &v)?;
            } else {
                return Err(format!("unknown key {:?} in the master keyspace", String::from_utf8_lossy(&k)));
            }
        }
        st.reindex();
        Ok(st)
    }

    fn reindex(&mut self) {
        self.node_by_uuid = self.nodes.values().map(|n| (n.instance_uuid.clone(), n.id)).collect();
        self.volume_by_name = self
            .volumes
            .values()
            .filter(|v| v.state != ferrum_proto::msg::master::VolumeState::Deleting)
            .map(|v| (v.name.clone(), v.id))
            .collect();
    }

    /// Applies one command: on success the memory is changed and the returned writes persist exactly
    /// that change; on error nothing changed and there are no writes.
    pub fn apply(&mut self, cmd: MasterCmd) -> (Result<CmdReply, ErrorCode>, Vec<Write>) {
        let mut tx = Tx { st: self, writes: Vec::new() };
        let reply = tx.run(cmd);
        let writes = tx.writes;
        match reply {
            Ok(r) => (Ok(r), writes),
            Err(e) => {
                debug_assert!(writes.is_empty(), "a failed command must not have changed anything");
                (Err(e), Vec::new())
            }
        }
    }

    pub fn volume_named(&self, name: &str) -> Option<&VolumeRecord> {
        self.volume_by_name.get(name).and_then(|id| self.volumes.get(id))
    }

    pub fn node_by_uuid(&self, uuid: &str) -> Option<&NodeRecord> {
        self.node_by_uuid.get(uuid).and_then(|id| self.nodes.get(id))
    }

    /// The volume's partitions in id order.
    pub fn partitions_of(&self, volume: VolumeId) -> impl Iterator<Item = &PartitionRecord> {
        self.partitions.values().filter(move |p| p.volume == volume)
    }

    /// How many partition replicas each node hosts.
    pub fn replica_counts(&self) -> HashMap<NodeId, u64> {
        let mut counts = HashMap::new();
        for p in self.partitions.values() {
            for n in &p.replicas {
                *counts.entry(*n).or_insert(0) += 1;
            }
        }
        counts
    }
}

/// An apply in progress: every change goes through here so it is both in memory and in `writes`.
struct Tx<'a> {
    st: &'a mut State,
    writes: Vec<Write>,
}

impl Tx<'_> {
    fn put<T: Serialize>(&mut self, key: Vec<u8>, value: &T) {
        self.writes.push(Write::Put(key, postcard::to_stdvec(value).expect("records encode")));
    }

    fn save_node(&mut self, r: NodeRecord) {
        self.put(keys::node(r.id), &r);
        self.st.node_by_uuid.insert(r.instance_uuid.clone(), r.id);
        self.st.nodes.insert(r.id, r);
    }

    fn save_volume(&mut self, r: VolumeRecord) {
        self.put(keys::volume(r.id), &r);
        self.st.volumes.insert(r.id, r);
    }

    fn save_partition(&mut self, r: PartitionRecord) {
        self.put(keys::partition(r.id), &r);
        self.st.partitions.insert(r.id, r);
    }

    fn save_master(&mut self, r: MasterRecord) {
        self.put(keys::master(r.id), &r);
        self.st.masters.insert(r.id, r);
    }

    fn save_counters(&mut self) {
        let c = self.st.counters.clone();
        self.put(keys::COUNTERS.to_vec(), &c);
    }

    fn delete_partition(&mut self, id: PartitionId) {
        self.writes.push(Write::Delete(keys::partition(id)));
        self.st.partitions.remove(&id);
        self.delete_repair(id);
    }

    fn save_repair(&mut self, r: RepairTask) {
        self.put(keys::repair(r.partition), &r);
        self.st.repairs.insert(r.partition, r);
    }

    fn delete_repair(&mut self, id: PartitionId) {
        if self.st.repairs.remove(&id).is_some() {
            self.writes.push(Write::Delete(keys::repair(id)));
        }
    }

    fn delete_master(&mut self, id: NodeId) {
        if self.st.masters.remove(&id).is_some() {
            self.writes.push(Write::Delete(keys::master(id)));
        }
    }

    fn delete_volume(&mut self, id: VolumeId) {
        self.writes.push(Write::Delete(keys::volume(id)));
        self.st.volumes.remove(&id);
    }

    /// Something a client's view of `volume` shows changed.
    fn bump_view(&mut self, volume: VolumeId) {
        if let Some(mut v) = self.st.volumes.get(&volume).cloned() {
            v.view_version += 1;
            self.save_volume(v);
        }
    }
}

fn decode<T: DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<T, String> {
    postcard::from_bytes(value).map_err(|e| format!("corrupt record {:?}: {e}", String::from_utf8_lossy(key)))
}

#[cfg(test)]
mod tests;
