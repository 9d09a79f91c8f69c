//! `create`, `mknod`, `mkdir`, `symlink`: a new inode and its entry. The entry is decided here, in the
//! directory's partition; the inode is made here too, or was prepared in another partition (`remote`).

use bytes::Bytes;
use ferrum_proto::msg::attr::{FileKind, Time};
use ferrum_proto::msg::meta::{Cred, MAX_LINKS, MAX_SYMLINK_LEN};
use ferrum_proto::{ErrorCode, InodeId};

use super::{ok, Ctx, OpResult};
use crate::cmd::{CreateArgs, NewInode};
use crate::perm::{self, Owner};
use crate::records::{DentryRec, InodeRec};
use crate::state;

/// Rules on what may be created, whatever the directory.
pub fn check_new(cred: &Cred, kind: FileKind, target: Option<&Bytes>) -> Result<(), ErrorCode> {
    match kind {
        FileKind::Symlink => match target {
            None => Err(ErrorCode::InvalidArgument("a symlink needs a target".into())),
            Some(t) if t.is_empty() => Err(ErrorCode::NotFound),
            Some(t) if t.len() > MAX_SYMLINK_LEN => Err(ErrorCode::NameTooLong),
            Some(_) => Ok(()),
        },
        // Device nodes need CAP_MKNOD.
        FileKind::CharDev | FileKind::BlockDev if !cred.is_root() => Err(ErrorCode::NotPermitted),
        _ => Ok(()),
    }
}

pub fn new_inode_rec(new: &NewInode, parent: InodeId, now: Time) -> InodeRec {
    let dir = new.kind == FileKind::Dir;
    InodeRec {
        kind: new.kind,
        mode: if new.kind == FileKind::Symlink { 0o777 } else { new.owner.mode },
        uid: new.owner.uid,
        gid: new.owner.gid,
        size: new.target.as_ref().map_or(0, |t| t.len() as u64),
        rdev: if matches!(new.kind, FileKind::CharDev | FileKind::BlockDev) { new.rdev } else { 0 },
        nlink: if dir { 2 } else { 1 },
        atime: now,
        mtime: now,
        ctime: now,
        parent: if dir { parent } else { InodeId(0) },
        target: new.target.clone(),
        dying: None,
    }
}

pub fn create(ctx: &mut Ctx<'_, '_>, a: CreateArgs) -> OpResult {
    a.name.validate()?;
    ctx.part.check_holds(a.parent)?;
    let mut dir = state::live_dir(ctx.txn, a.parent)?;
    perm::may_modify_dir(&a.cred, &dir)?;
    if state::get_dentry(ctx.txn, a.parent, &a.name)?.is_some() {
        return Err(ErrorCode::Exists.into());
    }
    let kind = a.remote.map_or(a.kind, |r| r.kind);
    if kind == FileKind::Dir && dir.nlink >= MAX_LINKS {
        return Err(ErrorCode::TooManyLinks.into());
    }
    let (ino, attr) = match a.remote {
        None => {
            check_new(&a.cred, kind, a.target.as_ref())?;
            let owner: Owner = perm::new_owner(&a.cred, &dir, kind, a.mode);
            let new = NewInode { kind, owner, rdev: a.rdev, target: a.target };
            let ino = state::alloc_inode(ctx.txn, ctx.part)?;
            let rec = new_inode_rec(&new, a.parent, ctx.now);
            state::add_inode(ctx.txn, ino, &rec)?;
            (ino, Some(rec.attr(ino)))
        }
        Some(r) => {
            ctx.cross = true;
            if ctx.part.holds(r.ino) {
                return Err(
                    ErrorCode::InvalidArgument(format!("inode {} is local, not prepared elsewhere", r.ino)).into()
                );
            }
            (r.ino, None)
        }
    };
    state::put_dentry(ctx.txn, a.parent, &a.name, &DentryRec { ino, kind, locked_by: None });
    dir.touch_content(ctx.now);
    if kind == FileKind::Dir {
        dir.nlink += 1;
    }
    state::put_inode(ctx.txn, a.parent, &dir);
    ok(&attr)
}
