//! A volume's last meta partition split CubeFS-style on a real multi-process cluster (a master, 3
//! metanodes, 3 datanodes, a FUSE mount): with a small split threshold, files created past it make the
//! master end the partition's inode range (committed through the partition's Raft group) and create
//! the next, open-ended partition; new inodes then come from it, every file stays readable, and the
//! old partition refuses allocations past its end, also after its leader is killed.

mod fuse_support;

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

use ferrum_proto::msg::attr::FileKind;
use ferrum_proto::msg::master::{ListNodes, ListPartitions, PartitionInfo, SplitMetaPartition};
use ferrum_proto::msg::meta::{Create, Cred, MetaRoute};
use ferrum_proto::msg::name::Name;
use ferrum_proto::msg::topology::PartitionKind;
use ferrum_proto::rpc::{ClientConfig, ConnPool, LeaderClient, RetryPolicy, RpcError};
use ferrum_proto::{ClientId, ErrorCode, InodeId, OpId, RequestId};
use ferrum_tests::harness::{wait_for_async, TestDir};
use fuse_support::cluster::{Cluster, Layout, T};
use fuse_support::MountedFerrum;

/// Splits once the last partition holds 40 inodes; the old range then takes 20 more.
const MASTER_KEYS: &str = "meta_split_inodes = 40\nmeta_split_step = 20\nreconcile_interval_ms = 200\n";

fn mount(dir: &Path, name: &str, c: &Cluster) -> MountedFerrum {
    let args: Vec<OsString> = ["--master", &c.master_addrs(), "--volume", "vol"].iter().map(OsString::from).collect();
    MountedFerrum::start(dir, name, &args, &dir.join("mnt"))
}

async fn meta_partitions(c: &Cluster) -> Vec<PartitionInfo> {
    let all = c.master_client().call(&ListPartitions { volume: Some("vol".into()) }).await.unwrap();
    let mut meta: Vec<_> = all.into_iter().filter(|p| p.kind == PartitionKind::Meta).collect();
    meta.sort_by_key(|p| p.inodes.unwrap().start);
    meta
}

fn route(p: &PartitionInfo) -> MetaRoute {
    MetaRoute {
        partition: p.partition,
        inodes: p.inodes.unwrap(),
        replicas: p.replicas.iter().map(|r| r.addr.clone()).collect(),
    }
}

fn leader_client(p: &PartitionInfo) -> LeaderClient {
    LeaderClient::new(ConnPool::new(ClientConfig::default()), route(p).replicas, RetryPolicy::default())
}

/// Asks the old partition directly for a new inode of its own.
async fn allocate_in(old: &PartitionInfo, routes: &[MetaRoute], request: u64) -> Result<(), ErrorCode> {
    let req = Create {
        partition: old.partition,
        op: OpId::new(ClientId(0x5EED), RequestId(request)),
        parent: InodeId::ROOT,
        name: Name::from(format!("direct-{request}").as_str()),
        kind: FileKind::File,
        mode: 0o644,
        rdev: 0,
        cred: Cred::root(),
        inode_partition: old.partition,
        routes: routes.to_vec(),
    };
    match leader_client(old).call(&req).await {
        Ok(_) => Ok(()),
        Err(RpcError::Remote(code)) => Err(code),
        Err(e) => Err(e.code()),
    }
}

fn write_files(mnt: &Path, prefix: &str, n: usize) -> Vec<u64> {
    (0..n)
        .map(|i| {
            let p = mnt.join(format!("{prefix}-{i}"));
            std::fs::write(&p, format!("{prefix} {i}")).unwrap();
            std::fs::metadata(&p).unwrap().ino()
        })
        .collect()
}

