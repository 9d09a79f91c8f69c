//! `rmdir`: removes an empty directory. The entry goes here; the directory itself is deleted here, or
//! in its own partition when the prepare that marked it dying (and checked it empty) commits.

use ferrum_proto::msg::attr::FileKind;
use ferrum_proto::ErrorCode;

use super::{ok, Ctx, Fail, OpResult};
use crate::cmd::{Need, RmdirArgs};
use crate::perm;
use crate::state;

pub fn rmdir(ctx: &mut Ctx<'_, '_>, a: RmdirArgs) -> OpResult {
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
    if d.kind != FileKind::Dir {
        return Err(ErrorCode::NotDir.into());
    }
    if perm::sticky_needs_owner(&a.cred, &dir) {
        let owner = ctx.owner_of(d.ino, &a.owners)?;
        perm::check_sticky(&a.cred, &dir, owner.uid)?;
    }
    if ctx.part.holds(d.ino) {
        if let Some(child) = state::get_inode(ctx.txn, d.ino)? {
            if !state::dir_is_empty(ctx.txn, d.ino)? {
                return Err(ErrorCode::NotEmpty.into());
            }
            state::delete_inode(ctx.txn, d.ino, &child)?;
        }
    } else if a.dying != Some(d.ino) {
        return Err(Fail::Conflict(Need::Dying(d.ino)));
    } else {
        ctx.cross = true;
    }
    state::del_dentry(ctx.txn, a.parent, &a.name);
    dir.touch_content(ctx.now);
    dir.nlink = dir.nlink.saturating_sub(1);
    state::put_inode(ctx.txn, a.parent, &dir);
    ok(&())
}
