//! `evict`: the last handle on an unlinked inode is gone; delete it and queue its data for release.

use ferrum_proto::InodeId;

use super::{ok, Ctx, OpResult};
use crate::state;

pub fn evict(ctx: &mut Ctx<'_, '_>, ino: InodeId) -> OpResult {
    ctx.part.check_holds(ino)?;
    match state::get_inode(ctx.txn, ino)? {
        // Still (or again) linked, or already gone: nothing to do.
        Some(r) if r.nlink == 0 => state::delete_inode(ctx.txn, ino, &r)?,
        _ => {}
    }
    ok(&())
}
