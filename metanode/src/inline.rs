//! Inline data: a small file's bytes kept with its inode (Lustre's data-on-MDT, ext4's inline data).
//!
//! Writing, reading and deleting a small file then touch one meta partition and no datanode: no
//! extent to create, no second Raft group to commit to, no extent files to create and delete on every
//! replica. A file holds either inline bytes (from offset 0, at most [`MAX_INLINE`]) or extent pieces,
//! never both; the client moves a file out of inline storage when it grows ([`InlineOp::Drop`]). Past
//! the inline bytes, up to the size, the file reads as zeros, as past the last piece of a sparse file.

use bytes::Bytes;
use ferrum_proto::msg::meta::{InlineOp, MAX_INLINE};
use ferrum_proto::{ErrorCode, InodeId};

use crate::keys;
use crate::txn::{KvRead, Txn};

pub fn get(kv: &dyn KvRead, ino: InodeId) -> Result<Option<Bytes>, ErrorCode> {
    Ok(kv.get(&keys::inline(ino))?.map(Bytes::from))
}

/// Applies `op` for a write that also maps `keys` pieces; returns the end of the inline bytes it set.
/// A client whose view is out of date (see [`ferrum_proto::msg::meta::ExtentAppend`]) gets `Stale`.
pub fn apply(txn: &mut Txn<'_>, ino: InodeId, op: InlineOp, has_keys: bool) -> Result<u64, ErrorCode> {
    let stale = || ErrorCode::Stale { current: 0 };
    match op {
        InlineOp::Keep => {
            if has_keys && txn.get(&keys::inline(ino))?.is_some() {
                return Err(stale());
            }
            Ok(0)
        }
        InlineOp::Drop => {
            txn.delete(keys::inline(ino));
            Ok(0)
        }
        InlineOp::Set(bytes) => {
            if bytes.len() > MAX_INLINE {
                return Err(ErrorCode::InvalidArgument(format!("inline data over {MAX_INLINE} bytes")));
            }
            if has_keys {
                return Err(ErrorCode::InvalidArgument("inline data and extent keys in one write".into()));
            }
            if !crate::extents::list_is_empty(txn, ino)? {
                return Err(stale());
            }
            let end = bytes.len() as u64;
            txn.put(keys::inline(ino), bytes.to_vec());
            Ok(end)
        }
    }
}

/// Cuts the inline bytes at `size` (a truncate).
pub fn truncate(txn: &mut Txn<'_>, ino: InodeId, size: u64) -> Result<(), ErrorCode> {
    if let Some(mut v) = txn.get(&keys::inline(ino))? {
        if size == 0 {
            // Empty: the file may take extents again without dropping anything.
            txn.delete(keys::inline(ino));
        } else if v.len() as u64 > size {
            v.truncate(size as usize);
            txn.put(keys::inline(ino), v);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ferrum_proto::msg::extent::ExtentKey;
    use ferrum_proto::{ExtentId, PartitionId};

    use super::*;
    use crate::txn::MemKv;

    const I: InodeId = InodeId(7);

    #[test]
    fn set_replaces_and_truncate_cuts() {
        let base = MemKv(BTreeMap::new());
        let mut t = Txn::new(&base);
        assert_eq!(apply(&mut t, I, InlineOp::Set(Bytes::from_static(b"hello world")), false).unwrap(), 11);
        truncate(&mut t, I, 5).unwrap();
        assert_eq!(get(&t, I).unwrap().unwrap(), Bytes::from_static(b"hello"));
        truncate(&mut t, I, 100).unwrap();
        assert_eq!(get(&t, I).unwrap().unwrap(), Bytes::from_static(b"hello"), "growing adds no bytes");
        truncate(&mut t, I, 0).unwrap();
        assert_eq!(get(&t, I).unwrap(), None, "nothing left, nothing kept");
        apply(&mut t, I, InlineOp::Set(Bytes::from_static(b"again")), false).unwrap();
        apply(&mut t, I, InlineOp::Drop, true).unwrap();
        assert_eq!(get(&t, I).unwrap(), None);
    }

    #[test]
    fn a_stale_view_is_refused() {
        let base = MemKv(BTreeMap::new());
        let mut t = Txn::new(&base);
        apply(&mut t, I, InlineOp::Set(Bytes::from_static(b"x")), false).unwrap();
        // Keys without dropping the inline bytes: the writer did not know about them.
        assert!(matches!(apply(&mut t, I, InlineOp::Keep, true), Err(ErrorCode::Stale { .. })));
        assert_eq!(apply(&mut t, I, InlineOp::Keep, false).unwrap(), 0, "an mtime-only write is fine");
        apply(&mut t, I, InlineOp::Drop, true).unwrap();
        let key =
            ExtentKey { file_offset: 0, partition: PartitionId(1), extent: ExtentId(1), extent_offset: 0, len: 1 };
        crate::extents::insert(&mut t, I, &key).unwrap();
        // Inline bytes for a file that has pieces: the writer did not know about those.
        let set = InlineOp::Set(Bytes::from_static(b"y"));
        assert!(matches!(apply(&mut t, I, set, false), Err(ErrorCode::Stale { .. })));
        let big = InlineOp::Set(Bytes::from(vec![0; MAX_INLINE + 1]));
        assert!(matches!(apply(&mut t, InodeId(8), big, false), Err(ErrorCode::InvalidArgument(_))));
    }
}
