//! Exactly-once mutations: the outcome of each applied [`OpId`], kept in the partition's Raft keyspace
//! (so it commits atomically with the applied index), so that a retried request is answered with its
//! first outcome instead of being applied again (a retried old write must not undo a newer one).
//!
//! A mutation's position is its log index plus its place in a batched entry ([`Pos`]).
//!
//! Keys (never reuse a prefix):
//! - `o | client u64 | request u64` -> `index u64 | sub u32 | reply`: the op's first application.
//! - `x | index u64 | sub u32` -> `client u64 | request u64`: which op was applied where, so records can
//!   be dropped deterministically once they are [`WINDOW`] entries old.

use bytes::Bytes;
use ferrum_proto::{ClientId, OpId, RequestId};
use ferrum_raftstore::{GroupBatch, GroupView};

const OP: u8 = b'o';
const AT: u8 = b'x';

/// How many log entries an outcome is remembered for. A client retries within seconds; a million
/// entries is hours of writing at full speed.
pub const WINDOW: u64 = 1 << 20;

/// Where a mutation was applied: the log index of its entry and its place in that entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    pub index: u64,
    pub sub: u32,
}

impl Pos {
    pub fn new(index: u64, sub: u32) -> Pos {
        Pos { index, sub }
    }

    fn encode(&self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[..8].copy_from_slice(&self.index.to_be_bytes());
        b[8..].copy_from_slice(&self.sub.to_be_bytes());
        b
    }
}

/// The key of an op's record (app key, within the group's keyspace).
pub fn op_key(op: OpId) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = OP;
    k[1..9].copy_from_slice(&op.client.get().to_be_bytes());
    k[9..17].copy_from_slice(&op.request.get().to_be_bytes());
    k
}

/// The value of an op's record.
pub fn op_record(pos: Pos, reply: &[u8]) -> Vec<u8> {
    let mut v = pos.encode().to_vec();
    v.extend_from_slice(reply);
    v
}

fn at_prefix(index: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = AT;
    k[1..9].copy_from_slice(&index.to_be_bytes());
    k
}

fn at_key(pos: Pos) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[..9].copy_from_slice(&at_prefix(pos.index));
    k[9..].copy_from_slice(&pos.sub.to_be_bytes());
    k
}

/// Where the op was first applied and its reply, if remembered. A storage error is fatal: a replica
/// that cannot read its own state must not guess (the process aborts and restarts).
pub fn lookup(view: &GroupView<'_>, op: OpId) -> Option<(Pos, Bytes)> {
    let v = view.get(&op_key(op)).unwrap_or_else(|e| panic!("reading dedupe record of {op}: {e}"))?;
    let index = u64::from_be_bytes(v.get(..8)?.try_into().ok()?);
    let sub = u32::from_be_bytes(v.get(8..12)?.try_into().ok()?);
    Some((Pos { index, sub }, Bytes::copy_from_slice(&v[12..])))
}

/// The first reply, when the mutation at `pos` carrying `op` is a retry of one applied elsewhere.
pub fn is_retry(view: &GroupView<'_>, op: OpId, pos: Pos) -> Option<Bytes> {
    match lookup(view, op) {
        Some((first, reply)) if first != pos => Some(reply),
        _ => None,
    }
}

/// Remembers the outcome of `op` applied at `pos`. (Records of the same entry are not readable
/// through a `GroupView` before the entry commits: `App::run` tracks those itself.)
pub fn record(batch: &mut GroupBatch<'_>, pos: Pos, op: OpId, reply: &[u8]) {
    batch.put(&op_key(op), &op_record(pos, reply));
    let mut at = op.client.get().to_be_bytes().to_vec();
    at.extend_from_slice(&op.request.get().to_be_bytes());
    batch.put(&at_key(pos), &at);
}

/// Forgets the outcomes recorded at log index `index - WINDOW`; call once per applied entry.
pub fn expire(view: &GroupView<'_>, batch: &mut GroupBatch<'_>, index: u64) {
    let Some(old) = index.checked_sub(WINDOW) else { return };
    let prefix = at_prefix(old);
    let recs = view.scan(&prefix, &prefix, usize::MAX).unwrap_or_else(|e| panic!("reading dedupe index: {e}"));
    for (k, o) in recs {
        if o.len() != 16 || k.len() != 13 {
            continue;
        }
        let client = ClientId(u64::from_be_bytes(o[..8].try_into().expect("8")));
        let request = RequestId(u64::from_be_bytes(o[8..].try_into().expect("8")));
        let op = OpId::new(client, request);
        let pos = Pos { index: old, sub: u32::from_be_bytes(k[9..13].try_into().expect("4")) };
        // Only if that op's record is still the one from that position.
        if lookup(view, op).is_some_and(|(p, _)| p == pos) {
            batch.delete(&op_key(op));
        }
        batch.delete(&k);
    }
}
