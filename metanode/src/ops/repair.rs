//! Repairs decided by fsck. Each re-checks its premise, since the namespace may have moved on
//! between the scan that found the problem and the repair.

use ferrum_proto::msg::attr::FileKind;
use ferrum_proto::ErrorCode;

use super::{ok, Ctx, OpResult};
use crate::cmd::Repair;
use crate::keys;
use crate::records::{encode, OrphanRec};
use crate::state;

pub fn repair(ctx: &mut Ctx<'_, '_>, r: Repair) -> OpResult {
    match r {
        Repair::RemoveDentry { parent, name, expect } => {
            ctx.part.check_holds(parent)?;
            let Some(d) = state::get_dentry(ctx.txn, parent, &name)? else { return ok(&false) };
            if d.ino != expect || d.locked_by.is_some() {
                return ok(&false);
            }
            if ctx.part.holds(expect) && state::get_inode(ctx.txn, expect)?.is_some() {
                return Err(
                    ErrorCode::InvalidArgument(format!("inode {expect} exists: its entry is not dangling")).into()
                );
            }
            state::del_dentry(ctx.txn, parent, &name);
            if let Some(mut dir) = state::get_inode(ctx.txn, parent)? {
                dir.touch_content(ctx.now);
                if d.kind == FileKind::Dir {
                    dir.nlink = dir.nlink.saturating_sub(1);
                }
                state::put_inode(ctx.txn, parent, &dir);
            }
            ok(&true)
        }
        Repair::SetNlink { ino, nlink } => {
            ctx.part.check_holds(ino)?;
            let Some(mut rec) = state::get_inode(ctx.txn, ino)? else { return ok(&false) };
            if rec.is_dir() && nlink == 0 {
                // A directory no entry leads to: only an empty one can go without losing anything.
                if !state::dir_is_empty(ctx.txn, ino)? {
                    return Err(ErrorCode::NotEmpty.into());
                }
                state::delete_inode(ctx.txn, ino, &rec)?;
                return ok(&true);
            }
            rec.nlink = nlink;
            rec.ctime = ctx.now;
            if nlink == 0 {
                ctx.txn.put(keys::orphan(ino), encode(&OrphanRec { since: ctx.now }));
            } else {
                ctx.txn.delete(keys::orphan(ino));
            }
            state::put_inode(ctx.txn, ino, &rec);
            ok(&true)
        }
        Repair::SetParent { ino, parent } => {
            ctx.part.check_holds(ino)?;
            let Some(mut rec) = state::get_inode(ctx.txn, ino)? else { return ok(&false) };
            if !rec.is_dir() {
                return ok(&false);
            }
            rec.parent = parent;
            state::put_inode(ctx.txn, ino, &rec);
            ok(&true)
        }
    }
}
