//! Where the replicas of a new partition go.
//!
//! Never two replicas on one instance; distinct hosts while there are enough of them, else distinct
//! instances and a warning (a one-host development cluster must work). Among the candidates, those
//! with fewer partition replicas come first, then those with more free space. The first node of a
//! placement is the partition's first leader (it starts the group's first election): the chosen node
//! that leads the fewest partitions, so a new volume's leaders are spread from the start instead of
//! being handed over later, each handover stalling its partition for an election timeout.

use std::cmp::Reverse;
use std::collections::HashSet;

use ferrum_proto::NodeId;

/// A node that may receive a replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub node: NodeId,
    pub host: String,
    pub disk_free: u64,
    /// Partition replicas it hosts already.
    pub replicas: u64,
    /// Partitions it leads already.
    pub leads: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    pub nodes: Vec<NodeId>,
    /// Some replicas share a host: there were not enough distinct hosts among the candidates.
    pub shared_hosts: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{wanted} replicas wanted but only {available} candidate nodes")]
pub struct NotEnoughNodes {
    pub wanted: usize,
    pub available: usize,
}

/// Places partition after partition over one set of candidates, counting each placed replica, so that
/// consecutive partitions spread out.
pub struct Planner {
    candidates: Vec<Candidate>,
}

impl Planner {
    pub fn new(candidates: Vec<Candidate>) -> Planner {
        Planner { candidates }
    }

    pub fn len(&self) -> usize {
        self.candidates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }

    /// Chooses `n` distinct nodes.
    pub fn place(&mut self, n: usize) -> Result<Placed, NotEnoughNodes> {
        if n > self.candidates.len() {
            return Err(NotEnoughNodes { wanted: n, available: self.candidates.len() });
        }
        let mut order: Vec<usize> = (0..self.candidates.len()).collect();
        order.sort_by_key(|&i| {
            let c = &self.candidates[i];
            (c.replicas, Reverse(c.disk_free), c.node)
        });
        let mut chosen: Vec<usize> = Vec::with_capacity(n);
        let mut hosts: HashSet<&str> = HashSet::new();
        // First pass: the best candidate of each host not used yet.
        for &i in &order {
            if chosen.len() == n {
                break;
            }
            if hosts.insert(self.candidates[i].host.as_str()) {
                chosen.push(i);
            }
        }
        // Second pass: not enough hosts, so share them, still one replica per instance.
        let shared_hosts = chosen.len() < n;
        for &i in &order {
            if chosen.len() == n {
                break;
            }
            if !chosen.contains(&i) {
                chosen.push(i);
            }
        }
        for &i in &chosen {
            self.candidates[i].replicas += 1;
        }
        // The first leader: fewest leaderships, the earlier choice among equals.
        if let Some(first) = (0..chosen.len()).min_by_key(|&k| self.candidates[chosen[k]].leads) {
            chosen[..=first].rotate_right(1);
            self.candidates[chosen[0]].leads += 1;
        }
        Ok(Placed { nodes: chosen.iter().map(|&i| self.candidates[i].node).collect(), shared_hosts })
    }

