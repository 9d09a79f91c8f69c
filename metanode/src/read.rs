//! Queries, over a partition's committed state on its leader (see `Peers::read`), so they see every
//! acknowledged mutation. Each single read — a key, or a page of a scan, which RocksDB iterates from one
//! point in time — sees whole commands; a query reading several keys may see a command applied between
//! two of its reads, as any concurrent observer may.

use bytes::Bytes;
use ferrum_proto::msg::attr::FileKind;
use ferrum_proto::msg::meta::{
    Cred, DirEntry, ExtentListResp, FreedListResp, LookupResp, ReadDir, ReadDirPlus, ReadDirPlusResp, ReadDirResp,
    StatFsResp,
};
use ferrum_proto::msg::name::Name;
use ferrum_proto::{ErrorCode, InodeId};

use crate::keys;
use crate::perm::{self, X};
use crate::records::{decode, OrphanRec, OutboxRec, PreparedRec};
use crate::state::{self, PartitionInfo};
use crate::txn::KvRead;
use crate::wire::{InodeInfoResp, ScanItem, ScanResp, Table};
use crate::{extents, freed, inline};

pub fn lookup(
    kv: &dyn KvRead,
    part: &PartitionInfo,
    parent: InodeId,
    name: &Name,
    cred: &Cred,
) -> Result<LookupResp, ErrorCode> {
    part.check_holds(parent)?;
    let dir = state::inode(kv, parent)?;
    if !dir.is_dir() {
        return Err(ErrorCode::NotDir);
    }
    perm::access(cred, (&dir).into(), X)?;
    let (ino, kind) = match name.as_bytes() {
        b"." => (parent, FileKind::Dir),
        b".." => (dir.parent, FileKind::Dir),
        b if b.len() > Name::MAX_LEN => return Err(ErrorCode::NameTooLong),
        _ => {
            let d = state::get_dentry(kv, parent, name)?.ok_or(ErrorCode::NotFound)?;
            (d.ino, d.kind)
        }
    };
    let attr = if part.holds(ino) { state::get_inode(kv, ino)?.map(|r| r.attr(ino)) } else { None };
    Ok(LookupResp { inode: ino, kind, attr })
}

pub fn getattr(
    kv: &dyn KvRead,
    part: &PartitionInfo,
    ino: InodeId,
) -> Result<ferrum_proto::msg::attr::InodeAttr, ErrorCode> {
    part.check_holds(ino)?;
    Ok(state::inode(kv, ino)?.attr(ino))
}

pub fn inode_info(kv: &dyn KvRead, part: &PartitionInfo, ino: InodeId) -> Result<InodeInfoResp, ErrorCode> {
    part.check_holds(ino)?;
    let r = state::inode(kv, ino)?;
    Ok(InodeInfoResp { attr: r.attr(ino), parent: r.parent, dying: r.dying.is_some() })
}

pub fn readlink(kv: &dyn KvRead, part: &PartitionInfo, ino: InodeId) -> Result<Bytes, ErrorCode> {
    part.check_holds(ino)?;
    let r = state::inode(kv, ino)?;
    match (r.kind, r.target) {
        (FileKind::Symlink, Some(t)) => Ok(t),
        _ => Err(ErrorCode::InvalidArgument(format!("inode {ino} is not a symlink"))),
    }
}

pub fn readdir(kv: &dyn KvRead, part: &PartitionInfo, req: &ReadDir) -> Result<ReadDirResp, ErrorCode> {
    part.check_holds(req.inode)?;
    let dir = state::inode(kv, req.inode)?;
    if !dir.is_dir() {
        return Err(ErrorCode::NotDir);
    }
    let limit = req.limit.clamp(1, ReadDir::MAX_LIMIT) as usize;
    let (entries, more) = state::list_dir(kv, req.inode, req.cursor.as_ref(), limit)?;
    let next = if more { entries.last().map(|(n, _)| n.clone()) } else { None };
    let entries = entries.into_iter().map(|(name, d)| DirEntry { name, inode: d.ino, kind: d.kind }).collect();
    Ok(ReadDirResp { entries, next })
}

