//! setattr: who may change what, which times move, set-id clearing; truncate through a handle.

use ferrum_proto::msg::attr::{FileKind, SetAttrFields, SetTime, Time};
use ferrum_proto::msg::meta::{SetAttr, Truncate};
use ferrum_proto::{ErrorCode, InodeId};

use super::kit::{root, user, Kit};

const ROOT: InodeId = InodeId::ROOT;

fn set() -> SetAttrFields {
    SetAttrFields::default()
}

async fn owned_file(k: &Kit, uid: u32, mode: u32) -> InodeId {
    let p = k.part(0);
    let d = match k.ino(ROOT, "pub").await {
        Ok(d) => d,
        Err(_) => k.mkdir_as(ROOT, "pub", 0o777, root(), p).await.unwrap().inode,
    };
    let name = format!("f{uid}-{mode:o}-{}", k.op().request);
    k.create_as(d, &name, FileKind::File, mode, ferrum_proto::msg::meta::Cred { uid, gid: uid, groups: vec![100] }, p)
        .await
        .unwrap()
        .inode
}

#[tokio::test]
async fn chmod_owner_only_and_sgid_for_members() {
    let k = Kit::one().await;
    let f = owned_file(&k, 10, 0o644).await;
    assert_eq!(
        k.setattr(f, SetAttrFields { mode: Some(0o600), ..set() }, user(11)).await,
        Err(ErrorCode::NotPermitted)
    );
    let a = k.setattr(f, SetAttrFields { mode: Some(0o4755), ..set() }, user(10)).await.unwrap();
    assert_eq!(a.mode, 0o4755);
    // setgid by a non-member of the file's group is dropped silently.
    k.setattr(f, SetAttrFields { gid: Some(200), ..set() }, root()).await.unwrap();
    let a = k.setattr(f, SetAttrFields { mode: Some(0o2755), ..set() }, user(10)).await.unwrap();
    assert_eq!(a.mode, 0o755);
    let a = k.setattr(f, SetAttrFields { mode: Some(0o12755), ..set() }, root()).await.unwrap();
    assert_eq!(a.mode, 0o2755, "only permission bits; root keeps setgid");
}

#[tokio::test]
async fn chown_rules_and_setid_clearing() {
    let k = Kit::one().await;
    let f = owned_file(&k, 10, 0o6755).await;
    assert_eq!(k.setattr(f, SetAttrFields { uid: Some(11), ..set() }, user(10)).await, Err(ErrorCode::NotPermitted));
    assert_eq!(k.setattr(f, SetAttrFields { gid: Some(55), ..set() }, user(10)).await, Err(ErrorCode::NotPermitted));
    assert_eq!(k.setattr(f, SetAttrFields { gid: Some(100), ..set() }, user(11)).await, Err(ErrorCode::NotPermitted));
    let c = ferrum_proto::msg::meta::Cred { uid: 10, gid: 10, groups: vec![100] };
    let a = k.setattr(f, SetAttrFields { gid: Some(100), ..set() }, c).await.unwrap();
    assert_eq!((a.gid, a.mode), (100, 0o755), "chown clears setuid, and setgid when group-executable");
    let g = owned_file(&k, 10, 0o2745).await;
    let a = k.setattr(g, SetAttrFields { uid: Some(20), ..set() }, root()).await.unwrap();
    assert_eq!((a.uid, a.mode), (20, 0o2745), "setgid without group exec is kept");
    // Directories keep their setgid.
    let d = k.mkdir_as(ROOT, "sg", 0o2755, root(), k.part(0)).await.unwrap();
    let a = k.setattr(d.inode, SetAttrFields { uid: Some(3), ..set() }, root()).await.unwrap();
    assert_eq!(a.mode, 0o2755);
}

