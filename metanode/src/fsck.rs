//! Consistency check (and repair) of a volume's namespace across its meta partitions.
//!
//! 1. Leftovers of cross-partition operations (prepares, outboxes) older than `grace` are finished
//!    exactly as the sweeper does; younger ones are in flight and reported.
//! 2. Every inode and entry of every partition is read, and the namespace's invariants checked:
//!    every entry leads to an existing inode of the same kind; a file's link count equals its entries;
//!    every directory but the root has exactly one entry, in the directory its `..` names, and a link
//!    count of 2 + subdirectories; no inode is unreachable (except orphans awaiting eviction).
//! 3. With `repair`, what can be fixed without guessing is fixed: dangling entries removed, link
//!    counts and parents set (a file with no entry becomes an orphan; an empty unreachable directory is
//!    deleted). Inodes touched by operations still in flight are left alone. Orphans left by clients
//!    that died holding them open are evicted when asked (`evict_orphans_older_than`).
//!
//! It holds the volume's inode and entry tables in memory, so it is meant for offline checks and tests
//! of moderate volumes, not as a background task.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrum_proto::msg::attr::FileKind;
use ferrum_proto::msg::meta::MetaRoute;
use ferrum_proto::msg::name::Name;
use ferrum_proto::{ClientId, ErrorCode, InodeId, OpId, RequestId};
use serde::{Deserialize, Serialize};

use crate::cluster::{scan_all, Cluster};
use crate::cmd::{Body, OpKey, Repair};
use crate::records::{Effect, PreparedAction};
use crate::steps;
use crate::sweeper;
use crate::wire::{ScanItem, Table};

/// Repairs are recorded under this client id.
pub const FSCK_CLIENT: ClientId = ClientId(u64::MAX);

