//! Typed access to a partition's tables: inodes, directory entries, orphans, the inode allocator and
//! the usage totals. Reads work on any [`KvRead`] (the committed view, or a [`Txn`] during apply);
//! writes go to a [`Txn`].

use ferrum_proto::msg::attr::Time;
use ferrum_proto::msg::name::Name;
use ferrum_proto::msg::topology::InodeRange;
use ferrum_proto::{ErrorCode, InodeId, PartitionId};

use crate::keys;
use crate::records::{decode, encode, DentryRec, InodeRec, OrphanRec, UsageRec};
use crate::txn::{KvRead, Txn};

/// What a partition is: its id and inode range, from the master's `CreatePartition`, with the range
/// cut where a split ended it (see [`effective`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionInfo {
    pub id: PartitionId,
    pub range: InodeRange,
    /// The range ends where a split put its end (not where the description says).
    pub split: bool,
}

impl PartitionInfo {
    /// As described at creation, before looking for a split.
    pub fn described(id: PartitionId, range: InodeRange) -> PartitionInfo {
        PartitionInfo { id, range, split: false }
    }

    pub fn holds(&self, ino: InodeId) -> bool {
        self.range.contains(ino)
    }

    /// A request naming an inode outside this partition's range was routed wrongly: past the end of a
    /// split range, by a caller whose view predates the split (it refreshes it on this error).
    pub fn check_holds(&self, ino: InodeId) -> Result<(), ErrorCode> {
        if self.holds(ino) {
            Ok(())
        } else if self.split && ino >= self.range.end {
            Err(self.range_end())
        } else {
            Err(ErrorCode::InvalidArgument(format!(
                "inode {ino} is not in partition {} (inodes {}..{})",
                self.id, self.range.start, self.range.end
            )))
        }
    }

    pub fn range_end(&self) -> ErrorCode {
        ErrorCode::InodeRangeEnd { partition: self.id, end: self.range.end }
    }
}

/// The end a split recorded, if any.
pub fn split_end(kv: &dyn KvRead) -> Result<Option<InodeId>, ErrorCode> {
    Ok(kv.get(keys::RANGE_END)?.map(|v| decode::<u64>("range end", &v)).transpose()?.map(InodeId))
}

/// The partition as its committed state says: the described range, cut at a recorded split end.
pub fn effective(kv: &dyn KvRead, described: &PartitionInfo) -> Result<PartitionInfo, ErrorCode> {
    Ok(match split_end(kv)? {
        Some(end) if end < described.range.end => {
            PartitionInfo { range: InodeRange { start: described.range.start, end }, split: true, ..*described }
        }
        _ => *described,
    })
}

/// Ends the inode range `step` numbers past the next free one (at least one more), once: every
/// replica applies the same end, so they all refuse the same allocations. Idempotent: a range
/// already ended, by a split or by its description, answers that end.
pub fn end_range(txn: &mut Txn<'_>, part: &PartitionInfo, step: u64) -> Result<InodeId, ErrorCode> {
    if part.split || part.range.end != InodeId(u64::MAX) {
        return Ok(part.range.end);
    }
    let next = next_inode(txn, part)?.get();
    // u64::MAX means "open-ended": never choose it as an end.
    let end = next.saturating_add(step.max(1)).min(u64::MAX - 1).max(next);
    txn.put(keys::RANGE_END.to_vec(), encode(&end));
    Ok(InodeId(end))
}

pub fn get_inode(kv: &dyn KvRead, ino: InodeId) -> Result<Option<InodeRec>, ErrorCode> {
    kv.get(&keys::inode(ino))?.map(|v| decode("inode", &v)).transpose()
}

/// The inode, or `NotFound`.
pub fn inode(kv: &dyn KvRead, ino: InodeId) -> Result<InodeRec, ErrorCode> {
    get_inode(kv, ino)?.ok_or(ErrorCode::NotFound)
}

/// The inode as a directory that may gain entries: `NotFound` if missing or dying, `NotDir`.
pub fn live_dir(kv: &dyn KvRead, ino: InodeId) -> Result<InodeRec, ErrorCode> {
    let d = inode(kv, ino)?;
    if !d.is_dir() {
        return Err(ErrorCode::NotDir);
    }
    if d.dying.is_some() || d.nlink == 0 {
        return Err(ErrorCode::NotFound);
    }
    Ok(d)
}

pub fn put_inode(txn: &mut Txn<'_>, ino: InodeId, rec: &InodeRec) {
    txn.put(keys::inode(ino), encode(rec));
}

pub fn get_dentry(kv: &dyn KvRead, parent: InodeId, name: &Name) -> Result<Option<DentryRec>, ErrorCode> {
    kv.get(&keys::dentry(parent, name.as_bytes()))?.map(|v| decode("dentry", &v)).transpose()
}

pub fn put_dentry(txn: &mut Txn<'_>, parent: InodeId, name: &Name, rec: &DentryRec) {
    txn.put(keys::dentry(parent, name.as_bytes()), encode(rec));
}

pub fn del_dentry(txn: &mut Txn<'_>, parent: InodeId, name: &Name) {
    txn.delete(keys::dentry(parent, name.as_bytes()));
}

