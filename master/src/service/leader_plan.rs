//! Which partition leaderships to hand over so that leaders are spread evenly over instances and
//! hosts. A pure function of the partitions, their reported leaders and the nodes that may lead.
//!
//! Each partition's leadership is one unit of load, and its fair share is split evenly among the
//! replicas that may lead it, so an instance's expected load is the sum of its shares. A move from
//! leader `a` to replica `b` lowers the sum of squared deviations (per instance, plus per host when
//! the two differ) exactly when `a` is more than one leadership above `b` relative to their shares;
//! the planner takes the best such moves, one per partition and per instance per pass.

use std::collections::{HashMap, HashSet};

use ferrum_proto::{NodeId, PartitionId};

/// A partition as the planner sees it.
#[derive(Clone, Debug)]
pub struct Led {
    pub partition: PartitionId,
    pub replicas: Vec<NodeId>,
    pub leader: NodeId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderMove {
    pub partition: PartitionId,
    pub from: NodeId,
    pub to: NodeId,
}

/// Up to `max` moves. `hosts` names the host of every node that may lead (alive, not being
/// decommissioned); replicas on other nodes neither take nor count a share.
pub fn plan(parts: &[Led], hosts: &HashMap<NodeId, String>, max: usize) -> Vec<LeaderMove> {
    let mut dev: HashMap<NodeId, f64> = HashMap::new();
    let mut host_dev: HashMap<&str, f64> = HashMap::new();
    for p in parts {
        let eligible: Vec<NodeId> = p.replicas.iter().copied().filter(|n| hosts.contains_key(n)).collect();
        if eligible.len() < 2 || !eligible.contains(&p.leader) {
            continue;
        }
        let share = 1.0 / eligible.len() as f64;
        for n in &eligible {
            *dev.entry(*n).or_default() -= share;
            *host_dev.entry(hosts[n].as_str()).or_default() -= share;
        }
        *dev.entry(p.leader).or_default() += 1.0;
        *host_dev.entry(hosts[&p.leader].as_str()).or_default() += 1.0;
    }

    let mut moves = Vec::new();
    let mut busy: HashSet<NodeId> = HashSet::new();
    let mut moved: HashSet<PartitionId> = HashSet::new();
    while moves.len() < max {
        // The change in the sum of squared deviations; negative is better.
        let gain = |a: NodeId, b: NodeId, dev: &HashMap<NodeId, f64>, host_dev: &HashMap<&str, f64>| {
            let mut delta = 2.0 - 2.0 * (dev[&a] - dev[&b]);
            let (ha, hb) = (hosts[&a].as_str(), hosts[&b].as_str());
            if ha != hb {
                delta += 2.0 - 2.0 * (host_dev[ha] - host_dev[hb]);
            }
            delta
        };
        let mut best: Option<(f64, LeaderMove)> = None;
        for p in parts {
            let a = p.leader;
            if moved.contains(&p.partition) || busy.contains(&a) || !dev.contains_key(&a) {
                continue;
            }
            for &b in &p.replicas {
                if b == a || busy.contains(&b) || !dev.contains_key(&b) {
                    continue;
                }
                let d = gain(a, b, &dev, &host_dev);
                // A small epsilon: exact ties (d == 0) would just swap the imbalance around.
                if d < -1e-9 && best.as_ref().is_none_or(|(bd, _)| d < *bd) {
                    best = Some((d, LeaderMove { partition: p.partition, from: a, to: b }));
                }
            }
        }
        let Some((_, m)) = best else { break };
        *dev.get_mut(&m.from).expect("counted") -= 1.0;
        *dev.get_mut(&m.to).expect("counted") += 1.0;
        *host_dev.get_mut(hosts[&m.from].as_str()).expect("counted") -= 1.0;
        *host_dev.get_mut(hosts[&m.to].as_str()).expect("counted") += 1.0;
        busy.extend([m.from, m.to]);
        moved.insert(m.partition);
        moves.push(m);
    }
    moves
}

#[cfg(test)]
mod tests {
    use super::*;

    fn led(p: u64, replicas: &[u64], leader: u64) -> Led {
        Led {
            partition: PartitionId(p),
            replicas: replicas.iter().map(|n| NodeId(*n)).collect(),
            leader: NodeId(leader),
        }
    }

    fn hosts(pairs: &[(u64, &str)]) -> HashMap<NodeId, String> {
        pairs.iter().map(|(n, h)| (NodeId(*n), h.to_string())).collect()
    }

    /// Applies moves until the planner has nothing left; returns leaders per node.
    fn settle(mut parts: Vec<Led>, hosts: &HashMap<NodeId, String>) -> (HashMap<NodeId, usize>, usize) {
        let mut total = 0;
        loop {
            let moves = plan(&parts, hosts, 4);
            if moves.is_empty() {
                break;
            }
            total += moves.len();
            assert!(total < 100, "the planner does not converge");
            for m in moves {
                let p = parts.iter_mut().find(|p| p.partition == m.partition).unwrap();
                assert_eq!(p.leader, m.from);
                assert!(p.replicas.contains(&m.to));
                p.leader = m.to;
            }
        }
        let mut count = HashMap::new();
        for p in &parts {
            *count.entry(p.leader).or_default() += 1;
        }
        (count, total)
    }

    #[test]
    fn all_leaders_on_one_instance_are_spread() {
        let h = hosts(&[(1, "a"), (2, "b"), (3, "c")]);
        let parts: Vec<Led> = (1..=9).map(|p| led(p, &[1, 2, 3], 1)).collect();
        let (count, moves) = settle(parts, &h);
        assert_eq!(moves, 6);
        for n in 1..=3 {
            assert_eq!(count[&NodeId(n)], 3, "{count:?}");
        }
    }

    #[test]
    fn a_balanced_cluster_is_left_alone() {
        let h = hosts(&[(1, "a"), (2, "b"), (3, "c")]);
        let parts = vec![led(1, &[1, 2, 3], 1), led(2, &[1, 2, 3], 2), led(3, &[1, 2, 3], 3), led(4, &[1, 2, 3], 1)];
        assert!(plan(&parts, &h, 4).is_empty());
    }

    #[test]
    fn one_move_per_instance_per_pass_and_only_to_eligible_replicas() {
        // Node 4 is not eligible (dead or decommissioning): it never receives a leadership.
        let h = hosts(&[(1, "a"), (2, "b"), (3, "c")]);
        let parts: Vec<Led> = (1..=6).map(|p| led(p, &[1, 2, 4], 1)).collect();
        let moves = plan(&parts, &h, 4);
        assert_eq!(moves.len(), 1, "{moves:?}");
        assert_eq!((moves[0].from, moves[0].to), (NodeId(1), NodeId(2)));
        let (count, _) = settle(parts, &h);
        assert_eq!((count[&NodeId(1)], count[&NodeId(2)]), (3, 3));
        assert!(!count.contains_key(&NodeId(4)));
    }

    #[test]
    fn hosts_are_balanced_too() {
        // Two instances on host a, one on host b, one on c; 8 partitions on all four.
        let h = hosts(&[(1, "a"), (2, "a"), (3, "b"), (4, "c")]);
        let parts: Vec<Led> = (1..=8).map(|p| led(p, &[1, 2, 3, 4], 3)).collect();
        let (count, _) = settle(parts, &h);
        for n in 1..=4 {
            assert_eq!(count[&NodeId(n)], 2, "{count:?}");
        }
    }
}
