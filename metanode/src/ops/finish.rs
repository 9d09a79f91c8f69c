//! Finishing prepares (commit or undo), and the effects a decision leaves for other partitions.
//! Both may arrive more than once and in any order with recovery running: each acts only on what is
//! still there (a finished prepare has no record any more; a gone inode has nothing to change).

use ferrum_proto::ErrorCode;

use super::prepare::adjust;
use super::{ok, Ctx, OpResult};
use crate::keys;
use crate::records::{decode, DentryRec, Effect, PreparedAction, PreparedRec};
use crate::state;
use crate::txn::KvRead;

pub fn finish(ctx: &mut Ctx<'_, '_>, prepare_step: u32, commit: bool) -> OpResult {
    let key = ctx.key()?;
    let pkey = keys::prepared(key.op, prepare_step);
    let Some(v) = ctx.txn.get(&pkey)? else { return ok(&()) };
    let rec: PreparedRec = decode("prepared", &v)?;
    ctx.txn.delete(pkey);
    let now = ctx.now;
    match (rec.action, commit) {
        (PreparedAction::NewInode { .. } | PreparedAction::LinkInc { .. }, true) => {}
        (PreparedAction::NewInode { ino }, false) => {
            if let Some(r) = state::get_inode(ctx.txn, ino)? {
                state::delete_inode(ctx.txn, ino, &r)?;
            }
        }
        (PreparedAction::LinkInc { ino }, false) => {
            if let Some(mut r) = state::get_inode(ctx.txn, ino)? {
                state::drop_link(ctx.txn, ino, &mut r, now);
                state::put_inode(ctx.txn, ino, &r);
            }
        }
        (PreparedAction::DirDying { ino }, true) => {
            if let Some(r) = state::get_inode(ctx.txn, ino)? {
                state::delete_inode(ctx.txn, ino, &r)?;
            }
        }
        (PreparedAction::DirDying { ino }, false) => {
            if let Some(mut r) = state::get_inode(ctx.txn, ino)? {
                if r.dying == Some(key.op) {
                    r.dying = None;
                    state::put_inode(ctx.txn, ino, &r);
                }
            }
        }
        (PreparedAction::SrcEntry { parent, name, kind, exchange, .. }, true) => {
            let locked = state::get_dentry(ctx.txn, parent, &name)?.is_some_and(|d| d.locked_by == Some(key.op));
            if locked {
                match exchange {
                    Some((ino, kind)) => {
                        state::put_dentry(ctx.txn, parent, &name, &DentryRec { ino, kind, locked_by: None })
                    }
                    None => state::del_dentry(ctx.txn, parent, &name),
                }
                if let Some(mut dir) = state::get_inode(ctx.txn, parent)? {
                    dir.touch_content(now);
                    dir.nlink = adjust(dir.nlink, kind, -1);
                    if let Some((_, t_kind)) = exchange {
                        dir.nlink = adjust(dir.nlink, t_kind, 1);
                    }
                    state::put_inode(ctx.txn, parent, &dir);
                }
            }
        }
        (PreparedAction::SrcEntry { parent, name, .. }, false) => {
            if let Some(mut d) = state::get_dentry(ctx.txn, parent, &name)?.filter(|d| d.locked_by == Some(key.op)) {
                d.locked_by = None;
                state::put_dentry(ctx.txn, parent, &name, &d);
            }
        }
    }
    ok(&())
}

/// Replies the link count for `DecLink`, `()` for `Relink`.
pub fn effect(ctx: &mut Ctx<'_, '_>, e: Effect) -> OpResult {
    match e {
        Effect::DecLink { ino } => {
            ctx.part.check_holds(ino)?;
            let Some(mut r) = state::get_inode(ctx.txn, ino)? else { return ok(&0u32) };
            if r.is_dir() {
                return Err(ErrorCode::IsDir.into());
            }
            state::drop_link(ctx.txn, ino, &mut r, ctx.now);
            state::put_inode(ctx.txn, ino, &r);
            ok(&r.nlink)
        }
        Effect::Relink { ino, parent } => {
            ctx.part.check_holds(ino)?;
            if let Some(mut r) = state::get_inode(ctx.txn, ino)? {
                r.ctime = ctx.now;
                if let (Some(p), true) = (parent, r.is_dir()) {
                    r.parent = p;
                }
                state::put_inode(ctx.txn, ino, &r);
            }
            ok(&())
        }
    }
}
