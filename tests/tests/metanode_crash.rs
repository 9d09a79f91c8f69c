//! A cross-partition rename interrupted at each of its steps by killing the process that coordinates
//! it (`ferrum-metanode` aborts at a failpoint, like `kill -9` at exactly that step). Three metanodes
//! host three meta partitions; the source directory, the target directory, the moved inode and the
//! replaced one live in different partitions. After the crash the surviving nodes elect new leaders and
//! their recovery finishes or undoes what was left: the namespace is then exactly as before the rename
//! or exactly as after it, nothing is left pending, fsck finds no problem, and the client's retry of
//! its request keeps it that way.

mod metanode_support;

use std::collections::BTreeMap;
use std::time::Duration;

use ferrum_metanode::cluster::{scan_all, RemoteCluster};
use ferrum_metanode::fsck::{fsck, FsckOptions};
use ferrum_metanode::wire::Table;
use ferrum_proto::msg::attr::FileKind;
use ferrum_proto::msg::meta::*;
use ferrum_proto::msg::name::Name;
use ferrum_proto::rpc::{ConnPool, RetryPolicy, RpcError};
use ferrum_proto::{ErrorCode, InodeId, PartitionId};
use ferrum_tests::harness::{wait_for, wait_for_async, TestDir};
use metanode_support::{create_partitions, pool, start, MetaClient, RAFT, T};

const P1: PartitionId = PartitionId(1);
const P2: PartitionId = PartitionId(2);
const P3: PartitionId = PartitionId(3);
const PARTS: &[(u64, u64, u64)] = &[(1, 1, 1000), (2, 1000, 2000), (3, 2000, u64::MAX)];

/// Paths with inode, kind and link count, plus the number of orphans.
type Tree = (BTreeMap<String, (InodeId, FileKind, u32)>, usize);

async fn mkdir(c: &MetaClient, parent: InodeId, name: &str, at: PartitionId) -> InodeId {
    let r = Mkdir {
        partition: c.partition_of(parent),
        op: c.op(),
        parent,
        name: Name::from(name),
        mode: 0o755,
        cred: Cred::root(),
        inode_partition: at,
        routes: c.routes.clone(),
    };
    c.call(r.partition, &r).await.unwrap().attr.inode
}

async fn create(c: &MetaClient, parent: InodeId, name: &str, at: PartitionId) -> InodeId {
    let r = Create {
        partition: c.partition_of(parent),
        op: c.op(),
        parent,
        name: Name::from(name),
        kind: FileKind::File,
        mode: 0o644,
        rdev: 0,
        cred: Cred::root(),
        inode_partition: at,
        routes: c.routes.clone(),
    };
    c.call(r.partition, &r).await.unwrap().attr.inode
}

async fn tree(c: &MetaClient, cluster: &RemoteCluster) -> Tree {
    let mut out = BTreeMap::new();
    let mut todo = vec![(String::new(), InodeId::ROOT)];
    while let Some((path, dir)) = todo.pop() {
        let p = c.partition_of(dir);
        let page = c.call(p, &ReadDir { partition: p, inode: dir, cursor: None, limit: 1000 }).await.unwrap();
        for e in page.entries {
            let path = format!("{path}/{}", e.name);
            let ip = c.partition_of(e.inode);
            let a = c.call(ip, &GetAttr { partition: ip, inode: e.inode }).await.unwrap().attr;
            if e.kind == FileKind::Dir {
                let dotdot = Lookup { partition: ip, parent: e.inode, name: Name::from(".."), cred: Cred::root() };
                assert_eq!(c.call(ip, &dotdot).await.unwrap().inode, dir, "`..` of {path}");
                todo.push((path.clone(), e.inode));
            }
            out.insert(path, (e.inode, e.kind, a.nlink));
        }
    }
    let mut orphans = 0;
    for r in &c.routes {
        orphans += scan_all(cluster, r, Table::Orphans).await.unwrap().len();
    }
    (out, orphans)
}

async fn leftovers(c: &MetaClient, cluster: &RemoteCluster) -> Result<usize, ErrorCode> {
    let mut n = 0;
    for r in &c.routes {
        n += scan_all(cluster, r, Table::Prepared).await?.len();
        n += scan_all(cluster, r, Table::Outbox).await?.len();
    }
    Ok(n)
}

/// Sends `req` to the leader of its partition once: following `NotLeader`, never resending after a
/// transport error (the coordinator died with the request in hand).
async fn call_once(pool: &ConnPool, c: &MetaClient, req: &Rename) -> Result<RenameResp, RpcError> {
    c.call(req.partition, &StatFs { partition: req.partition }).await.unwrap();
    let mut addr = c.leader(req.partition).expect("a leader answered");
    for _ in 0..5 {
        match pool.call(&addr, req).await {
            Err(RpcError::Remote(ErrorCode::NotLeader { leader: Some(h) })) => addr = h.addr,
            other => return other,
        }
    }
    panic!("no leader for {} in 5 hops", req.partition);
}