    /// A replacement for one replica of a partition whose other replicas are on `keep_hosts`: the best
    /// candidate not in `exclude`, on a host of its own when there is one (`.1` is true when it has to
    /// share). `None`: no candidate at all.
    pub fn replace(&mut self, keep_hosts: &HashSet<String>, exclude: &HashSet<NodeId>) -> Option<(NodeId, bool)> {
        let best = |own_host: bool| {
            (0..self.candidates.len())
                .filter(|&i| !exclude.contains(&self.candidates[i].node))
                .filter(|&i| !own_host || !keep_hosts.contains(&self.candidates[i].host))
                .min_by_key(|&i| {
                    let c = &self.candidates[i];
                    (c.replicas, Reverse(c.disk_free), c.node)
                })
        };
        let (i, shared) = match best(true) {
            Some(i) => (i, false),
            None => (best(false)?, true),
        };
        self.candidates[i].replicas += 1;
        Some((self.candidates[i].node, shared))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(node: u64, host: &str, free: u64, replicas: u64) -> Candidate {
        Candidate { node: NodeId(node), host: host.into(), disk_free: free, replicas, leads: 0 }
    }

    fn distinct(v: &[NodeId]) -> bool {
        v.iter().collect::<HashSet<_>>().len() == v.len()
    }

    #[test]
    fn prefers_distinct_hosts() {
        let mut p = Planner::new(vec![c(1, "a", 100, 0), c(2, "a", 100, 0), c(3, "b", 100, 0), c(4, "c", 100, 0)]);
        let placed = p.place(3).unwrap();
        assert!(!placed.shared_hosts);
        assert_eq!(placed.nodes, vec![NodeId(1), NodeId(3), NodeId(4)]);
    }

    #[test]
    fn one_host_shares_it_with_distinct_instances_and_says_so() {
        let mut p = Planner::new(vec![c(1, "h", 100, 0), c(2, "h", 100, 0), c(3, "h", 100, 0)]);
        let placed = p.place(3).unwrap();
        assert!(placed.shared_hosts);
        assert!(distinct(&placed.nodes));
        assert_eq!(placed.nodes.len(), 3);
        let single = p.place(1).unwrap();
        assert!(!single.shared_hosts, "one replica never shares");
    }

    #[test]
    fn never_more_replicas_than_instances() {
        let mut p = Planner::new(vec![c(1, "a", 1, 0), c(2, "b", 1, 0)]);
        assert_eq!(p.place(3), Err(NotEnoughNodes { wanted: 3, available: 2 }));
    }

    #[test]
    fn prefers_fewer_partitions_then_more_free_space() {
        let mut p = Planner::new(vec![c(1, "a", 500, 3), c(2, "b", 100, 0), c(3, "c", 900, 0), c(4, "d", 50, 0)]);
        assert_eq!(p.place(2).unwrap().nodes, vec![NodeId(3), NodeId(2)]);
    }

    #[test]
    fn a_replacement_goes_to_a_new_host_then_to_the_least_loaded() {
        let mut p = Planner::new(vec![c(1, "a", 100, 0), c(2, "b", 100, 0), c(3, "a", 100, 0), c(4, "c", 100, 5)]);
        let keep: HashSet<String> = ["a".to_string(), "b".to_string()].into();
        let exclude: HashSet<NodeId> = [NodeId(1), NodeId(2), NodeId(9)].into();
        // Node 4 is busier than node 3, but it is the only one on a host of its own.
        assert_eq!(p.replace(&keep, &exclude), Some((NodeId(4), false)));
        let keep: HashSet<String> = ["a".to_string(), "b".to_string(), "c".to_string()].into();
        let exclude: HashSet<NodeId> = [NodeId(1), NodeId(2), NodeId(4)].into();
        assert_eq!(p.replace(&keep, &exclude), Some((NodeId(3), true)));
        let exclude: HashSet<NodeId> = (1..=4).map(NodeId).collect();
        assert_eq!(p.replace(&keep, &exclude), None);
    }

    #[test]
    fn consecutive_partitions_spread_over_the_nodes() {
        let mut p = Planner::new((1..=6).map(|i| c(i, &format!("h{i}"), 100, 0)).collect());
        let mut count = std::collections::HashMap::new();
        for _ in 0..4 {
            let placed = p.place(3).unwrap();
            assert!(distinct(&placed.nodes));
            for n in placed.nodes {
                *count.entry(n).or_insert(0) += 1;
            }
        }
        // 12 replicas over 6 nodes: 2 each.
        assert!(count.values().all(|&n| n == 2), "{count:?}");
    }

    #[test]
    fn first_leaders_go_to_the_nodes_leading_least() {
        let mut nodes: Vec<Candidate> = (1..=3).map(|i| c(i, "h", 100, 0)).collect();
        nodes[0].leads = 2;
        let mut p = Planner::new(nodes);
        let mut firsts = std::collections::HashMap::new();
        for _ in 0..4 {
            let placed = p.place(3).unwrap();
            assert!(distinct(&placed.nodes));
            *firsts.entry(placed.nodes[0]).or_insert(0) += 1;
        }
        // Node 1 led 2 already: the 4 new partitions start on nodes 2 and 3, 2 each.
        assert_eq!(firsts, [(NodeId(2), 2), (NodeId(3), 2)].into());
        let next = p.place(3).unwrap().nodes;
        assert_eq!(next[0], NodeId(1), "now every node leads 2: the first in placement order leads ({next:?})");
    }
}
