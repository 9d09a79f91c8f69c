//! Three `ferrum-metanode` processes on three loopback ports host one meta partition. A tree of
//! 10,000 entries (directories, files with varied owners, modes, times, xattrs and data maps,
//! symlinks) is created through the RPC; the partition's leader is SIGKILLed; a new leader serves, and
//! every entry and every attribute is intact on it. The killed node restarts and catches up.

mod metanode_support;

use bytes::Bytes;
use ferrum_proto::msg::attr::{FileKind, InodeAttr, SetAttrFields, SetTime, Time};
use ferrum_proto::msg::extent::ExtentKey;
use ferrum_proto::msg::meta::*;
use ferrum_proto::msg::name::Name;
use ferrum_proto::{ErrorCode, ExtentId, InodeId, PartitionId};
use ferrum_tests::harness::{wait_for_async, TestDir};
use metanode_support::{create_partitions, pool, start, MetaClient, RAFT, T};
use std::collections::BTreeMap;
use tokio::task::JoinSet;

const P: PartitionId = PartitionId(1);
const DIRS: usize = 100;
const PER_DIR: usize = 99;
/// Requests in flight at once.
const PARALLEL: usize = 64;

/// What one entry should look like.
#[derive(Clone, Debug, PartialEq)]
struct Expect {
    attr: InodeAttr,
    xattr: Option<Bytes>,
    extents: Vec<ExtentKey>,
    target: Option<Bytes>,
}

fn cred(i: usize) -> Cred {
    Cred::user(1000 + (i % 7) as u32, 100 + (i % 3) as u32)
}

/// Runs `f` over `items` with at most `PARALLEL` in flight, returning results in item order.
async fn parallel<I, T, F, Fut>(items: Vec<I>, f: F) -> Vec<T>
where
    I: Send + 'static,
    T: Send + 'static,
    F: Fn(I) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = T> + Send,
{
    let mut out: Vec<Option<T>> = (0..items.len()).map(|_| None).collect();
    let mut set = JoinSet::new();
    for (i, item) in items.into_iter().enumerate() {
        if set.len() >= PARALLEL {
            let (j, v) = set.join_next().await.unwrap().unwrap();
            out[j] = Some(v);
        }
        let f = f.clone();
        set.spawn(async move { (i, f(item).await) });
    }
    while let Some(r) = set.join_next().await {
        let (j, v) = r.unwrap();
        out[j] = Some(v);
    }
    out.into_iter().map(|v| v.unwrap()).collect()
}

/// Builds one entry `i` of directory `dir`: a file (with data and sometimes an xattr and set times)
/// or, every 20th, a symlink. Returns its name and expected state.
async fn make_entry(c: MetaClient, dir: InodeId, i: usize) -> (String, InodeId) {
    let name = format!("e{i:03}");
    let attr = if i % 20 == 19 {
        let r = Symlink {
            partition: P,
            op: c.op(),
            parent: dir,
            name: Name::from(name.as_str()),
            target: Bytes::from(format!("../target/{i}")),
            cred: cred(i),
            inode_partition: P,
            routes: c.routes.clone(),
        };
        c.call(P, &r).await.unwrap().attr
    } else {
        let r = Create {
            partition: P,
            op: c.op(),
            parent: dir,
            name: Name::from(name.as_str()),
            kind: FileKind::File,
            mode: 0o600 | (i as u32 % 0o100),
            rdev: 0,
            cred: cred(i),
            inode_partition: P,
            routes: c.routes.clone(),
        };
        let a = c.call(P, &r).await.unwrap().attr;
        // Every write is a Raft round: a few kinds of changes on a fraction of the files keep the test
        // quick while every kind of attribute is covered.
        if i.is_multiple_of(3) {
            let ext = ExtentKey {
                file_offset: 0,
                partition: PartitionId(77),
                extent: ExtentId(a.inode.get()),
                extent_offset: 0,
                len: 100 + i as u64,
            };
            c.call(
                P,
                &ExtentAppend {
                    partition: P,
                    op: c.op(),
                    inode: a.inode,
                    extents: vec![ext],
                    inline: InlineOp::Keep,
                    cred: cred(i),
                },
            )
            .await
            .unwrap();
        }
        if i.is_multiple_of(10) {
            let x = SetXattr {
                partition: P,
                op: c.op(),
                inode: a.inode,
                name: Name::from("user.tag"),
                value: Bytes::from(format!("value of {name}")),
                flags: 0,
                cred: Cred::root(),
            };
            c.call(P, &x).await.unwrap();
        }
        if i.is_multiple_of(11) {
            let at = Time { secs: 1_600_000_000 + i as i64, nanos: i as u32 };
            let set =
                SetAttrFields { atime: Some(SetTime::At(at)), mtime: Some(SetTime::At(at)), ..Default::default() };
            c.call(P, &SetAttr { partition: P, op: c.op(), inode: a.inode, set, cred: Cred::root(), handle: false })
                .await
                .unwrap();
        }
        a
    };
    (name, attr.inode)
}

