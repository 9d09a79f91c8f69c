//! Who this master is in the master group, decided once and persisted with the group.
//!
//! - Bootstrap (`--peers`): the Raft ids are the positions in the sorted peer list (1-based), so
//!   every initial master derives the same ids from the same list, whatever order it was given in;
//!   each initialises the group with all of them.
//! - Join (`--join`): a running group allocates the id; the new master starts as a learner and asks
//!   to be promoted once it serves.
//! - Restart: the id and the initial members are read back from the group's description, and the
//!   flags are ignored: the group's membership lives in Raft from then on.

use std::collections::BTreeMap;

use ferrum_proto::{GroupId, NodeId};
use ferrum_raftstore::store::tag;
use ferrum_raftstore::{GroupDesc, Store};
use serde::{Deserialize, Serialize};

use crate::app::GROUP_KIND;
use crate::error::MasterError;

/// Persisted as the master group's `GroupDesc::params` (postcard); variants are only appended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupParams {
    V1 {
        /// This master's Raft id.
        self_id: NodeId,
        /// The members it initialises the group with (empty when it joined a running group).
        initial_members: Vec<(NodeId, String)>,
    },
}

impl GroupParams {
    pub fn self_id(&self) -> NodeId {
        match self {
            GroupParams::V1 { self_id, .. } => *self_id,
        }
    }

    pub fn initial_members(&self) -> BTreeMap<NodeId, String> {
        match self {
            GroupParams::V1 { initial_members, .. } => initial_members.iter().cloned().collect(),
        }
    }

    pub fn desc(&self) -> GroupDesc {
        GroupDesc { kind: GROUP_KIND.to_string(), params: postcard::to_stdvec(self).expect("params encode") }
    }
}

/// The parameters this instance's master group was created with, if it has one.
pub fn stored(store: &Store) -> Result<Option<GroupParams>, MasterError> {
    let Some(desc) = store.meta_get::<GroupDesc>(GroupId::MASTER, tag::GROUP_DESC)? else { return Ok(None) };
    if desc.kind != GROUP_KIND {
        return Err(MasterError::Corrupt { what: "raft_meta", detail: format!("group 0 is a {:?} group", desc.kind) });
    }
    postcard::from_bytes(&desc.params)
        .map(Some)
        .map_err(|e| MasterError::Corrupt { what: "raft_meta", detail: format!("group 0 parameters: {e}") })
}

/// The bootstrap members from `--peers` (just this master when empty) and this master's id.
pub fn from_peers(peers: &[String], advertise: &str) -> Result<GroupParams, MasterError> {
    let mut sorted: Vec<String> = if peers.is_empty() { vec![advertise.to_string()] } else { peers.to_vec() };
    sorted.sort();
    sorted.dedup();
    let members: Vec<(NodeId, String)> =
        sorted.into_iter().enumerate().map(|(i, addr)| (NodeId(i as u64 + 1), addr)).collect();
    let Some((self_id, _)) = members.iter().find(|(_, a)| a == advertise) else {
        return Err(MasterError::NotInPeers { advertise: advertise.to_string(), peers: peers.join(",") });
    };
    Ok(GroupParams::V1 { self_id: *self_id, initial_members: members.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ids_do_not_depend_on_the_order_of_the_list() {
        let a = from_peers(&peers(&["h:3", "h:1", "h:2"]), "h:2").unwrap();
        let b = from_peers(&peers(&["h:1", "h:2", "h:3", "h:1"]), "h:2").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.self_id(), NodeId(2));
        assert_eq!(
            a.initial_members().into_iter().collect::<Vec<_>>(),
            vec![(NodeId(1), "h:1".to_string()), (NodeId(2), "h:2".to_string()), (NodeId(3), "h:3".to_string())]
        );
    }

    #[test]
    fn alone_without_peers_and_refused_when_not_listed() {
        let alone = from_peers(&[], "h:9").unwrap();
        assert_eq!(alone.self_id(), NodeId(1));
        let err = from_peers(&peers(&["h:1"]), "h:9").unwrap_err().to_string();
        assert!(err.contains("h:9") && err.contains("--join"), "{err}");
    }

    #[test]
    fn params_round_trip_through_the_group_desc() {
        let p = from_peers(&peers(&["h:1", "h:2"]), "h:1").unwrap();
        let desc = p.desc();
        assert_eq!(desc.kind, "master");
        assert_eq!(postcard::from_bytes::<GroupParams>(&desc.params).unwrap(), p);
    }
}