#[derive(Clone, Debug)]
pub struct FsckOptions {
    pub repair: bool,
    /// Leftovers at least this old are finished; `Duration::ZERO` when no client is active.
    pub grace: Duration,
    /// Evict orphans (unlinked inodes awaiting their last close) unlinked at least this long ago: the
    /// clients that held them open are gone (crashed before evicting). Only with `repair`.
    pub evict_orphans_older_than: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Problem {
    /// An entry whose inode does not exist.
    DanglingEntry {
        parent: InodeId,
        name: Name,
        inode: InodeId,
    },
    /// An entry whose kind differs from its inode's.
    KindMismatch {
        parent: InodeId,
        name: Name,
        inode: InodeId,
    },
    WrongNlink {
        inode: InodeId,
        has: u32,
        want: u32,
    },
    /// A directory whose `..` is not the directory holding its entry.
    WrongParent {
        inode: InodeId,
        has: InodeId,
        want: InodeId,
    },
    /// A linked inode no entry leads to.
    Unreachable {
        inode: InodeId,
        kind: FileKind,
    },
    /// A directory with more than one entry.
    DirLinkedTwice {
        inode: InodeId,
    },
    /// A prepare or outbox of an operation still in flight (younger than the grace).
    InFlight {
        partition: ferrum_proto::PartitionId,
        op: OpId,
        step: u32,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsckReport {
    pub partitions: usize,
    pub inodes: u64,
    pub entries: u64,
    /// Inodes with no link awaiting eviction (not a problem).
    pub orphans: u64,
    /// Prepares and outboxes finished by this run.
    pub recovered: u64,
    pub problems: Vec<Problem>,
    pub repaired: u64,
    /// Orphans evicted (see [`FsckOptions::evict_orphans_older_than`]).
    pub evicted: u64,
}

impl FsckReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

struct InodeFacts {
    kind: FileKind,
    nlink: u32,
    parent: InodeId,
}

struct EntryFacts {
    parent: InodeId,
    name: Name,
    inode: InodeId,
    kind: FileKind,
}

fn route_of(routes: &[MetaRoute], ino: InodeId) -> Result<&MetaRoute, ErrorCode> {
    crate::ops::route_of(routes, ino)
}

/// Inodes a leftover still changes: not to be judged while it is pending.
fn touched_by_prepare(a: &PreparedAction) -> Vec<InodeId> {
    match a {
        PreparedAction::NewInode { ino } | PreparedAction::LinkInc { ino } | PreparedAction::DirDying { ino } => {
            vec![*ino]
        }
        PreparedAction::SrcEntry { parent, ino, exchange, .. } => {
            let mut v = vec![*parent, *ino];
            v.extend(exchange.map(|(i, _)| i));
            v
        }
    }
}

pub async fn fsck(c: &impl Cluster, routes: &[MetaRoute], opts: &FsckOptions) -> Result<FsckReport, ErrorCode> {
    let mut report = FsckReport { partitions: routes.len(), ..Default::default() };
    let mut busy: BTreeSet<InodeId> = BTreeSet::new();

    // 1. Leftovers.
    for route in routes {
        let stats = sweeper::sweep(c, route, opts.grace).await?;
        report.recovered += (stats.resolved + stats.drained) as u64;
        for item in scan_all(c, route, Table::Prepared).await? {
            if let ScanItem::Prepared { op, step, rec } = item {
                busy.extend(touched_by_prepare(&rec.action));
                report.problems.push(Problem::InFlight { partition: route.partition, op, step });
            }
        }
        for item in scan_all(c, route, Table::Outbox).await? {
            if let ScanItem::Outbox { op, step, rec } = item {
                for i in &rec.items {
                    busy.insert(match i.effect {
                        Effect::DecLink { ino } | Effect::Relink { ino, .. } => ino,
                    });
                }
                report.problems.push(Problem::InFlight { partition: route.partition, op, step });
            }
        }
    }

    // 2. The tables.
    let mut inodes: HashMap<InodeId, InodeFacts> = HashMap::new();
    let mut entries: Vec<EntryFacts> = Vec::new();
    let mut old_orphans: Vec<InodeId> = Vec::new();
    let now = ferrum_proto::msg::attr::Time::now();
    for route in routes {
        for item in scan_all(c, route, Table::Inodes).await? {
            if let ScanItem::Inode { attr, parent, dying } = item {
                if dying {
                    busy.insert(attr.inode);
                }
                inodes.insert(attr.inode, InodeFacts { kind: attr.kind, nlink: attr.nlink, parent });
            }
        }
        for item in scan_all(c, route, Table::Dentries).await? {
            if let ScanItem::Dentry { parent, name, inode, kind, locked } = item {
                if locked {
                    busy.insert(inode);
                    busy.insert(parent);
                }
                entries.push(EntryFacts { parent, name, inode, kind });
            }
        }
        for item in scan_all(c, route, Table::Orphans).await? {
            report.orphans += 1;
            if let (ScanItem::Orphan { inode, since }, Some(age)) = (item, opts.evict_orphans_older_than) {
                if sweeper::older_than(since, now, age) {
                    old_orphans.push(inode);
                }
            }
        }
    }
    report.inodes = inodes.len() as u64;
    report.entries = entries.len() as u64;

    // 3. Invariants.
    let mut links: HashMap<InodeId, Vec<usize>> = HashMap::new();
    let mut subdirs: BTreeMap<InodeId, u32> = BTreeMap::new();
    let mut repairs: Vec<(InodeId, Repair)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        match inodes.get(&e.inode) {
            None => {
                if !busy.contains(&e.inode) {
                    report.problems.push(Problem::DanglingEntry {
                        parent: e.parent,
                        name: e.name.clone(),
                        inode: e.inode,
                    });
                    repairs.push((
                        e.parent,
                        Repair::RemoveDentry { parent: e.parent, name: e.name.clone(), expect: e.inode },
                    ));
                }
                continue;
            }
            Some(f) if f.kind != e.kind => {
                report.problems.push(Problem::KindMismatch { parent: e.parent, name: e.name.clone(), inode: e.inode })
            }
            Some(_) => {}
        }
        links.entry(e.inode).or_default().push(i);
        if e.kind == FileKind::Dir {
            *subdirs.entry(e.parent).or_default() += 1;
        }
    }
    let mut sorted: Vec<_> = inodes.iter().collect();
    sorted.sort_by_key(|(ino, _)| **ino);
    for (&ino, f) in sorted {
        if busy.contains(&ino) {
            continue;
        }
        let refs = links.get(&ino).map_or(&[][..], |v| v.as_slice());
        if f.kind == FileKind::Dir {
            let want = 2 + subdirs.get(&ino).copied().unwrap_or(0);
            if ino != InodeId::ROOT {
                match refs {
                    [] => {
                        report.problems.push(Problem::Unreachable { inode: ino, kind: f.kind });
                        // Deleted if empty; a non-empty one is reported only.
                        if want == 2 {
                            repairs.push((ino, Repair::SetNlink { ino, nlink: 0 }));
                        }
                        continue;
                    }
                    [one] => {
                        let at = entries[*one].parent;
                        if f.parent != at {
                            report.problems.push(Problem::WrongParent { inode: ino, has: f.parent, want: at });
                            repairs.push((ino, Repair::SetParent { ino, parent: at }));
                        }
                    }
                    _ => report.problems.push(Problem::DirLinkedTwice { inode: ino }),
                }
            }
            if f.nlink != want {
                report.problems.push(Problem::WrongNlink { inode: ino, has: f.nlink, want });
                repairs.push((ino, Repair::SetNlink { ino, nlink: want }));
            }
        } else {
            let want = refs.len() as u32;
            if f.nlink != want {
                if want == 0 && f.nlink > 0 {
                    report.problems.push(Problem::Unreachable { inode: ino, kind: f.kind });
                }
                report.problems.push(Problem::WrongNlink { inode: ino, has: f.nlink, want });
                repairs.push((ino, Repair::SetNlink { ino, nlink: want }));
            }
        }
    }

    // 4. Repairs.
    if opts.repair {
        let base = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        let mut next = 0u64;
        let mut op = || {
            next += 1;
            OpKey::new(OpId::new(FSCK_CLIENT, RequestId(base + next)), steps::DECIDE)
        };
        for (at, r) in repairs {
            let route = route_of(routes, at)?;
            let done: bool = c.step(route, op(), Body::Repair(r)).await?.into_result()?;
            report.repaired += done as u64;
        }
        for ino in old_orphans {
            c.step(route_of(routes, ino)?, op(), Body::Evict { ino }).await?.into_result::<()>()?;
            report.evicted += 1;
        }
    }
    Ok(report)
}