fn check_files(mnt: &Path, prefix: &str, inos: &[u64]) {
    for (i, ino) in inos.iter().enumerate() {
        let p = mnt.join(format!("{prefix}-{i}"));
        let m = std::fs::metadata(&p).unwrap_or_else(|e| panic!("stat {}: {e}", p.display()));
        assert_eq!(m.ino(), *ino, "{} keeps its inode", p.display());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), format!("{prefix} {i}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_last_meta_partition_splits_and_new_inodes_come_from_the_next() {
    let dir = TestDir::new();
    let mut cluster = Cluster::start_with(&dir, Layout { master_toml: MASTER_KEYS.into(), ..Layout::default() }).await;
    cluster.create_volume("vol").await;
    assert_eq!(meta_partitions(&cluster).await.len(), 1);
    let mut m = tokio::task::block_in_place(|| mount(dir.path(), "mount", &cluster));

    // Past the threshold: the master splits the partition (asynchronously, at its next round).
    let before = tokio::task::block_in_place(|| write_files(&m.mnt, "before", 45));
    let started = Instant::now();
    let (old, new) = wait_for_async("the split: a second meta partition, ready", T, || async {
        match meta_partitions(&cluster).await.as_slice() {
            [old, new, ..] if new.ready => Ok((old.clone(), new.clone())),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    eprintln!("split visible {:?} after the 45th file was written", started.elapsed());
    let end = old.inodes.unwrap().end;
    assert_eq!(new.inodes.unwrap().start, end, "the new partition starts where the old one ends");
    assert_eq!(new.inodes.unwrap().end, InodeId(u64::MAX), "and is open-ended");
    assert!(before.iter().all(|i| *i < end.get()));
    let mut distinct: Vec<u64> = new.replicas.iter().map(|r| r.node.get()).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "the new partition has its 3 replicas");

    // The old range takes up to 20 more inodes, then the client allocates from the new partition.
    let after = tokio::task::block_in_place(|| {
        let after = write_files(&m.mnt, "after", 40);
        std::fs::create_dir(m.mnt.join("dir-after")).unwrap();
        std::fs::write(m.mnt.join("dir-after/inner"), b"inner").unwrap();
        after
    });
    let from_new: Vec<u64> = after.iter().copied().filter(|i| *i >= end.get()).collect();
    assert!(from_new.len() >= 20, "new inodes come from the new partition: {after:?} (end {end})");
    assert!(after.last().is_some_and(|i| *i >= end.get()), "the last ones at least: {after:?}");
    eprintln!("old range ends at {end}; {} of the 40 later files got inodes from the new partition", from_new.len());
    tokio::task::block_in_place(|| {
        check_files(&m.mnt, "before", &before);
        check_files(&m.mnt, "after", &after);
        assert_eq!(std::fs::read(m.mnt.join("dir-after/inner")).unwrap(), b"inner");
        m.unmount();
    });

    // The old partition refuses allocations past its end, with the error that says where it ends.
    let routes = [route(&old), route(&new)];
    let refused = ErrorCode::InodeRangeEnd { partition: old.partition, end };
    assert_eq!(allocate_in(&old, &routes, 1).await, Err(refused.clone()));
    // Every replica agrees: kill its leader, the new one refuses the same, and a split request
    // (a master retrying) answers the same end.
    let nodes = cluster.master_client().call(&ListNodes {}).await.unwrap();
    let leader = wait_for_async("a leader of the old partition", T, || async {
        let p = meta_partitions(&cluster).await.into_iter().find(|p| p.partition == old.partition).unwrap();
        let addr = p.leader.and_then(|l| nodes.iter().find(|n| n.id == l)).map(|n| n.advertise.clone());
        addr.ok_or("no leader reported yet")
    })
    .await;
    let i = cluster.metanodes.iter().position(|n| n.addr.to_string() == leader).unwrap();
    cluster.metanodes[i].proc.sigkill();
    cluster.metanodes[i].metrics = None;
    assert_eq!(allocate_in(&old, &routes, 2).await, Err(refused));
    let again = leader_client(&old).call(&SplitMetaPartition { partition: old.partition, step: 1000 }).await.unwrap();
    assert_eq!(again.end, end, "the end was committed once, on a majority");

    // A new client (a remount) finds everything, and creates more, with one metanode down.
    tokio::task::block_in_place(|| {
        let mut m = mount(dir.path(), "remount", &cluster);
        check_files(&m.mnt, "before", &before);
        check_files(&m.mnt, "after", &after);
        let more = write_files(&m.mnt, "more", 5);
        assert!(more.iter().all(|i| *i >= end.get()), "{more:?}");
        check_files(&m.mnt, "more", &more);
        m.unmount();
    });
}
