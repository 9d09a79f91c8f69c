//! Cross-partition operations interrupted at every step (the coordinator stops dead at a failpoint,
//! and the instance restarts as after a crash): once recovery has run, the namespace is exactly the
//! state before the operation or the state after it, fsck finds nothing wrong, nothing is left
//! behind, and the client's retry of the same request changes nothing further.
//!
//! The multi-process test `tests/tests/metanode_crash.rs` does the same with real processes killed.

use std::collections::BTreeMap;

use ferrum_proto::msg::attr::FileKind;
use ferrum_proto::msg::meta::*;
use ferrum_proto::{ErrorCode, InodeId, OpId, PartitionId};

use super::kit::{n, root, Kit};
use crate::failpoint::Failpoints;

const ROOT: InodeId = InodeId::ROOT;
const P1: PartitionId = PartitionId(1);
const P2: PartitionId = PartitionId(2);
const P3: PartitionId = PartitionId(3);
const PARTS: &[(u64, u64, u64)] = &[(1, 1, 1000), (2, 1000, 2000), (3, 2000, u64::MAX)];

#[derive(Clone, Copy, Debug)]
enum Scenario {
    /// a/f (a in P2, f in P1) over b/g (b in P3, g in P2).
    RenameFileOverFile,
    /// a/d (dir in P1) over b/e (empty dir in P1): the target is prepared dying.
    RenameDirOverDir,
    /// a/f and b/d swapped.
    Exchange,
    CreateElsewhere,
    MkdirElsewhere,
    LinkElsewhere,
    UnlinkElsewhere,
    RmdirElsewhere,
}

use Scenario::*;

const ALL: [Scenario; 8] = [
    RenameFileOverFile,
    RenameDirOverDir,
    Exchange,
    CreateElsewhere,
    MkdirElsewhere,
    LinkElsewhere,
    UnlinkElsewhere,
    RmdirElsewhere,
];

fn points(s: Scenario) -> &'static [&'static str] {
    match s {
        RenameFileOverFile | Exchange => {
            &["rename.after_prepare_src", "rename.after_decide", "rename.after_finish", "rename.after_effect"]
        }
        RenameDirOverDir => &[
            "rename.after_prepare_src",
            "rename.after_prepare_target",
            "rename.after_decide",
            "rename.after_finish",
            "rename.after_effect",
        ],
        CreateElsewhere => &["create.after_prepare_child", "create.after_decide", "create.after_finish"],
        MkdirElsewhere => &["mkdir.after_prepare_child", "mkdir.after_decide", "mkdir.after_finish"],
        LinkElsewhere => &["link.after_prepare_child", "link.after_decide", "link.after_finish"],
        UnlinkElsewhere => &["unlink.after_decide", "unlink.after_effect"],
        RmdirElsewhere => &["rmdir.after_prepare_child", "rmdir.after_decide", "rmdir.after_finish"],
    }
}

/// The same tree in every run, so that inode numbers match between runs.
async fn setup(k: &Kit) -> (InodeId, InodeId) {
    let a = k.mkdir_as(ROOT, "a", 0o755, root(), P2).await.unwrap().inode;
    let b = k.mkdir_as(ROOT, "b", 0o755, root(), P3).await.unwrap().inode;
    k.create_as(a, "f", FileKind::File, 0o644, root(), P1).await.unwrap();
    k.create_as(b, "g", FileKind::File, 0o644, root(), P2).await.unwrap();
    let d = k.mkdir_as(a, "d", 0o755, root(), P1).await.unwrap().inode;
    k.create_as(d, "inside", FileKind::File, 0o644, root(), P3).await.unwrap();
    k.mkdir_as(b, "e", 0o755, root(), P1).await.unwrap();
    (a, b)
}

