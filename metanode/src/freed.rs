//! The queue of file data no inode references any more, drained by whoever can reach the datanodes
//! (`FreedList` / `FreedAck`). Entries are numbered in the order they were freed.

use ferrum_proto::msg::meta::FreedPiece;
use ferrum_proto::ErrorCode;

use crate::keys;
use crate::records::{decode, encode, FreedRec};
use crate::txn::{KvRead, Txn};

pub fn push(txn: &mut Txn<'_>, rec: FreedRec) -> Result<(), ErrorCode> {
    let seq: u64 = txn.get(keys::FREED_SEQ)?.map(|v| decode("freed sequence", &v)).transpose()?.unwrap_or(1);
    txn.put(keys::freed(seq), encode(&rec));
    txn.put(keys::FREED_SEQ.to_vec(), encode(&(seq + 1)));
    Ok(())
}

/// The oldest `limit` entries.
pub fn list(kv: &dyn KvRead, limit: usize) -> Result<Vec<FreedPiece>, ErrorCode> {
    let prefix = [keys::FREED];
    kv.scan(&prefix, &prefix, limit)?
        .into_iter()
        .map(|(k, v)| {
            let rec: FreedRec = decode("freed", &v)?;
            let seq = keys::first_u64(&k).ok_or_else(|| ErrorCode::Internal("corrupt freed key".into()))?;
            Ok(FreedPiece { seq, extent: rec.extent, inode_evicted: rec.inode_evicted })
        })
        .collect()
}

/// Forgets the entries up to `upto` (inclusive).
pub fn ack(txn: &mut Txn<'_>, upto: u64) -> Result<(), ErrorCode> {
    loop {
        let batch = list(txn, 256)?;
        let done: Vec<u64> = batch.iter().map(|p| p.seq).take_while(|s| *s <= upto).collect();
        if done.is_empty() {
            return Ok(());
        }
        for s in done {
            txn.delete(keys::freed(s));
        }
    }
}
