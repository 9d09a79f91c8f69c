//! The key layout of a meta partition inside its Raft group's keyspace.
//!
//! Every key starts with a one-byte prefix naming its table. Prefixes and singleton names are persisted:
//! never reuse or renumber one; a layout change bumps [`FORMAT_VERSION`] (stored under [`FORMAT`]).
//! Integers are big-endian so that keys sort numerically:
//!
//! | prefix | key                                   | value                                    |
//! |--------|---------------------------------------|------------------------------------------|
//! | META   | `META, name`                          | singletons: format, allocator, usage, ... |
//! | INODE  | `INODE, ino`                          | [`crate::records::InodeRec`]             |
//! | DENTRY | `DENTRY, parent, name bytes`          | [`crate::records::DentryRec`]: a directory is one range, in name order |
//! | EXTENT | `EXTENT, ino, file end offset`        | [`crate::records::PieceRec`]: keyed by *end* so that the pieces overlapping `[s, e)` start at the first key past `s` |
//! | XATTR  | `XATTR, ino, name bytes`              | raw value                                |
//! | ORPHAN | `ORPHAN, ino`                         | [`crate::records::OrphanRec`]: unlinked, awaiting `Evict` |
//! | OPS    | `OPS, client, request, step`          | the recorded outcome of an applied mutation (see [`crate::dedup`]) |
//! | CLIENT | `CLIENT, client`                      | the client's low-water mark: older requests are forgotten |
//! | PREPARED | `PREPARED, client, request, step`   | [`crate::records::PreparedRec`]: a cross-partition step awaiting its decision |
//! | OUTBOX | `OUTBOX, client, request, step`       | [`crate::records::OutboxRec`]: effects of a decision still to apply elsewhere |
//! | FREED  | `FREED, seq`                          | [`crate::records::FreedRec`]: file data to release on datanodes |
//! | OPS_AGE | `OPS_AGE, class, time, client, request, step` | empty: the OPS entries in the order they expire |
//! | INLINE | `INLINE, ino`                         | a small file's bytes from offset 0 (then it has no EXTENT pieces) |

use ferrum_proto::{ClientId, InodeId, OpId, RequestId};

/// Version of this layout and of the records' encoding.
pub const FORMAT_VERSION: u32 = 2;

pub const META: u8 = 0x01;
pub const INODE: u8 = 0x02;
pub const DENTRY: u8 = 0x03;
pub const EXTENT: u8 = 0x04;
pub const XATTR: u8 = 0x05;
pub const ORPHAN: u8 = 0x06;
pub const OPS: u8 = 0x07;
pub const CLIENT: u8 = 0x08;
pub const PREPARED: u8 = 0x09;
pub const OUTBOX: u8 = 0x0A;
pub const FREED: u8 = 0x0B;
pub const OPS_AGE: u8 = 0x0C;
pub const INLINE: u8 = 0x0D;

/// Singletons under [`META`].
pub const FORMAT: &[u8] = &[META, b'f'];
pub const NEXT_INODE: &[u8] = &[META, b'n'];
pub const USAGE: &[u8] = &[META, b'u'];
pub const FREED_SEQ: &[u8] = &[META, b's'];
/// Where the inode range ends once the master split the partition (`u64`, exclusive); absent while
/// the range is the one in the partition's description.
pub const RANGE_END: &[u8] = &[META, b'e'];

fn with(prefix: u8, parts: &[u64], tail: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + 8 * parts.len() + tail.len());
    k.push(prefix);
    for p in parts {
        k.extend_from_slice(&p.to_be_bytes());
    }
    k.extend_from_slice(tail);
    k
}

pub fn inode(ino: InodeId) -> Vec<u8> {
    with(INODE, &[ino.get()], &[])
}

pub fn dentry(parent: InodeId, name: &[u8]) -> Vec<u8> {
    with(DENTRY, &[parent.get()], name)
}

/// All entries of directory `parent`.
pub fn dentry_prefix(parent: InodeId) -> Vec<u8> {
    with(DENTRY, &[parent.get()], &[])
}

pub fn extent(ino: InodeId, end: u64) -> Vec<u8> {
    with(EXTENT, &[ino.get(), end], &[])
}

pub fn extent_prefix(ino: InodeId) -> Vec<u8> {
    with(EXTENT, &[ino.get()], &[])
}

