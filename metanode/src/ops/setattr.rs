//! `setattr` (and `truncate`, which is a size change through a handle): POSIX rules on who may change
//! what, which times move, and when setuid/setgid are cleared.

use ferrum_proto::msg::attr::{FileKind, SetAttrFields, SetTime, Time};
use ferrum_proto::msg::meta::Cred;
use ferrum_proto::{ErrorCode, InodeId};

use super::{ok, Ctx, OpResult};
use crate::perm::{self, W};
use crate::records::{InodeRec, MODE_MASK, S_ISGID};
use crate::{extents, inline, state};

fn check(r: &InodeRec, set: &SetAttrFields, cred: &Cred, handle: bool) -> Result<(), ErrorCode> {
    let owner = perm::is_owner(cred, r.uid);
    if set.mode.is_some() && !owner {
        return Err(ErrorCode::NotPermitted);
    }
    // chown: root may do anything; the owner may "change" the owner to itself and the group to one
    // of its groups (Linux `chown_ok` / `chgrp_ok`).
    if let Some(uid) = set.uid {
        if !(cred.is_root() || cred.uid == r.uid && uid == r.uid) {
            return Err(ErrorCode::NotPermitted);
        }
    }
    if let Some(gid) = set.gid {
        if !(cred.is_root() || cred.uid == r.uid && (gid == r.gid || cred.in_group(gid))) {
            return Err(ErrorCode::NotPermitted);
        }
    }
    if set.size.is_some() {
        match r.kind {
            FileKind::File => {}
            FileKind::Dir => return Err(ErrorCode::IsDir),
            _ => return Err(ErrorCode::InvalidArgument("only regular files have a settable size".into())),
        }
        if !handle {
            perm::access(cred, r.into(), W)?;
        }
    }
    for t in [set.atime, set.mtime].into_iter().flatten() {
        match t {
            // utimensat(UTIME_NOW): the owner, or anyone who may write.
            SetTime::Now if !owner => perm::access(cred, r.into(), W)?,
            SetTime::At(_) if !owner => return Err(ErrorCode::NotPermitted),
            _ => {}
        }
    }
    if set.ctime.is_some() && !owner {
        return Err(ErrorCode::NotPermitted);
    }
    Ok(())
}

fn resolve(t: SetTime, now: Time) -> Time {
    match t {
        SetTime::Now => now,
        SetTime::At(t) => t,
    }
}

pub fn setattr(ctx: &mut Ctx<'_, '_>, ino: InodeId, set: SetAttrFields, cred: &Cred, handle: bool) -> OpResult {
    ctx.part.check_holds(ino)?;
    let mut r = state::inode(ctx.txn, ino)?;
    check(&r, &set, cred, handle)?;
    if set == SetAttrFields::default() {
        return ok(&r.attr(ino));
    }
    let now = ctx.now;
    if let Some(size) = set.size {
        if size < r.size {
            extents::truncate(ctx.txn, ino, size)?;
            inline::truncate(ctx.txn, ino, size)?;
        }
        state::set_size(ctx.txn, &mut r, size)?;
        r.touch_content(now);
        if !cred.is_root() {
            r.mode = perm::kill_setid(r.kind, r.mode);
        }
    }
    if set.uid.is_some() || set.gid.is_some() {
        r.uid = set.uid.unwrap_or(r.uid);
        r.gid = set.gid.unwrap_or(r.gid);
        // Linux clears setuid/setgid on chown of a non-directory, for root too.
        r.mode = perm::kill_setid(r.kind, r.mode);
    }
    if let Some(mode) = set.mode {
        let mut m = mode & MODE_MASK;
        if !cred.is_root() && !cred.in_group(r.gid) {
            m &= !S_ISGID;
        }
        r.mode = m;
    }
    if let Some(t) = set.atime {
        r.atime = resolve(t, now);
    }
    if let Some(t) = set.mtime {
        r.mtime = resolve(t, now);
    }
    r.ctime = set.ctime.unwrap_or(now);
    state::put_inode(ctx.txn, ino, &r);
    ok(&r.attr(ino))
}
