//! Where peers are now. A metanode or datanode that restarts on a new `host:port` keeps its node id
//! (it is in its data dir), but the Raft memberships of its groups still carry the address it had
//! when it joined them. Rather than a membership change per group, each instance keeps this table of
//! current addresses, refreshed from the master's view of the nodes (which a node's registration
//! updates), and dials a peer at the table's address when it has one, at the membership's otherwise.

use std::collections::HashMap;
use std::sync::RwLock;

use ferrum_proto::NodeId;

#[derive(Debug, Default)]
pub struct Routes {
    map: RwLock<HashMap<NodeId, String>>,
    /// A peer could not be dialled: its address may have changed, worth asking the master early.
    unreachable: tokio::sync::Notify,
}

impl Routes {
    pub fn report_unreachable(&self) {
        self.unreachable.notify_one();
    }

    /// Returns after a peer was reported unreachable (at once if one was since the last call).
    pub async fn unreachable(&self) {
        self.unreachable.notified().await
    }

    /// The address to dial `node` at: the latest known, else the one its membership recorded.
    pub fn resolve(&self, node: NodeId, recorded: &str) -> String {
        match self.map.read().expect("routes lock").get(&node) {
            Some(addr) => addr.clone(),
            None => recorded.to_string(),
        }
    }

    /// Records current addresses; returns the nodes whose address changed (for the log).
    pub fn update(&self, nodes: impl IntoIterator<Item = (NodeId, String)>) -> Vec<(NodeId, String)> {
        let mut map = self.map.write().expect("routes lock");
        let mut changed = Vec::new();
        for (node, addr) in nodes {
            if map.get(&node) != Some(&addr) {
                map.insert(node, addr.clone());
                changed.push((node, addr));
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_address_wins_over_the_recorded_one() {
        let r = Routes::default();
        assert_eq!(r.resolve(NodeId(2), "h:1"), "h:1");
        assert_eq!(r.update([(NodeId(2), "h:9".to_string()), (NodeId(3), "h:3".to_string())]).len(), 2);
        assert_eq!(r.resolve(NodeId(2), "h:1"), "h:9");
        assert_eq!(r.update([(NodeId(2), "h:9".to_string())]), vec![], "unchanged");
        assert_eq!(r.update([(NodeId(2), "h:10".to_string())]), vec![(NodeId(2), "h:10".to_string())]);
        assert_eq!(r.resolve(NodeId(4), "h:4"), "h:4");
    }
}