/// One crash: the rename of `src` in directory a over `dst` in directory b, with the coordinator
/// killed at `point`.
async fn crash_at(point: &str, src: &str, dst: &str) {
    eprintln!("=== rename a/{src} -> b/{dst}, coordinator killed at {point}");
    let dir = TestDir::named(&format!("metanode_crash_{}", point.replace('.', "_")));
    let marker = dir.join("failpoint-fired");
    let config = format!("{RAFT}[metanode]\nrecovery_grace_ms = 300\nsweep_interval_ms = 100\n");
    let env = [
        (ferrum_metanode::failpoint::ENV, point.to_string()),
        (ferrum_metanode::failpoint::ENV_ONCE, marker.display().to_string()),
    ];
    let mut nodes = start(&dir, 3, &config, &env);
    let pool = pool();
    let routes = create_partitions(&pool, &nodes, PARTS).await;
    let c = MetaClient::new(&pool, routes.clone(), 9);
    let cluster =
        RemoteCluster::new(pool.clone(), RetryPolicy { deadline: Duration::from_secs(30), ..Default::default() });

    // a and b in P2 and P3; what is renamed and what it replaces have their inodes elsewhere again.
    let a = mkdir(&c, InodeId::ROOT, "a", P2).await;
    let b = mkdir(&c, InodeId::ROOT, "b", P3).await;
    let f = create(&c, a, "f", P1).await;
    create(&c, b, "g", P2).await;
    let d = mkdir(&c, a, "d", P1).await;
    create(&c, d, "inside", P3).await;
    mkdir(&c, b, "e", P1).await;
    let before = tree(&c, &cluster).await;
    let moved = if src == "f" { f } else { d };

    let req = Rename {
        partition: P3,
        op: c.op(),
        parent: a,
        name: Name::from(src),
        new_parent: b,
        new_name: Name::from(dst),
        flags: 0,
        cred: Cred::root(),
        routes: routes.clone(),
    };
    let r = call_once(&pool, &c, &req).await;
    assert!(r.is_err(), "the coordinator should have died at {point}, got {r:?}");
    wait_for("the failpoint to fire", T, || marker.exists());
    let dead: Vec<u64> = wait_for("the coordinator to die", T, || {
        let dead: Vec<u64> = nodes.iter_mut().filter_map(|n| (!n.proc.is_running()).then_some(n.id)).collect();
        (!dead.is_empty()).then_some(dead)
    });
    assert_eq!(dead.len(), 1, "exactly the coordinator died");
    eprintln!("node {} died at {point}", dead[0]);

    // The survivors elect leaders and recover.
    wait_for_async("recovery to leave nothing pending", T, || async {
        match leftovers(&c, &cluster).await {
            Ok(0) => Ok(()),
            Ok(n) => Err(format!("{n} pending")),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
    let opts = FsckOptions { repair: false, grace: Duration::from_millis(300), evict_orphans_older_than: None };
    let report = fsck(&cluster, &routes, &opts).await.unwrap();
    assert!(report.is_clean(), "fsck after a crash at {point}: {:#?}", report.problems);

    let got = tree(&c, &cluster).await;
    let renamed =
        got.0.get(&format!("/b/{dst}")).map(|e| e.0) == Some(moved) && !got.0.contains_key(&format!("/a/{src}"));
    if got != before {
        assert!(renamed, "after a crash at {point} the namespace is neither before nor after the rename:\n{got:#?}\nbefore:\n{before:#?}");
    }
    eprintln!("after recovery from {point}: {}", if renamed { "renamed" } else { "as before" });

    // The client retries the same request at the new leader.
    let retry = c.call(P3, &req).await;
    wait_for_async("the retry to leave nothing pending", T, || async {
        match leftovers(&c, &cluster).await {
            Ok(0) => Ok(()),
            Ok(n) => Err(format!("{n} pending")),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
    let report = fsck(&cluster, &routes, &opts).await.unwrap();
    assert!(report.is_clean(), "fsck after the retry ({point}): {:#?}", report.problems);
    let again = tree(&c, &cluster).await;
    let renamed_now =
        again.0.get(&format!("/b/{dst}")).map(|e| e.0) == Some(moved) && !again.0.contains_key(&format!("/a/{src}"));
    if renamed {
        assert_eq!(again, got, "a retry of a completed rename changes nothing ({point})");
    }
    match retry {
        Ok(_) => assert!(renamed_now, "the retry succeeded, so the rename happened ({point})"),
        Err(e) => {
            assert!(!renamed_now && again == before, "a failed retry ({e:?}) leaves the tree as before ({point})")
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cross_partition_rename_killed_at_each_step() {
    // A file over a file: lock the source, decide, commit the lock, then the effects (the moved
    // inode's ctime, the replaced file's link count).
    for point in ["rename.after_prepare_src", "rename.after_decide", "rename.after_finish", "rename.after_effect"] {
        crash_at(point, "f", "g").await;
    }
    // A directory over an empty directory: the target is first marked dying in its own partition.
    crash_at("rename.after_prepare_target", "d", "e").await;
}