/// A page of [`readdir`] with the attributes of the entries held here, read from the same state.
pub fn readdir_plus(kv: &dyn KvRead, part: &PartitionInfo, req: &ReadDirPlus) -> Result<ReadDirPlusResp, ErrorCode> {
    let plain = ReadDir { partition: req.partition, inode: req.inode, cursor: req.cursor.clone(), limit: req.limit };
    let page = readdir(kv, part, &plain)?;
    let mut entries = Vec::with_capacity(page.entries.len());
    for e in page.entries {
        let attr = match part.holds(e.inode) {
            true => state::get_inode(kv, e.inode)?.map(|r| r.attr(e.inode)),
            false => None,
        };
        entries.push((e, attr));
    }
    Ok(ReadDirPlusResp { entries, next: page.next })
}

pub fn statfs(kv: &dyn KvRead, part: &PartitionInfo) -> Result<StatFsResp, ErrorCode> {
    let u = state::usage(kv)?;
    Ok(StatFsResp { inodes: u.inodes, bytes: u.bytes, free_inodes: state::free_inodes(kv, part)? })
}

pub fn extent_list(kv: &dyn KvRead, part: &PartitionInfo, ino: InodeId) -> Result<ExtentListResp, ErrorCode> {
    part.check_holds(ino)?;
    let r = state::inode(kv, ino)?;
    if r.is_dir() {
        return Err(ErrorCode::IsDir);
    }
    Ok(ExtentListResp { size: r.size, extents: extents::list(kv, ino)?, inline: inline::get(kv, ino)? })
}

pub fn freed_list(kv: &dyn KvRead, limit: u32) -> Result<FreedListResp, ErrorCode> {
    Ok(FreedListResp { pieces: freed::list(kv, limit.clamp(1, 4096) as usize)? })
}

pub fn scan(kv: &dyn KvRead, table: Table, after: Option<&[u8]>, limit: u32) -> Result<ScanResp, ErrorCode> {
    let prefix = [match table {
        Table::Inodes => keys::INODE,
        Table::Dentries => keys::DENTRY,
        Table::Prepared => keys::PREPARED,
        Table::Outbox => keys::OUTBOX,
        Table::Orphans => keys::ORPHAN,
    }];
    let start = after.map(keys::just_after).unwrap_or_else(|| prefix.to_vec());
    let limit = limit.clamp(1, 10_000) as usize;
    let pairs = kv.scan(&prefix, &start, limit)?;
    let next = (pairs.len() == limit).then(|| pairs.last().map(|(k, _)| Bytes::from(k.clone()))).flatten();
    let corrupt = || ErrorCode::Internal("corrupt key".into());
    let mut items = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        items.push(match table {
            Table::Inodes => {
                let ino = InodeId(keys::first_u64(&k).ok_or_else(corrupt)?);
                let r: crate::records::InodeRec = decode("inode", &v)?;
                ScanItem::Inode { attr: r.attr(ino), parent: r.parent, dying: r.dying.is_some() }
            }
            Table::Dentries => {
                let d: crate::records::DentryRec = decode("dentry", &v)?;
                ScanItem::Dentry {
                    parent: InodeId(keys::first_u64(&k).ok_or_else(corrupt)?),
                    name: Name::from(keys::tail_after_u64(&k)),
                    inode: d.ino,
                    kind: d.kind,
                    locked: d.locked_by.is_some(),
                }
            }
            Table::Prepared => {
                let (op, step) = keys::parse_op_step(&k).ok_or_else(corrupt)?;
                ScanItem::Prepared { op, step, rec: decode::<PreparedRec>("prepared", &v)? }
            }
            Table::Outbox => {
                let (op, step) = keys::parse_op_step(&k).ok_or_else(corrupt)?;
                ScanItem::Outbox { op, step, rec: decode::<OutboxRec>("outbox", &v)? }
            }
            Table::Orphans => ScanItem::Orphan {
                inode: InodeId(keys::first_u64(&k).ok_or_else(corrupt)?),
                since: decode::<OrphanRec>("orphan", &v)?.since,
            },
        });
    }
    Ok(ScanResp { items, next })
}