#[tokio::test]
async fn times_rules() {
    let k = Kit::one().await;
    let f = owned_file(&k, 10, 0o666).await;
    let at = Time { secs: 1_000_000, nanos: 5 };
    // Explicit times: owner only.
    let r = k.setattr(f, SetAttrFields { mtime: Some(SetTime::At(at)), ..set() }, user(11)).await;
    assert_eq!(r, Err(ErrorCode::NotPermitted));
    // "Now": anyone with write permission.
    let before = k.getattr(f).await.unwrap();
    let a = k
        .setattr(f, SetAttrFields { atime: Some(SetTime::Now), mtime: Some(SetTime::Now), ..set() }, user(11))
        .await
        .unwrap();
    assert!(a.mtime >= before.mtime && a.ctime >= before.ctime);
    let a = k
        .setattr(f, SetAttrFields { atime: Some(SetTime::At(at)), mtime: Some(SetTime::At(at)), ..set() }, user(10))
        .await
        .unwrap();
    assert_eq!((a.atime, a.mtime), (at, at));
    assert!(a.ctime > at, "ctime is the server's clock");
    let ro = owned_file(&k, 10, 0o644).await;
    let r = k.setattr(ro, SetAttrFields { mtime: Some(SetTime::Now), ..set() }, user(11)).await;
    assert_eq!(r, Err(ErrorCode::PermissionDenied));
    // ctime given explicitly (writeback caching): owner only.
    let c = Time { secs: 2_000_000, nanos: 0 };
    assert_eq!(k.setattr(f, SetAttrFields { ctime: Some(c), ..set() }, user(11)).await, Err(ErrorCode::NotPermitted));
    assert_eq!(k.setattr(f, SetAttrFields { ctime: Some(c), ..set() }, user(10)).await.unwrap().ctime, c);
    // Nothing asked: nothing changes.
    let same = k.setattr(f, set(), user(11)).await.unwrap();
    assert_eq!(same.ctime, c);
}

#[tokio::test]
async fn size_changes() {
    let k = Kit::one().await;
    let f = owned_file(&k, 10, 0o4766).await;
    let a = k.setattr(f, SetAttrFields { size: Some(4096), ..set() }, user(11)).await.unwrap();
    assert_eq!((a.size, a.mode), (4096, 0o766), "a write-permitted non-owner may truncate; setuid goes");
    let ro = owned_file(&k, 10, 0o644).await;
    assert_eq!(
        k.setattr(ro, SetAttrFields { size: Some(1), ..set() }, user(11)).await,
        Err(ErrorCode::PermissionDenied)
    );
    // Through an open handle: no permission check.
    let r = SetAttr {
        partition: k.part(0),
        op: k.op(),
        inode: ro,
        set: SetAttrFields { size: Some(7), ..set() },
        cred: user(11),
        handle: true,
    };
    assert_eq!(k.svc.set_attr(r).await.unwrap().attr.size, 7);
    let t = k.svc.truncate(Truncate { partition: k.part(0), op: k.op(), inode: ro, size: 3 }).await.unwrap();
    assert_eq!(t.attr.size, 3);
    assert_eq!(k.setattr(ROOT, SetAttrFields { size: Some(0), ..set() }, root()).await, Err(ErrorCode::IsDir));
    let s = k.symlink(ROOT, "s", b"t", k.part(0)).await.unwrap();
    assert!(matches!(
        k.setattr(s.inode, SetAttrFields { size: Some(0), ..set() }, root()).await,
        Err(ErrorCode::InvalidArgument(_))
    ));
    assert_eq!(k.setattr(InodeId(4242), set(), root()).await, Err(ErrorCode::NotFound));
}

/// A committed change grants the leader a read lease, as a read barrier does: a read right after a
/// write (a changed directory's attributes, the next lookup) is served without a heartbeat round.
#[tokio::test]
async fn a_committed_change_grants_a_read_lease() {
    let k = Kit::one().await;
    let f = owned_file(&k, 0, 0o644).await;
    let group = ferrum_proto::GroupId::from(k.part(0));
    // The kit's lease lasts 75 ms (election_timeout_min / 2); a commit slower than that on a loaded
    // machine has outlived its own lease, so such an attempt proves nothing and is repeated.
    for mode in 0o600..0o640 {
        let expired = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while k.raft.read_lease_holds(group) {
            assert!(tokio::time::Instant::now() < expired, "a read lease never ends");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let start = std::time::Instant::now();
        k.setattr(f, SetAttrFields { mode: Some(mode), ..set() }, root()).await.unwrap();
        let held = k.raft.read_lease_holds(group);
        if start.elapsed() < std::time::Duration::from_millis(40) {
            assert!(held, "no read lease after a commit that took {:?}", start.elapsed());
            return;
        }
    }
    panic!("no setattr committed within 40 ms in 40 attempts");
}