/// Runs the scenario's operation under `op`.
async fn run(k: &Kit, s: Scenario, op: OpId, a: InodeId, b: InodeId) -> Result<(), ErrorCode> {
    let routes = k.routes.clone();
    let rename = |name: &str, new_name: &str, flags| Rename {
        partition: k.p(b),
        op,
        parent: a,
        name: n(name),
        new_parent: b,
        new_name: n(new_name),
        flags,
        cred: root(),
        routes: routes.clone(),
    };
    match s {
        RenameFileOverFile => k.svc.rename(rename("f", "g", 0)).await.map(drop),
        RenameDirOverDir => k.svc.rename(rename("d", "e", 0)).await.map(drop),
        Exchange => k.svc.rename(rename("f", "e", Rename::EXCHANGE)).await.map(drop),
        CreateElsewhere => {
            let r = Create {
                partition: k.p(a),
                op,
                parent: a,
                name: n("new"),
                kind: FileKind::File,
                mode: 0o600,
                rdev: 0,
                cred: root(),
                inode_partition: P3,
                routes,
            };
            k.svc.create(r).await.map(drop)
        }
        MkdirElsewhere => {
            let r = Mkdir {
                partition: k.p(a),
                op,
                parent: a,
                name: n("sub"),
                mode: 0o700,
                cred: root(),
                inode_partition: P3,
                routes,
            };
            k.svc.mkdir(r).await.map(drop)
        }
        LinkElsewhere => {
            let f = k.ino(a, "f").await?;
            let r = Link { partition: k.p(b), op, inode: f, new_parent: b, new_name: n("hard"), cred: root(), routes };
            k.svc.link(r).await.map(drop)
        }
        UnlinkElsewhere => k
            .svc
            .unlink(Unlink { partition: k.p(a), op, parent: a, name: n("f"), cred: root(), routes, open_here: None })
            .await
            .map(drop),
        RmdirElsewhere => {
            k.svc.rmdir(Rmdir { partition: k.p(b), op, parent: b, name: n("e"), cred: root(), routes }).await
        }
    }
}

