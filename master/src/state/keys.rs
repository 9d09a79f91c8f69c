//! Key layout of the master group's keyspace.
//!
//! Every record kind has its own prefix, with the record format's version in it. The prefixes are
//! persisted: never rename or reuse one; a new format gets a new prefix and a migration.

use ferrum_proto::{NodeId, PartitionId, VolumeId};

/// `node.v1/<NodeId BE>` → [`super::NodeRecord`]
pub const NODE: &[u8] = b"node.v1/";
/// `volume.v1/<VolumeId BE>` → [`super::VolumeRecord`]
pub const VOLUME: &[u8] = b"volume.v1/";
/// `partition.v1/<PartitionId BE>` → [`super::PartitionRecord`]
pub const PARTITION: &[u8] = b"partition.v1/";
/// `master.v1/<NodeId BE>` → [`super::MasterRecord`] (masters that joined after the bootstrap)
pub const MASTER: &[u8] = b"master.v1/";
/// `repair.v1/<PartitionId BE>` → [`super::RepairTask`]
pub const REPAIR: &[u8] = b"repair.v1/";
/// `decommission.v1/<NodeId BE>` → [`super::DecommissionRecord`]
pub const DECOMMISSION: &[u8] = b"decommission.v1/";
/// `counters.v1` → [`super::Counters`]
pub const COUNTERS: &[u8] = b"counters.v1";

fn with_id(prefix: &[u8], id: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 8);
    k.extend_from_slice(prefix);
    // Big-endian, so a scan returns records in id order.
    k.extend_from_slice(&id.to_be_bytes());
    k
}

pub fn node(id: NodeId) -> Vec<u8> {
    with_id(NODE, id.get())
}

pub fn volume(id: VolumeId) -> Vec<u8> {
    with_id(VOLUME, id.get())
}

pub fn partition(id: PartitionId) -> Vec<u8> {
    with_id(PARTITION, id.get())
}

pub fn master(id: NodeId) -> Vec<u8> {
    with_id(MASTER, id.get())
}

pub fn repair(id: PartitionId) -> Vec<u8> {
    with_id(REPAIR, id.get())
}

pub fn decommission(id: NodeId) -> Vec<u8> {
    with_id(DECOMMISSION, id.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_distinct_and_none_is_a_prefix_of_another() {
        let all = [NODE, VOLUME, PARTITION, MASTER, REPAIR, DECOMMISSION, COUNTERS];
        for (i, a) in all.iter().enumerate() {
            for (j, b) in all.iter().enumerate() {
                if i != j {
                    assert!(!b.starts_with(a), "{:?} is a prefix of {:?}", a, b);
                }
            }
        }
    }

    #[test]
    fn ids_sort_numerically() {
        assert!(node(NodeId(2)) < node(NodeId(256)));
        assert!(partition(PartitionId(255)) < partition(PartitionId(256)));
    }
}
