//! Prepares: changes made in this partition ahead of a decision another partition takes (see `coord`).
//! Each is recorded as a [`PreparedRec`] naming the decider, so that it is committed or undone even if
//! its coordinator disappears.

use ferrum_proto::msg::attr::FileKind;
use ferrum_proto::ErrorCode;

use super::link::check_linkable;
use super::{check_new, new_inode_rec, Ctx, OpResult, Success};
use crate::cmd::{PrepareArgs, PrepareWhat};
use crate::keys;
use crate::perm;
use crate::records::{encode, PreparedAction, PreparedRec};
use crate::state;

pub fn prepare(ctx: &mut Ctx<'_, '_>, a: PrepareArgs) -> OpResult {
    let key = ctx.key()?;
    let (action, reply) = match a.what {
        PrepareWhat::NewInode { new, parent } => {
            // The caller's credentials were checked against the directory by the coordinator; the
            // device rule needs only the owner, who is the caller.
            let as_cred = ferrum_proto::msg::meta::Cred::user(new.owner.uid, new.owner.gid);
            check_new(&as_cred, new.kind, new.target.as_ref())?;
            let ino = state::alloc_inode(ctx.txn, ctx.part)?;
            let rec = new_inode_rec(&new, parent, ctx.now);
            state::add_inode(ctx.txn, ino, &rec)?;
            (PreparedAction::NewInode { ino }, encode(&rec.attr(ino)))
        }
        PrepareWhat::LinkInc { ino } => {
            ctx.part.check_holds(ino)?;
            let mut rec = state::inode(ctx.txn, ino)?;
            check_linkable(&rec)?;
            rec.nlink += 1;
            rec.ctime = ctx.now;
            state::put_inode(ctx.txn, ino, &rec);
            (PreparedAction::LinkInc { ino }, encode(&rec.attr(ino)))
        }
        PrepareWhat::DirDying { ino } => {
            ctx.part.check_holds(ino)?;
            let mut rec = state::inode(ctx.txn, ino)?;
            if !rec.is_dir() {
                return Err(ErrorCode::NotDir.into());
            }
            if rec.dying.is_some() {
                return Err(ErrorCode::Busy.into());
            }
            if !state::dir_is_empty(ctx.txn, ino)? {
                return Err(ErrorCode::NotEmpty.into());
            }
            rec.dying = Some(key.op);
            state::put_inode(ctx.txn, ino, &rec);
            (PreparedAction::DirDying { ino }, encode(&()))
        }
        PrepareWhat::SrcEntry { cred, parent, name, exchange, owners } => {
            if name.len() > ferrum_proto::msg::name::Name::MAX_LEN {
                return Err(ErrorCode::NameTooLong.into());
            }
            ctx.part.check_holds(parent)?;
            let dir = state::inode(ctx.txn, parent)?;
            if !dir.is_dir() {
                return Err(ErrorCode::NotDir.into());
            }
            perm::may_modify_dir(&cred, &dir)?;
            let mut d = state::get_dentry(ctx.txn, parent, &name)?.ok_or(ErrorCode::NotFound)?;
            if d.locked_by.is_some() {
                return Err(ErrorCode::Busy.into());
            }
            if perm::sticky_needs_owner(&cred, &dir) {
                perm::check_sticky(&cred, &dir, ctx.owner_of(d.ino, &owners)?.uid)?;
            }
            d.locked_by = Some(key.op);
            state::put_dentry(ctx.txn, parent, &name, &d);
            let reply = encode(&(d.ino, d.kind));
            (PreparedAction::SrcEntry { parent, name, ino: d.ino, kind: d.kind, exchange }, reply)
        }
    };
    let rec = PreparedRec { created: ctx.now, decider: a.decider, decide_step: a.decide_step, route: a.route, action };
    ctx.txn.put(keys::prepared(key.op, key.step), encode(&rec));
    Ok(Success { reply: reply.into(), commit: true })
}

/// A directory's link count after it loses (`-1`) or gains (`+1`) a subdirectory.
pub fn adjust(nlink: u32, kind: FileKind, delta: i64) -> u32 {
    if kind != FileKind::Dir {
        return nlink;
    }
    (nlink as i64 + delta).clamp(0, u32::MAX as i64) as u32
}
