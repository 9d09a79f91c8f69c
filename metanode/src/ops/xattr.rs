//! Extended attributes, with Linux's namespace rules (`fs/xattr.c: xattr_permission`).

use bytes::Bytes;
use ferrum_proto::msg::attr::FileKind;
use ferrum_proto::msg::meta::{Cred, SetXattr, MAX_XATTR_VALUE};
use ferrum_proto::msg::name::Name;
use ferrum_proto::{ErrorCode, InodeId};

use super::{ok, Ctx, OpResult};
use crate::perm::{self, R, W};
use crate::records::{InodeRec, S_ISVTX};
use crate::txn::KvRead;
use crate::{keys, state};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ns {
    User,
    Trusted,
    Security,
    System,
}

pub fn namespace(name: &Name) -> Result<Ns, ErrorCode> {
    let b = name.as_bytes();
    if b.len() > Name::MAX_LEN {
        return Err(ErrorCode::NameTooLong);
    }
    let (ns, rest) = if let Some(r) = b.strip_prefix(b"user.") {
        (Ns::User, r)
    } else if let Some(r) = b.strip_prefix(b"trusted.") {
        (Ns::Trusted, r)
    } else if let Some(r) = b.strip_prefix(b"security.") {
        (Ns::Security, r)
    } else if let Some(r) = b.strip_prefix(b"system.") {
        (Ns::System, r)
    } else {
        return Err(ErrorCode::NotSupported);
    };
    if rest.is_empty() || rest.contains(&0) {
        return Err(ErrorCode::InvalidArgument(format!("invalid xattr name {name:?}")));
    }
    Ok(ns)
}

/// Whether `cred` may read (`write == false`) or change the attribute `name` of `r`.
pub fn permission(cred: &Cred, r: &InodeRec, name: &Name, write: bool) -> Result<(), ErrorCode> {
    match namespace(name)? {
        Ns::Trusted if !cred.is_root() => Err(if write { ErrorCode::NotPermitted } else { ErrorCode::NoXattr }),
        Ns::Trusted => Ok(()),
        Ns::User => {
            if !matches!(r.kind, FileKind::File | FileKind::Dir) {
                return Err(if write { ErrorCode::NotPermitted } else { ErrorCode::NoXattr });
            }
            if write && r.is_dir() && r.mode & S_ISVTX != 0 && !perm::is_owner(cred, r.uid) {
                return Err(ErrorCode::NotPermitted);
            }
            perm::access(cred, r.into(), if write { W } else { R })
        }
        Ns::Security | Ns::System if write && !perm::is_owner(cred, r.uid) => Err(ErrorCode::NotPermitted),
        Ns::Security | Ns::System => Ok(()),
    }
}

pub fn set(ctx: &mut Ctx<'_, '_>, ino: InodeId, name: &Name, value: Bytes, flags: u32, cred: &Cred) -> OpResult {
    ctx.part.check_holds(ino)?;
    let mut r = state::inode(ctx.txn, ino)?;
    permission(cred, &r, name, true)?;
    if flags & !(SetXattr::CREATE | SetXattr::REPLACE) != 0 || flags == SetXattr::CREATE | SetXattr::REPLACE {
        return Err(ErrorCode::InvalidArgument(format!("setxattr flags {flags:#x}")).into());
    }
    if value.len() > MAX_XATTR_VALUE {
        return Err(ErrorCode::NoSpace.into());
    }
    let key = keys::xattr(ino, name.as_bytes());
    let exists = ctx.txn.get(&key)?.is_some();
    if exists && flags & SetXattr::CREATE != 0 {
        return Err(ErrorCode::Exists.into());
    }
    if !exists && flags & SetXattr::REPLACE != 0 {
        return Err(ErrorCode::NoXattr.into());
    }
    ctx.txn.put(key, value.to_vec());
    r.ctime = ctx.now;
    state::put_inode(ctx.txn, ino, &r);
    ok(&())
}

pub fn remove(ctx: &mut Ctx<'_, '_>, ino: InodeId, name: &Name, cred: &Cred) -> OpResult {
    ctx.part.check_holds(ino)?;
    let mut r = state::inode(ctx.txn, ino)?;
    permission(cred, &r, name, true)?;
    let key = keys::xattr(ino, name.as_bytes());
    if ctx.txn.get(&key)?.is_none() {
        return Err(ErrorCode::NoXattr.into());
    }
    ctx.txn.delete(key);
    r.ctime = ctx.now;
    state::put_inode(ctx.txn, ino, &r);
    ok(&())
}

/// A value, for `GetXattr` (a read, not a command).
pub fn get(kv: &dyn KvRead, ino: InodeId, name: &Name, cred: &Cred) -> Result<Bytes, ErrorCode> {
    let r = state::inode(kv, ino)?;
    permission(cred, &r, name, false)?;
    kv.get(&keys::xattr(ino, name.as_bytes()))?.map(Bytes::from).ok_or(ErrorCode::NoXattr)
}

/// Names `cred` may see, in byte order.
pub fn list(kv: &dyn KvRead, ino: InodeId, cred: &Cred) -> Result<Vec<Name>, ErrorCode> {
    state::inode(kv, ino)?;
    let prefix = keys::xattr_prefix(ino);
    Ok(kv
        .scan(&prefix, &prefix, usize::MAX)?
        .into_iter()
        .map(|(k, _)| Name::from(keys::tail_after_u64(&k)))
        .filter(|n| cred.is_root() || !n.as_bytes().starts_with(b"trusted."))
        .collect())
}