/// Everything an observer can see: each reachable path with its inode, kind and link count, the
/// directories' `..`, and the number of orphans.
async fn snapshot(k: &Kit) -> Snapshot {
    let mut out = BTreeMap::new();
    let mut todo = vec![(String::new(), ROOT)];
    while let Some((path, dir)) = todo.pop() {
        let mut cursor = None;
        loop {
            let page = k.svc.read_dir(ReadDir { partition: k.p(dir), inode: dir, cursor, limit: 100 }).await.unwrap();
            for e in &page.entries {
                let p = format!("{path}/{}", e.name);
                let a = k.getattr(e.inode).await.unwrap();
                let dotdot =
                    if e.kind == FileKind::Dir { k.lookup(e.inode, "..").await.unwrap().inode } else { InodeId(0) };
                out.insert(p.clone(), (e.inode, e.kind, a.nlink, dotdot));
                if e.kind == FileKind::Dir {
                    todo.push((p, e.inode));
                }
            }
            match page.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
    }
    (out, k.fsck(false).await.orphans)
}

type Snapshot = (BTreeMap<String, (InodeId, FileKind, u32, InodeId)>, u64);

/// A snapshot with the inodes created by the operation renamed by order of path: a retry that makes a
/// fresh attempt allocates another number than a run without failure did, and that is fine.
fn canon(s: &Snapshot, known: &std::collections::BTreeSet<InodeId>) -> Vec<String> {
    let mut fresh: BTreeMap<InodeId, usize> = BTreeMap::new();
    let mut name = |i: InodeId| {
        if known.contains(&i) || i == ROOT || i == InodeId(0) {
            format!("{i}")
        } else {
            let next = fresh.len();
            format!("new{}", fresh.entry(i).or_insert(next))
        }
    };
    let mut out: Vec<String> =
        s.0.iter().map(|(p, (i, k, nl, dd))| format!("{p} {} {k:?} {nl} {}", name(*i), name(*dd))).collect();
    out.push(format!("orphans {}", s.1));
    out
}

/// Recovery as the partitions' leaders run it after the grace (here at once), until nothing is left.
async fn recover(k: &Kit) {
    for _ in 0..3 {
        k.recover().await;
        if k.leftovers().await == 0 {
            return;
        }
    }
    panic!("leftovers remain after recovery");
}

#[tokio::test]
async fn every_step_of_every_cross_partition_operation() {
    for s in ALL {
        // The states an observer may find afterwards: before, and after a run without failure.
        let clean = Kit::with(PARTS, Failpoints::none()).await;
        let (a, b) = setup(&clean).await;
        let before = snapshot(&clean).await;
        run(&clean, s, clean.op(), a, b).await.unwrap_or_else(|e| panic!("{s:?} without failure: {e:?}"));
        let after = snapshot(&clean).await;
        assert_ne!(before, after, "{s:?} changes something");
        clean.assert_clean().await;

        for point in points(s) {
            let k = Kit::with(PARTS, Failpoints::none()).await;
            let (a, b) = setup(&k).await;
            assert_eq!(snapshot(&k).await, before);
            k.svc.set_failpoints(Failpoints::stop_at(point));
            let op = k.op();
            let r = run(&k, s, op, a, b).await;
            assert!(matches!(&r, Err(ErrorCode::Unavailable(m)) if m.contains(point)), "{s:?} at {point}: {r:?}");
            // The coordinator's process dies: restart on the same data, then recovery runs.
            let k = k.restart(Failpoints::none()).await;
            recover(&k).await;
            let got = snapshot(&k).await;
            assert!(
                got == before || got == after,
                "{s:?} at {point}: neither before nor after:\n{got:#?}\nbefore {before:#?}\nafter {after:#?}"
            );
            let report = k.fsck(false).await;
            assert!(report.is_clean(), "{s:?} at {point}: {:#?}", report.problems);
            // The client retries its request: whatever it gets, the namespace stays consistent.
            let retry = run(&k, s, op, a, b).await;
            recover(&k).await;
            let known = before.0.values().map(|v| v.0).collect();
            let again = canon(&snapshot(&k).await, &known);
            let (was, will) = (canon(&before, &known), canon(&after, &known));
            assert!(again == was || again == will, "{s:?} at {point}: retry {retry:?} broke the namespace: {again:#?}");
            if retry.is_ok() {
                assert_eq!(again, will, "{s:?} at {point}: a successful retry means the operation happened");
            }
            k.assert_clean().await;
        }
    }
}

#[tokio::test]
async fn recovery_waits_for_the_grace() {
    let k = Kit::with(PARTS, Failpoints::none()).await;
    let (a, b) = setup(&k).await;
    k.svc.set_failpoints(Failpoints::stop_at("rename.after_prepare_src"));
    let op = k.op();
    run(&k, RenameFileOverFile, op, a, b).await.unwrap_err();
    // A young prepare is left alone: its coordinator may still be working.
    for r in &k.routes {
        let s = crate::sweeper::sweep(k.svc.peers().as_ref(), r, std::time::Duration::from_secs(3600)).await.unwrap();
        assert_eq!(s.resolved + s.drained, 0);
    }
    assert_eq!(k.leftovers().await, 1);
    // The locked source refuses other changes meanwhile (a retryable error).
    assert_eq!(k.unlink(a, "f", root()).await, Err(ErrorCode::Busy));
    // The coordinator itself, retried, completes the operation.
    let k = k.restart(Failpoints::none()).await;
    run(&k, RenameFileOverFile, op, a, b).await.unwrap();
    assert_eq!(k.lookup(a, "f").await, Err(ErrorCode::NotFound));
    assert_eq!(k.leftovers().await, 0);
    k.assert_clean().await;
}

#[tokio::test]
async fn fsck_repairs_what_it_finds() {
    use crate::cmd::{Body, OpKey};
    let k = Kit::with(PARTS, Failpoints::none()).await;
    let (a, b) = setup(&k).await;
    let f = k.ino(a, "f").await.unwrap();
    // Damage behind the protocol's back: drop f's inode record through a raw repair-free path, and
    // give g a wrong link count.
    let g = k.ino(b, "g").await.unwrap();
    let step = |body| k.svc.txn_step(crate::wire::TxnStep { partition: k.p(g), op: k.op(), step: 0, body });
    step(Body::Repair(crate::cmd::Repair::SetNlink { ino: g, nlink: 5 })).await.unwrap();
    k.unlink(a, "f", root()).await.unwrap();
    k.svc.evict(Evict { partition: k.p(f), op: k.op(), inode: f }).await.unwrap();
    // Re-add a dangling entry to f by linking the name back through a raw decision.
    let args = crate::cmd::LinkArgs {
        cred: root(),
        ino: f,
        parent: a,
        name: n("ghost"),
        remote: Some(crate::cmd::RemoteChild { ino: f, kind: FileKind::File, partition: P1 }),
    };
    let o = k.svc.peers().propose(k.p(a), Some(OpKey::new(k.op(), 0)), Body::Link(args)).await.unwrap();
    o.into_result::<Option<ferrum_proto::msg::attr::InodeAttr>>().unwrap();
    let r = k.fsck(false).await;
    assert_eq!(r.problems.len(), 2, "{:#?}", r.problems);
    let r = k.fsck(true).await;
    assert_eq!(r.repaired, 2);
    k.assert_clean().await;
    assert_eq!(k.lookup(a, "ghost").await, Err(ErrorCode::NotFound));
    assert_eq!(k.getattr(g).await.unwrap().nlink, 1);
    // An orphan whose client died with it open: evicted on request.
    let h = k.create(b, "h").await.unwrap().inode;
    k.unlink(b, "h", root()).await.unwrap();
    let opts = crate::fsck::FsckOptions {
        repair: true,
        grace: std::time::Duration::ZERO,
        evict_orphans_older_than: Some(std::time::Duration::ZERO),
    };
    let r = crate::fsck::fsck(k.svc.peers().as_ref(), &k.routes, &opts).await.unwrap();
    assert_eq!((r.orphans, r.evicted), (1, 1));
    assert_eq!(k.getattr(h).await, Err(ErrorCode::NotFound));
}
