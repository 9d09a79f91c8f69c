//! `rename` and `renameat2(NOREPLACE | EXCHANGE)`, decided in the partition of the target directory.
//!
//! Everything in this partition changes here, atomically. What lives elsewhere was either prepared by
//! the coordinator before this decision (the source entry, locked; a replaced directory, marked dying
//! after being checked empty) and is committed or undone according to it, or is changed after it
//! through the outbox (the moved inode's ctime and `..`, a replaced file's link count).

use ferrum_proto::msg::attr::FileKind;
use ferrum_proto::msg::meta::{Rename, MAX_LINKS};
use ferrum_proto::{ErrorCode, InodeId};

use super::{noop, ok, Ctx, Fail, OpResult};
use crate::cmd::{Need, RenameArgs, RenameReply};
use crate::perm::{self, W};
use crate::records::{DentryRec, Effect};
use crate::state;

/// Walks up from `from` through the parents held here; `InvalidArgument` if `moved` is met (moving a
/// directory into itself or below itself). Ancestors in other partitions were checked by the
/// coordinator.
pub fn check_not_ancestor(ctx: &Ctx<'_, '_>, moved: InodeId, from: InodeId) -> Result<(), ErrorCode> {
    let mut cur = from;
    for _ in 0..4096 {
        if cur == moved {
            return Err(ErrorCode::InvalidArgument("cannot move a directory below itself".into()));
        }
        if cur == InodeId::ROOT || !ctx.part.holds(cur) {
            return Ok(());
        }
        match state::get_inode(ctx.txn, cur)? {
            Some(rec) => cur = rec.parent,
            None => return Ok(()),
        }
    }
    Err(ErrorCode::Internal(format!("directory chain above {from} is too deep or loops")))
}