/// Up to `limit` entries of `dir` strictly after `after`, and whether more follow.
pub fn list_dir(
    kv: &dyn KvRead,
    dir: InodeId,
    after: Option<&Name>,
    limit: usize,
) -> Result<(Vec<(Name, DentryRec)>, bool), ErrorCode> {
    let prefix = keys::dentry_prefix(dir);
    let start = match after {
        Some(n) => keys::just_after(&keys::dentry(dir, n.as_bytes())),
        None => prefix.clone(),
    };
    let mut pairs = kv.scan(&prefix, &start, limit.saturating_add(1))?;
    let more = pairs.len() > limit;
    pairs.truncate(limit);
    let entries = pairs
        .into_iter()
        .map(|(k, v)| Ok((Name::from(keys::tail_after_u64(&k)), decode("dentry", &v)?)))
        .collect::<Result<Vec<_>, ErrorCode>>()?;
    Ok((entries, more))
}

pub fn dir_is_empty(kv: &dyn KvRead, dir: InodeId) -> Result<bool, ErrorCode> {
    let prefix = keys::dentry_prefix(dir);
    Ok(kv.scan(&prefix, &prefix, 1)?.is_empty())
}

pub fn usage(kv: &dyn KvRead) -> Result<UsageRec, ErrorCode> {
    Ok(kv.get(keys::USAGE)?.map(|v| decode("usage", &v)).transpose()?.unwrap_or_default())
}

/// Adjusts the totals by `inodes` and `bytes` (negative to shrink).
pub fn add_usage(txn: &mut Txn<'_>, inodes: i64, bytes: i64) -> Result<(), ErrorCode> {
    if inodes == 0 && bytes == 0 {
        return Ok(());
    }
    let mut u = usage(txn)?;
    u.inodes = u.inodes.saturating_add_signed(inodes);
    u.bytes = u.bytes.saturating_add_signed(bytes);
    txn.put(keys::USAGE.to_vec(), encode(&u));
    Ok(())
}

/// Sets a file's size, keeping the byte total in step.
pub fn set_size(txn: &mut Txn<'_>, rec: &mut InodeRec, size: u64) -> Result<(), ErrorCode> {
    let delta = size as i128 - rec.size as i128;
    rec.size = size;
    add_usage(txn, 0, delta.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
}

/// The next free inode number of the partition's range (numbers are never reused).
pub fn alloc_inode(txn: &mut Txn<'_>, part: &PartitionInfo) -> Result<InodeId, ErrorCode> {
    let next = next_inode(txn, part)?;
    if !part.holds(next) {
        return Err(part.range_end());
    }
    txn.put(keys::NEXT_INODE.to_vec(), encode(&(next.get() + 1)));
    Ok(next)
}

/// The number [`alloc_inode`] returns next (the root, inode 1, is made at initialisation).
pub fn next_inode(kv: &dyn KvRead, part: &PartitionInfo) -> Result<InodeId, ErrorCode> {
    let stored: Option<u64> = kv.get(keys::NEXT_INODE)?.map(|v| decode("allocator", &v)).transpose()?;
    Ok(InodeId(stored.unwrap_or(part.range.start.get()).max(InodeId::ROOT.get() + 1)))
}

pub fn free_inodes(kv: &dyn KvRead, part: &PartitionInfo) -> Result<u64, ErrorCode> {
    Ok(part.range.end.get().saturating_sub(next_inode(kv, part)?.get()))
}

/// Lowers a link count; at 0 the inode joins the orphan list.
pub fn drop_link(txn: &mut Txn<'_>, ino: InodeId, rec: &mut InodeRec, now: Time) {
    rec.nlink = rec.nlink.saturating_sub(1);
    rec.ctime = now;
    if rec.nlink == 0 {
        txn.put(keys::orphan(ino), encode(&OrphanRec { since: now }));
    }
}

pub fn is_orphan(kv: &dyn KvRead, ino: InodeId) -> Result<bool, ErrorCode> {
    Ok(kv.get(&keys::orphan(ino))?.is_some())
}

/// Creates a new inode record and counts it.
pub fn add_inode(txn: &mut Txn<'_>, ino: InodeId, rec: &InodeRec) -> Result<(), ErrorCode> {
    put_inode(txn, ino, rec);
    add_usage(txn, 1, rec.size as i64)
}

/// Deletes an inode with everything attached to it: xattrs, orphan mark, and its data map (queued
/// for release on the datanodes).
pub fn delete_inode(txn: &mut Txn<'_>, ino: InodeId, rec: &InodeRec) -> Result<(), ErrorCode> {
    crate::extents::free_all(txn, ino)?;
    txn.delete(keys::inline(ino));
    let prefix = keys::xattr_prefix(ino);
    loop {
        let batch = txn.scan(&prefix, &prefix, 256)?;
        if batch.is_empty() {
            break;
        }
        for (k, _) in batch {
            txn.delete(k);
        }
    }
    txn.delete(keys::orphan(ino));
    txn.delete(keys::inode(ino));
    add_usage(txn, -1, -(rec.size.min(i64::MAX as u64) as i64))
}