/// Reads everything the test checks about one inode, from the leader.
async fn read_state(c: &MetaClient, ino: InodeId) -> Expect {
    let attr = c.call(P, &GetAttr { partition: P, inode: ino }).await.unwrap().attr;
    let (mut xattr, mut extents, mut target) = (None, Vec::new(), None);
    match attr.kind {
        FileKind::File => {
            extents = c.call(P, &ExtentList { partition: P, inode: ino }).await.unwrap().extents;
            let g = GetXattr { partition: P, inode: ino, name: Name::from("user.tag"), cred: Cred::root() };
            xattr = c.call(P, &g).await.ok().map(|v| v.value);
        }
        FileKind::Symlink => target = Some(c.call(P, &Readlink { partition: P, inode: ino }).await.unwrap().target),
        _ => {}
    }
    Expect { attr, xattr, extents, target }
}

/// Every entry of the tree, by path, with its state, as the current leader sees it.
async fn read_tree(c: &MetaClient) -> BTreeMap<String, Expect> {
    let mut paths: Vec<(String, InodeId)> = Vec::new();
    let mut dirs = vec![(String::new(), InodeId::ROOT)];
    while let Some((path, dir)) = dirs.pop() {
        let mut cursor = None;
        loop {
            let page = c.call(P, &ReadDir { partition: P, inode: dir, cursor, limit: 1000 }).await.unwrap();
            for e in &page.entries {
                let p = format!("{path}/{}", e.name);
                if e.kind == FileKind::Dir {
                    dirs.push((p.clone(), e.inode));
                }
                paths.push((p, e.inode));
            }
            match page.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
    }
    let c2 = c.clone();
    let states = parallel(paths.clone(), move |(_, ino)| {
        let c = c2.clone();
        async move { read_state(&c, ino).await }
    })
    .await;
    paths.into_iter().map(|(p, _)| p).zip(states).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_entries_survive_the_leaders_death() {
    let dir = TestDir::named("metanode_failover");
    let config = format!("{RAFT}snapshot_after_logs = 5000\nkeep_logs_after_snapshot = 500\n");
    let mut nodes = start(&dir, 3, &config, &[]);
    let pool = pool();
    let routes = create_partitions(&pool, &nodes, &[(1, 1, u64::MAX)]).await;
    let c = MetaClient::new(&pool, routes, 42);

    let clock = std::time::Instant::now();
    // The tree: 100 directories of 99 entries each, 10,000 entries in all.
    let mkdirs: Vec<usize> = (0..DIRS).collect();
    let c2 = c.clone();
    let dir_inodes = parallel(mkdirs, move |d| {
        let c = c2.clone();
        async move {
            let r = Mkdir {
                partition: P,
                op: c.op(),
                parent: InodeId::ROOT,
                name: Name::from(format!("d{d:03}").as_str()),
                mode: 0o777,
                cred: Cred::root(),
                inode_partition: P,
                routes: c.routes.clone(),
            };
            c.call(P, &r).await.unwrap().attr.inode
        }
    })
    .await;
    let entries: Vec<(InodeId, usize)> = dir_inodes.iter().flat_map(|d| (0..PER_DIR).map(move |i| (*d, i))).collect();
    let c2 = c.clone();
    let made = parallel(entries, move |(d, i)| make_entry(c2.clone(), d, i)).await;
    assert_eq!(dir_inodes.len() + made.len(), 10_000);

    eprintln!("tree of 10,000 entries made in {:?}", clock.elapsed());
    let before = read_tree(&c).await;
    eprintln!("tree read in {:?}", clock.elapsed());
    assert_eq!(before.len(), 10_000, "every entry listed");
    assert_eq!(before.values().filter(|e| e.xattr.is_some()).count(), DIRS * 10);
    assert_eq!(before.values().filter(|e| e.target.is_some()).count(), DIRS * 4);

    // A follower does not serve: it names the leader.
    let leader = c.leader(P).expect("a leader answered");
    let follower = nodes.iter().find(|n| n.addr.to_string() != leader).unwrap().addr.to_string();
    match pool.call(&follower, &GetAttr { partition: P, inode: InodeId::ROOT }).await {
        Err(e) => match e.code() {
            ErrorCode::NotLeader { leader: Some(h) } => assert_eq!(h.addr, leader),
            other => panic!("a follower answered {other:?}"),
        },
        Ok(_) => panic!("a follower served a read"),
    }

    // Kill the leader without warning.
    let victim = nodes.iter_mut().find(|n| n.addr.to_string() == leader).expect("the leader is one of ours");
    victim.proc.sigkill();
    let killed = victim.id;
    eprintln!("killed the leader, node {killed} at {leader}");

    // A new leader serves, with everything.
    let start = std::time::Instant::now();
    wait_for_async("a new leader", T, || c.call(P, &StatFs { partition: P })).await;
    eprintln!("new leader {:?} after {:?}", c.leader(P), start.elapsed());
    assert_ne!(c.leader(P).as_deref(), Some(leader.as_str()));
    let after = read_tree(&c).await;
    assert_eq!(after.len(), before.len());
    for (path, want) in &before {
        assert_eq!(after.get(path), Some(want), "{path} differs on the new leader");
    }
    let stat = c.call(P, &StatFs { partition: P }).await.unwrap();
    assert_eq!(stat.inodes, 10_001, "every inode and the root");

    // The new leader takes writes; the killed node restarts and catches up.
    let r = Create {
        partition: P,
        op: c.op(),
        parent: InodeId::ROOT,
        name: Name::from("after-failover"),
        kind: FileKind::File,
        mode: 0o644,
        rdev: 0,
        cred: Cred::root(),
        inode_partition: P,
        routes: c.routes.clone(),
    };
    c.call(P, &r).await.unwrap();
}

/// The killed node restarts on its data dir and rejoins, catching up through a snapshot (the others
/// purged the log it missed); then the second leader dies too, and the two left — one of them the
/// restarted node — still serve everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_metanode_restarts_and_rejoins() {
    let dir = TestDir::named("metanode_restart");
    let config = format!("{RAFT}snapshot_after_logs = 20\nkeep_logs_after_snapshot = 5\n");
    let mut nodes = start(&dir, 3, &config, &[]);
    let pool = pool();
    let routes = create_partitions(&pool, &nodes, &[(1, 1, u64::MAX)]).await;
    let c = MetaClient::new(&pool, routes, 43);
    let mk = Mkdir {
        partition: P,
        op: c.op(),
        parent: InodeId::ROOT,
        name: Name::from("pub"),
        mode: 0o777,
        cred: Cred::root(),
        inode_partition: P,
        routes: c.routes.clone(),
    };
    let pubdir = c.call(P, &mk).await.unwrap().attr.inode;
    // A small tree: a group waits for `snapshot_after_logs` entries or one per 16 keys of its last
    // snapshot (raftstore::snapshot_policy), and the writes below must outrun that on the survivors.
    let c2 = c.clone();
    parallel((0..60).collect(), move |i| make_entry(c2.clone(), pubdir, i)).await;
    let want = read_tree(&c).await;
    let first = c.leader(P).expect("a leader answered");
    let killed = nodes.iter_mut().find(|n| n.addr.to_string() == first).unwrap();
    killed.proc.sigkill();
    let killed_id = killed.id;
    wait_for_async("a new leader", T, || c.call(P, &StatFs { partition: P })).await;
    // More writes while it is down: its log falls behind the others' snapshots. One at a time first, so
    // that each is its own log entry (concurrent ones share entries): the survivors pass their snapshot
    // threshold (about 50 entries for this tree) however the batcher groups the rest.
    for i in 60..160 {
        make_entry(c.clone(), pubdir, i).await;
    }
    let c2 = c.clone();
    parallel((160..460).collect(), move |i| make_entry(c2.clone(), pubdir, i)).await;
    let want = {
        let mut w = want;
        w.extend(read_tree(&c).await);
        w
    };
    let node = nodes.iter_mut().find(|n| n.id == killed_id).unwrap();
    node.proc.restart();
    let addr = node.addr.to_string();
    let probe = StatFs { partition: P };
    wait_for_async("the restarted node answers", T, || async {
        match pool.call(&addr, &probe).await {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.code(), ErrorCode::NotLeader { .. }) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
    let node = nodes.iter_mut().find(|n| n.id == killed_id).unwrap();
    node.proc.wait_log_contains("installed snapshot from leader", T);
    let second = c.leader(P).expect("a leader answered");
    nodes.iter_mut().find(|n| n.addr.to_string() == second).unwrap().proc.sigkill();
    wait_for_async("a third leader", T, || c.call(P, &StatFs { partition: P })).await;
    let last = read_tree(&c).await;
    assert_eq!(last.len(), want.len());
    for (path, w) in &want {
        assert_eq!(last.get(path), Some(w), "{path} differs on the third leader");
    }
}