pub fn rename(ctx: &mut Ctx<'_, '_>, a: RenameArgs) -> OpResult {
    if a.flags & !(Rename::NOREPLACE | Rename::EXCHANGE) != 0 {
        return Err(ErrorCode::NotSupported.into());
    }
    if a.flags == Rename::NOREPLACE | Rename::EXCHANGE {
        return Err(ErrorCode::InvalidArgument("RENAME_NOREPLACE with RENAME_EXCHANGE".into()).into());
    }
    let exchange = a.flags & Rename::EXCHANGE != 0;
    if a.src_name.len() > ferrum_proto::msg::name::Name::MAX_LEN {
        return Err(ErrorCode::NameTooLong.into());
    }
    a.dst_name.validate()?;
    ctx.part.check_holds(a.dst_parent)?;
    let same_dir = a.src_parent == a.dst_parent;
    let local_src = ctx.part.holds(a.src_parent);

    let mut b = state::live_dir(ctx.txn, a.dst_parent)?;
    perm::may_modify_dir(&a.cred, &b)?;

    // The source entry: here, or prepared (locked) in its own partition.
    let (m, m_kind) = if local_src {
        let dir_a = state::inode(ctx.txn, a.src_parent)?;
        if !dir_a.is_dir() {
            return Err(ErrorCode::NotDir.into());
        }
        perm::may_modify_dir(&a.cred, &dir_a)?;
        let d = state::get_dentry(ctx.txn, a.src_parent, &a.src_name)?.ok_or(ErrorCode::NotFound)?;
        if d.locked_by.is_some() {
            return Err(ErrorCode::Busy.into());
        }
        if perm::sticky_needs_owner(&a.cred, &dir_a) {
            perm::check_sticky(&a.cred, &dir_a, ctx.owner_of(d.ino, &a.owners)?.uid)?;
        }
        (d.ino, d.kind)
    } else {
        ctx.cross = true;
        a.src.ok_or_else(|| {
            ErrorCode::InvalidArgument("the source entry of another partition must be prepared".into())
        })?
    };
    if same_dir && a.src_name == a.dst_name {
        return noop(&RenameReply { target: None, nlink: None, outbox: Vec::new() });
    }

    let target = state::get_dentry(ctx.txn, a.dst_parent, &a.dst_name)?;
    if let Some(t) = &target {
        if t.locked_by.is_some() {
            return Err(ErrorCode::Busy.into());
        }
        if a.flags & Rename::NOREPLACE != 0 {
            return Err(ErrorCode::Exists.into());
        }
        if t.ino == m {
            // Two names of one inode: rename does nothing.
            return noop(&RenameReply { target: None, nlink: None, outbox: Vec::new() });
        }
    } else if exchange {
        return Err(ErrorCode::NotFound.into());
    }
    // The source partition was prepared to receive this target in an exchange.
    if exchange && !local_src && target.as_ref().map(|t| t.ino) != a.expect_target {
        return Err(Fail::Conflict(Need::Retry));
    }
    let t_dir = target.as_ref().is_some_and(|t| t.kind == FileKind::Dir);

    if m_kind == FileKind::Dir && !same_dir {
        check_not_ancestor(ctx, m, a.dst_parent)?;
        // Rewriting the directory's `..` needs write permission on it.
        perm::access(&a.cred, ctx.owner_of(m, &a.owners)?, W)?;
    }
    if let Some(t) = &target {
        if perm::sticky_needs_owner(&a.cred, &b) {
            perm::check_sticky(&a.cred, &b, ctx.owner_of(t.ino, &a.owners)?.uid)?;
        }
        if exchange {
            if t_dir && !same_dir {
                if local_src {
                    check_not_ancestor(ctx, t.ino, a.src_parent)?;
                }
                perm::access(&a.cred, ctx.owner_of(t.ino, &a.owners)?, W)?;
            }
        } else {
            if m_kind == FileKind::Dir && !t_dir {
                return Err(ErrorCode::NotDir.into());
            }
            if m_kind != FileKind::Dir && t_dir {
                return Err(ErrorCode::IsDir.into());
            }
            if t_dir {
                if ctx.part.holds(t.ino) {
                    if !state::dir_is_empty(ctx.txn, t.ino)? {
                        return Err(ErrorCode::NotEmpty.into());
                    }
                } else if a.dying != Some(t.ino) {
                    return Err(Fail::Conflict(Need::Dying(t.ino)));
                } else {
                    ctx.cross = true;
                }
            }
        }
    }

    // Link counts of the directories: B gains M and loses T (replaced or exchanged away); A loses M
    // and, in an exchange, gains T.
    let m_dir = (m_kind == FileKind::Dir) as i64;
    let b_delta = m_dir - t_dir as i64;
    let a_delta = -m_dir + (exchange && t_dir) as i64;
    if !same_dir && b_delta > 0 && b.nlink >= MAX_LINKS {
        return Err(ErrorCode::TooManyLinks.into());
    }

    // --- Every check passed: apply.
    let now = ctx.now;
    state::put_dentry(ctx.txn, a.dst_parent, &a.dst_name, &DentryRec { ino: m, kind: m_kind, locked_by: None });
    b.touch_content(now);
    if same_dir {
        match (&target, exchange) {
            (Some(t), true) => state::put_dentry(
                ctx.txn,
                a.src_parent,
                &a.src_name,
                &DentryRec { ino: t.ino, kind: t.kind, locked_by: None },
            ),
            _ => state::del_dentry(ctx.txn, a.src_parent, &a.src_name),
        }
        b.nlink = add(b.nlink, b_delta + a_delta);
        state::put_inode(ctx.txn, a.dst_parent, &b);
    } else {
        b.nlink = add(b.nlink, b_delta);
        state::put_inode(ctx.txn, a.dst_parent, &b);
        if local_src {
            match (&target, exchange) {
                (Some(t), true) => state::put_dentry(
                    ctx.txn,
                    a.src_parent,
                    &a.src_name,
                    &DentryRec { ino: t.ino, kind: t.kind, locked_by: None },
                ),
                _ => state::del_dentry(ctx.txn, a.src_parent, &a.src_name),
            }
            let mut dir_a = state::inode(ctx.txn, a.src_parent)?;
            dir_a.touch_content(now);
            dir_a.nlink = add(dir_a.nlink, a_delta);
            state::put_inode(ctx.txn, a.src_parent, &dir_a);
        }
        // Otherwise the commit of the prepared source entry changes A.
    }

    let mut effects = Vec::new();
    let moved_parent = (m_kind == FileKind::Dir && !same_dir).then_some(a.dst_parent);
    relink(ctx, m, moved_parent, &mut effects)?;
    let mut nlink = None;
    if let Some(t) = &target {
        if exchange {
            relink(ctx, t.ino, (t_dir && !same_dir).then_some(a.src_parent), &mut effects)?;
        } else if ctx.part.holds(t.ino) {
            if let Some(mut rec) = state::get_inode(ctx.txn, t.ino)? {
                if t_dir {
                    state::delete_inode(ctx.txn, t.ino, &rec)?;
                    nlink = Some(0);
                } else {
                    state::drop_link(ctx.txn, t.ino, &mut rec, now);
                    state::put_inode(ctx.txn, t.ino, &rec);
                    nlink = Some(rec.nlink);
                }
            }
        } else if t_dir {
            // Deleted by the commit of its dying prepare.
            nlink = Some(0);
        } else {
            effects.push(Effect::DecLink { ino: t.ino });
        }
    }
    let outbox = ctx.write_outbox(effects, &a.routes)?;
    ok(&RenameReply { target: target.map(|t| (t.ino, t.kind)), nlink, outbox })
}

fn add(n: u32, delta: i64) -> u32 {
    (n as i64 + delta).clamp(0, u32::MAX as i64) as u32
}

/// The renamed inode's ctime (and `..` for a directory that changed parent): here, or an effect.
fn relink(ctx: &mut Ctx<'_, '_>, ino: InodeId, parent: Option<InodeId>, effects: &mut Vec<Effect>) -> Result<(), Fail> {
    if !ctx.part.holds(ino) {
        effects.push(Effect::Relink { ino, parent });
        return Ok(());
    }
    if let Some(mut rec) = state::get_inode(ctx.txn, ino)? {
        rec.ctime = ctx.now;
        if let (Some(p), true) = (parent, rec.is_dir()) {
            rec.parent = p;
        }
        state::put_inode(ctx.txn, ino, &rec);
    }
    Ok(())
}