pub fn inline(ino: InodeId) -> Vec<u8> {
    with(INLINE, &[ino.get()], &[])
}

pub fn xattr(ino: InodeId, name: &[u8]) -> Vec<u8> {
    with(XATTR, &[ino.get()], name)
}

pub fn xattr_prefix(ino: InodeId) -> Vec<u8> {
    with(XATTR, &[ino.get()], &[])
}

pub fn orphan(ino: InodeId) -> Vec<u8> {
    with(ORPHAN, &[ino.get()], &[])
}

pub fn op(op: OpId, step: u32) -> Vec<u8> {
    let mut k = with(OPS, &[op.client.get(), op.request.get()], &[]);
    k.extend_from_slice(&step.to_be_bytes());
    k
}

pub fn client(c: ClientId) -> Vec<u8> {
    with(CLIENT, &[c.get()], &[])
}

pub fn prepared(op: OpId, step: u32) -> Vec<u8> {
    let mut k = with(PREPARED, &[op.client.get(), op.request.get()], &[]);
    k.extend_from_slice(&step.to_be_bytes());
    k
}

pub fn outbox(op: OpId, step: u32) -> Vec<u8> {
    let mut k = with(OUTBOX, &[op.client.get(), op.request.get()], &[]);
    k.extend_from_slice(&step.to_be_bytes());
    k
}

/// The `(op, step)` of a [`prepared`] or [`outbox`] key.
pub fn parse_op_step(key: &[u8]) -> Option<(OpId, u32)> {
    if key.len() != 1 + 8 + 8 + 4 {
        return None;
    }
    let c = u64::from_be_bytes(key[1..9].try_into().ok()?);
    let r = u64::from_be_bytes(key[9..17].try_into().ok()?);
    let s = u32::from_be_bytes(key[17..21].try_into().ok()?);
    Some((OpId::new(ClientId(c), RequestId(r)), s))
}

pub fn freed(seq: u64) -> Vec<u8> {
    with(FREED, &[seq], &[])
}

/// The `u64` right after the one-byte prefix (inode of an INODE/ORPHAN key, parent of a DENTRY key,
/// sequence of a FREED key).
pub fn first_u64(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(1..9)?.try_into().ok()?))
}

/// The name part of a DENTRY or XATTR key.
pub fn tail_after_u64(key: &[u8]) -> &[u8] {
    key.get(9..).unwrap_or(&[])
}

/// The first possible key after `key` (`key` + `0x00`): a scan from it resumes strictly after `key`.
pub fn just_after(key: &[u8]) -> Vec<u8> {
    let mut k = key.to_vec();
    k.push(0);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_entries_sort_by_name_within_their_parent() {
        let a = dentry(InodeId(5), b"a");
        let b = dentry(InodeId(5), b"b");
        let ab = dentry(InodeId(5), b"ab");
        let other = dentry(InodeId(6), b"");
        assert!(a < ab && ab < b && b < other);
        assert!(a.starts_with(&dentry_prefix(InodeId(5))));
        assert_eq!(tail_after_u64(&ab), b"ab");
        assert_eq!(first_u64(&ab), Some(5));
    }

    #[test]
    fn big_endian_numbers_sort_numerically() {
        assert!(inode(InodeId(255)) < inode(InodeId(256)));
        assert!(extent(InodeId(1), 4096) < extent(InodeId(1), 1 << 40));
        assert!(extent(InodeId(1), u64::MAX) < extent(InodeId(2), 0));
    }

    #[test]
    fn op_keys_round_trip() {
        let o = OpId::new(ClientId(7), RequestId(9));
        assert_eq!(parse_op_step(&prepared(o, 3)), Some((o, 3)));
        assert_eq!(parse_op_step(&outbox(o, 1)), Some((o, 1)));
        assert!(op(o, 1) < op(o, 2));
        assert!(just_after(b"ab") > b"ab".to_vec() && just_after(b"ab") < b"ab\x01".to_vec());
    }

    #[test]
    fn prefixes_are_distinct() {
        let all = [META, INODE, DENTRY, EXTENT, XATTR, ORPHAN, OPS, CLIENT, PREPARED, OUTBOX, FREED, OPS_AGE];
        let set: std::collections::HashSet<u8> = all.iter().copied().collect();
        assert_eq!(set.len(), all.len());
    }
}
