//! `unlink`: removes a non-directory entry. The entry goes here; the link count drops here too, or in
//! the inode's partition through the decision's outbox (a `DecLink` effect).

use ferrum_proto::ErrorCode;

use super::{ok, Ctx, OpResult};
use crate::cmd::{UnlinkArgs, UnlinkReply};
use crate::perm;
use crate::records::Effect;
use crate::state;

pub fn unlink(ctx: &mut Ctx<'_, '_>, a: UnlinkArgs) -> OpResult {
    if a.name.len() > ferrum_proto::msg::name::Name::MAX_LEN {
        return Err(ErrorCode::NameTooLong.into());
    }
    ctx.part.check_holds(a.parent)?;
    let mut dir = state::inode(ctx.txn, a.parent)?;
    if !dir.is_dir() {
        return Err(ErrorCode::NotDir.into());
    }
    perm::may_modify_dir(&a.cred, &dir)?;
    let d = state::get_dentry(ctx.txn, a.parent, &a.name)?.ok_or(ErrorCode::NotFound)?;
    if d.locked_by.is_some() {
        return Err(ErrorCode::Busy.into());
    }
    if d.kind == ferrum_proto::msg::attr::FileKind::Dir {
        return Err(ErrorCode::IsDir.into());
    }
    if perm::sticky_needs_owner(&a.cred, &dir) {
        let owner = ctx.owner_of(d.ino, &a.owners)?;
        perm::check_sticky(&a.cred, &dir, owner.uid)?;
    }
    state::del_dentry(ctx.txn, a.parent, &a.name);
    dir.touch_content(ctx.now);
    state::put_inode(ctx.txn, a.parent, &dir);
    let mut evicted = false;
    let (nlink, outbox) = if ctx.part.holds(d.ino) {
        // A missing inode behind an entry is a leftover fsck reports; the entry goes all the same.
        let nlink = match state::get_inode(ctx.txn, d.ino)? {
            Some(mut rec) => {
                state::drop_link(ctx.txn, d.ino, &mut rec, ctx.now);
                // Nobody holds it open at the caller: delete it now rather than on a later `Evict`.
                evicted = rec.nlink == 0 && a.open_here.as_ref().is_some_and(|open| !open.contains(&d.ino));
                if evicted {
                    state::delete_inode(ctx.txn, d.ino, &rec)?;
                } else {
                    state::put_inode(ctx.txn, d.ino, &rec);
                }
                rec.nlink
            }
            None => 0,
        };
        (Some(nlink), Vec::new())
    } else {
        (None, ctx.write_outbox(vec![Effect::DecLink { ino: d.ino }], &a.routes)?)
    };
    ok(&UnlinkReply { ino: d.ino, nlink, outbox, evicted })
}
