//! `link`: a new name for an existing non-directory. The name is decided here; the link count is
//! raised here too, or was raised by a prepare in the inode's partition (`remote`).

use ferrum_proto::msg::meta::MAX_LINKS;
use ferrum_proto::ErrorCode;

use super::{ok, Ctx, OpResult};
use crate::cmd::LinkArgs;
use crate::perm;
use crate::records::{DentryRec, InodeRec};
use crate::state;

/// Whether another name may be given to this inode.
pub fn check_linkable(rec: &InodeRec) -> Result<(), ErrorCode> {
    if rec.is_dir() {
        return Err(ErrorCode::NotPermitted);
    }
    if rec.nlink == 0 {
        return Err(ErrorCode::NotFound);
    }
    if rec.nlink >= MAX_LINKS {
        return Err(ErrorCode::TooManyLinks);
    }
    Ok(())
}

pub fn link(ctx: &mut Ctx<'_, '_>, a: LinkArgs) -> OpResult {
    a.name.validate()?;
    ctx.part.check_holds(a.parent)?;
    let mut dir = state::live_dir(ctx.txn, a.parent)?;
    perm::may_modify_dir(&a.cred, &dir)?;
    if state::get_dentry(ctx.txn, a.parent, &a.name)?.is_some() {
        return Err(ErrorCode::Exists.into());
    }
    let (kind, attr) = match a.remote {
        None => {
            ctx.part.check_holds(a.ino)?;
            let mut rec = state::inode(ctx.txn, a.ino)?;
            check_linkable(&rec)?;
            rec.nlink += 1;
            rec.ctime = ctx.now;
            state::put_inode(ctx.txn, a.ino, &rec);
            (rec.kind, Some(rec.attr(a.ino)))
        }
        Some(r) => {
            ctx.cross = true;
            (r.kind, None)
        }
    };
    state::put_dentry(ctx.txn, a.parent, &a.name, &DentryRec { ino: a.ino, kind, locked_by: None });
    dir.touch_content(ctx.now);
    state::put_inode(ctx.txn, a.parent, &dir);
    ok(&attr)
}
