//! Data-map commands: recording written extents, and draining the queue of freed data.

use ferrum_proto::msg::attr::FileKind;
use ferrum_proto::msg::extent::ExtentKey;
use ferrum_proto::msg::meta::{Cred, InlineOp};
use ferrum_proto::{ErrorCode, InodeId};

use super::{ok, Ctx, OpResult};
use crate::{extents, freed, inline, perm, state};

pub fn append(ctx: &mut Ctx<'_, '_>, ino: InodeId, keys: &[ExtentKey], inline: InlineOp, cred: &Cred) -> OpResult {
    ctx.part.check_holds(ino)?;
    let mut r = state::inode(ctx.txn, ino)?;
    match r.kind {
        FileKind::File => {}
        FileKind::Dir => return Err(ErrorCode::IsDir.into()),
        _ => return Err(ErrorCode::InvalidArgument("only regular files have data".into()).into()),
    }
    let mut end = r.size.max(inline::apply(ctx.txn, ino, inline, keys.iter().any(|k| k.len > 0))?);
    for k in keys {
        extents::insert(ctx.txn, ino, k)?;
        end = end.max(k.file_end());
    }
    state::set_size(ctx.txn, &mut r, end)?;
    r.touch_content(ctx.now);
    if !cred.is_root() {
        r.mode = perm::kill_setid(r.kind, r.mode);
    }
    state::put_inode(ctx.txn, ino, &r);
    ok(&())
}

pub fn freed_ack(ctx: &mut Ctx<'_, '_>, upto: u64) -> OpResult {
    freed::ack(ctx.txn, upto)?;
    ok(&())
}
