//! Idempotent retries, and durability across a restart.

use ferrum_proto::msg::attr::FileKind;
use ferrum_proto::msg::meta::Create;
use ferrum_proto::{ErrorCode, InodeId, OpId, RequestId};

use super::kit::{n, root, Kit};
use crate::failpoint::Failpoints;

fn create_req(k: &Kit, op: OpId, name: &str) -> Create {
    Create {
        partition: k.part(0),
        op,
        parent: InodeId::ROOT,
        name: n(name),
        kind: FileKind::File,
        mode: 0o644,
        rdev: 0,
        cred: root(),
        inode_partition: k.part(0),
        routes: k.routes.clone(),
    }
}

#[tokio::test]
async fn a_resent_request_gets_its_first_outcome() {
    let k = Kit::one().await;
    let op = k.op();
    let first = k.svc.create(create_req(&k, op, "f")).await.unwrap();
    let again = k.svc.create(create_req(&k, op, "f")).await.unwrap();
    assert_eq!(first, again, "not created twice, and not Exists");
    assert_eq!(k.names(InodeId::ROOT, 10).await.unwrap(), ["f"]);
    // An error is an outcome too.
    let op2 = k.op();
    assert_eq!(k.svc.create(create_req(&k, op2, "f")).await, Err(ErrorCode::Exists));
    k.unlink(InodeId::ROOT, "f", root()).await.unwrap();
    assert_eq!(k.svc.create(create_req(&k, op2, "f")).await, Err(ErrorCode::Exists));
    // A fresh request does the work.
    k.svc.create(create_req(&k, k.op(), "f")).await.unwrap();
}

#[tokio::test]
async fn forgotten_requests_are_refused_not_reapplied() {
    let k = Kit::one().await;
    let old = OpId::new(k.client, RequestId(5));
    k.svc.create(create_req(&k, old, "first")).await.unwrap();
    // Many requests of one client may arrive in any order.
    k.svc.create(create_req(&k, OpId::new(k.client, RequestId(100)), "late-but-newer")).await.unwrap();
    k.svc.create(create_req(&k, OpId::new(k.client, RequestId(50)), "early-but-older")).await.unwrap();
    // Forget everything recorded so far (a TTL of 0 s).
    let body = crate::cmd::Body::Gc { class: crate::dedup::Class::Client, ttl_secs: 0, limit: 100 };
    let (n, more): (u64, bool) = k.svc.peers().propose(k.part(0), None, body).await.unwrap().into_result().unwrap();
    assert_eq!((n, more), (3, false));
    // A retry of a forgotten request is refused rather than applied twice...
    let r = k.svc.create(create_req(&k, old, "first")).await;
    assert!(matches!(r, Err(ErrorCode::InvalidArgument(_))), "{r:?}");
    // ...as is anything at or below the client's highest forgotten id; newer requests go through.
    assert!(k.svc.create(create_req(&k, OpId::new(k.client, RequestId(99)), "x")).await.is_err());
    k.svc.create(create_req(&k, OpId::new(k.client, RequestId(101)), "x")).await.unwrap();
}

#[tokio::test]
async fn state_survives_a_restart() {
    let k = Kit::one().await;
    let d = k.mkdir(InodeId::ROOT, "d").await.unwrap();
    let f = k.create(d.inode, "f").await.unwrap();
    let d = k.getattr(d.inode).await.unwrap();
    let op = k.op();
    k.svc.create(create_req(&k, op, "g")).await.unwrap();
    let k = k.restart(Failpoints::none()).await;
    assert_eq!(k.ino(d.inode, "f").await.unwrap(), f.inode);
    assert_eq!(k.getattr(d.inode).await.unwrap(), d);
    // The applied-ops table is durable too.
    let again = k.svc.create(create_req(&k, op, "g")).await.unwrap();
    assert_eq!(again.attr.inode, k.ino(InodeId::ROOT, "g").await.unwrap());
    // And the allocator: no number handed out twice.
    let h = k.create(InodeId::ROOT, "h").await.unwrap();
    assert!(h.inode > again.attr.inode);
    k.assert_clean().await;
}
