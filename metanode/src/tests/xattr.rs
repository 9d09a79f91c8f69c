//! Extended attributes: namespaces, flags, permissions, limits.

use bytes::Bytes;
use ferrum_proto::msg::attr::FileKind;
use ferrum_proto::msg::meta::{Cred, GetXattr, ListXattr, RemoveXattr, SetXattr, MAX_XATTR_VALUE};
use ferrum_proto::{ErrorCode, InodeId};

use super::kit::{n, root, user, Kit};

async fn set(k: &Kit, ino: InodeId, name: &str, v: &[u8], flags: u32, cred: Cred) -> Result<(), ErrorCode> {
    let r = SetXattr {
        partition: k.p(ino),
        op: k.op(),
        inode: ino,
        name: n(name),
        value: Bytes::copy_from_slice(v),
        flags,
        cred,
    };
    k.svc.set_xattr(r).await
}

async fn get(k: &Kit, ino: InodeId, name: &str, cred: Cred) -> Result<Vec<u8>, ErrorCode> {
    Ok(k.svc.get_xattr(GetXattr { partition: k.p(ino), inode: ino, name: n(name), cred }).await?.value.to_vec())
}

async fn list(k: &Kit, ino: InodeId, cred: Cred) -> Vec<String> {
    k.svc
        .list_xattr(ListXattr { partition: k.p(ino), inode: ino, cred })
        .await
        .unwrap()
        .names
        .iter()
        .map(|n| n.to_string())
        .collect()
}

async fn remove(k: &Kit, ino: InodeId, name: &str, cred: Cred) -> Result<(), ErrorCode> {
    k.svc.remove_xattr(RemoveXattr { partition: k.p(ino), op: k.op(), inode: ino, name: n(name), cred }).await
}

#[tokio::test]
async fn set_get_list_remove() {
    let k = Kit::one().await;
    let f = k.create(InodeId::ROOT, "f").await.unwrap();
    set(&k, f.inode, "user.b", b"2", 0, root()).await.unwrap();
    set(&k, f.inode, "user.a", b"1", 0, root()).await.unwrap();
    set(&k, f.inode, "trusted.t", b"x", 0, root()).await.unwrap();
    assert_eq!(get(&k, f.inode, "user.a", root()).await.unwrap(), b"1");
    assert_eq!(list(&k, f.inode, root()).await, ["trusted.t", "user.a", "user.b"]);
    assert_eq!(list(&k, f.inode, user(5)).await, ["user.a", "user.b"], "trusted.* is hidden from users");
    assert!(k.getattr(f.inode).await.unwrap().ctime >= f.ctime);
    set(&k, f.inode, "user.a", b"one", SetXattr::REPLACE, root()).await.unwrap();
    assert_eq!(get(&k, f.inode, "user.a", root()).await.unwrap(), b"one");
    assert_eq!(set(&k, f.inode, "user.a", b"", SetXattr::CREATE, root()).await, Err(ErrorCode::Exists));
    assert_eq!(set(&k, f.inode, "user.new", b"", SetXattr::REPLACE, root()).await, Err(ErrorCode::NoXattr));
    remove(&k, f.inode, "user.a", root()).await.unwrap();
    assert_eq!(get(&k, f.inode, "user.a", root()).await, Err(ErrorCode::NoXattr));
    assert_eq!(remove(&k, f.inode, "user.a", root()).await, Err(ErrorCode::NoXattr));
    // Empty values are values.
    set(&k, f.inode, "user.empty", b"", 0, root()).await.unwrap();
    assert_eq!(get(&k, f.inode, "user.empty", root()).await.unwrap(), b"");
    // Evicting the inode drops its attributes with it.
    k.unlink(InodeId::ROOT, "f", root()).await.unwrap();
    k.svc.evict(ferrum_proto::msg::meta::Evict { partition: k.part(0), op: k.op(), inode: f.inode }).await.unwrap();
    assert_eq!(get(&k, f.inode, "user.b", root()).await, Err(ErrorCode::NotFound));
}

#[tokio::test]
async fn names_values_and_permissions() {
    let k = Kit::one().await;
    let p = k.part(0);
    let d = k.mkdir_as(InodeId::ROOT, "pub", 0o777, root(), p).await.unwrap();
    let f = k.create_as(d.inode, "f", FileKind::File, 0o644, user(10), p).await.unwrap();
    assert_eq!(set(&k, f.inode, "nonamespace", b"", 0, root()).await, Err(ErrorCode::NotSupported));
    assert_eq!(
        set(&k, f.inode, &format!("user.{}", "x".repeat(251)), b"", 0, root()).await,
        Err(ErrorCode::NameTooLong)
    );
    assert!(matches!(set(&k, f.inode, "user.", b"", 0, root()).await, Err(ErrorCode::InvalidArgument(_))));
    assert_eq!(set(&k, f.inode, "user.big", &vec![0; MAX_XATTR_VALUE + 1], 0, root()).await, Err(ErrorCode::NoSpace));
    set(&k, f.inode, "user.max", &vec![7; MAX_XATTR_VALUE], 0, root()).await.unwrap();
    assert!(matches!(set(&k, f.inode, "user.x", b"", 3, root()).await, Err(ErrorCode::InvalidArgument(_))));
    // user.*: permission bits.
    assert_eq!(set(&k, f.inode, "user.x", b"", 0, user(11)).await, Err(ErrorCode::PermissionDenied));
    set(&k, f.inode, "user.x", b"v", 0, user(10)).await.unwrap();
    assert_eq!(get(&k, f.inode, "user.x", user(11)).await.unwrap(), b"v");
    // trusted.*: root only.
    assert_eq!(set(&k, f.inode, "trusted.x", b"", 0, user(10)).await, Err(ErrorCode::NotPermitted));
    set(&k, f.inode, "trusted.x", b"t", 0, root()).await.unwrap();
    assert_eq!(get(&k, f.inode, "trusted.x", user(10)).await, Err(ErrorCode::NoXattr));
    // security.*: the owner.
    assert_eq!(set(&k, f.inode, "security.x", b"", 0, user(11)).await, Err(ErrorCode::NotPermitted));
    set(&k, f.inode, "security.x", b"s", 0, user(10)).await.unwrap();
    // user.* only on files and directories.
    let s = k.symlink(d.inode, "s", b"f", p).await.unwrap();
    assert_eq!(set(&k, s.inode, "user.x", b"", 0, root()).await, Err(ErrorCode::NotPermitted));
    assert_eq!(get(&k, s.inode, "user.x", root()).await, Err(ErrorCode::NoXattr));
    assert_eq!(get(&k, InodeId(9999), "user.x", root()).await, Err(ErrorCode::NotFound));
}
