//! The table of applied mutations, for idempotent retries.
//!
//! Every mutation is recorded under `(client, request, step)` with its outcome and the time it was
//! applied, in the same batch as its effects; a command whose key is recorded returns that outcome
//! without being applied again. Outcomes are kept for a *time*, not a count, because a client may have
//! any number of requests in flight and they may arrive in any order:
//! - [`Class::Client`] outcomes (mutations of one partition) for the op TTL (minutes: longer than any
//!   client keeps retrying);
//! - [`Class::Protocol`] outcomes (steps and decisions of cross-partition operations) for the protocol
//!   TTL (a day: a prepare or outbox elsewhere may ask about them after a long partition outage).
//!
//! When a client's outcome is forgotten, its request id becomes the client's *low-water mark*: a
//! request at or below it that is not recorded is refused rather than risk applying a retry twice
//! (only a request delayed longer than the TTL behind a newer one of the same client could hit this).
//!
//! The same table fences abandoned cross-partition decisions: recovery records a decision that was
//! never taken as `Fenced` (see [`crate::cmd::Body::Resolve`]).
//!
//! An age index (`OPS_AGE, class, time, client, request, step`) lets [`gc`] find what expired
//! without reading the rest.

use std::collections::BTreeMap;

use ferrum_proto::msg::attr::Time;
use ferrum_proto::{ClientId, ErrorCode, OpId, RequestId};
use serde::{Deserialize, Serialize};

use crate::cmd::{OpKey, Outcome};
use crate::keys;
use crate::records::{decode, encode};
use crate::txn::{KvRead, Txn};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Class {
    Client = 0,
    Protocol = 1,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct OpRec {
    at: Time,
    class: Class,
    outcome: Outcome,
}

/// Per client: every request id at or below this was recorded once and is forgotten.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ClientRec {
    low_water: u64,
}

pub fn lookup(kv: &dyn KvRead, key: OpKey) -> Result<Option<Outcome>, ErrorCode> {
    Ok(kv.get(&keys::op(key.op, key.step))?.map(|v| decode::<OpRec>("op outcome", &v)).transpose()?.map(|r| r.outcome))
}

fn client(kv: &dyn KvRead, c: ClientId) -> Result<ClientRec, ErrorCode> {
    Ok(kv.get(&keys::client(c))?.map(|v| decode("client", &v)).transpose()?.unwrap_or_default())
}

/// Whether `op` is at or below its client's low-water mark (and so, if unrecorded, may be a retry
/// whose outcome was forgotten).
pub fn too_old(kv: &dyn KvRead, op: OpId) -> Result<bool, ErrorCode> {
    Ok(op.request.get() <= client(kv, op.client)?.low_water)
}

pub fn refused(op: OpId) -> ErrorCode {
    ErrorCode::InvalidArgument(format!("request {op} is older than what its partition remembers: not applied again"))
}

/// `(secs, nanos)` as big-endian bytes that sort in time order (the sign bit flipped).
fn time_bytes(t: Time) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[..8].copy_from_slice(&((t.secs as u64) ^ (1 << 63)).to_be_bytes());
    b[8..].copy_from_slice(&t.nanos.to_be_bytes());
    b
}

fn age_key(class: Class, at: Time, key: OpKey) -> Vec<u8> {
    let mut k = vec![keys::OPS_AGE, class as u8];
    k.extend_from_slice(&time_bytes(at));
    k.extend_from_slice(&key.op.client.get().to_be_bytes());
    k.extend_from_slice(&key.op.request.get().to_be_bytes());
    k.extend_from_slice(&key.step.to_be_bytes());
    k
}

fn parse_age_key(k: &[u8]) -> Option<(Time, OpKey)> {
    if k.len() != 2 + 12 + 20 {
        return None;
    }
    let secs = (u64::from_be_bytes(k[2..10].try_into().ok()?) ^ (1 << 63)) as i64;
    let nanos = u32::from_be_bytes(k[10..14].try_into().ok()?);
    let c = u64::from_be_bytes(k[14..22].try_into().ok()?);
    let r = u64::from_be_bytes(k[22..30].try_into().ok()?);
    let s = u32::from_be_bytes(k[30..34].try_into().ok()?);
    Some((Time { secs, nanos }, OpKey::new(OpId::new(ClientId(c), RequestId(r)), s)))
}

/// Records `outcome` under `key`, applied at `now`.
pub fn record(txn: &mut Txn<'_>, key: OpKey, outcome: &Outcome, class: Class, now: Time) {
    txn.put(keys::op(key.op, key.step), encode(&OpRec { at: now, class, outcome: outcome.clone() }));
    txn.put(age_key(class, now, key), Vec::new());
}

/// Forgets up to `limit` outcomes of `class` recorded before `before`. Returns how many, and whether
/// more may have expired.
pub fn gc(txn: &mut Txn<'_>, class: Class, before: Time, limit: usize) -> Result<(u64, bool), ErrorCode> {
    let prefix = [keys::OPS_AGE, class as u8];
    let batch = txn.scan(&prefix, &prefix, limit)?;
    let full = batch.len() == limit;
    let mut deleted = 0;
    let mut low: BTreeMap<ClientId, u64> = BTreeMap::new();
    for (k, _) in batch {
        let (at, key) = parse_age_key(&k).ok_or_else(|| ErrorCode::Internal("corrupt op age key".into()))?;
        if at >= before {
            return finish(txn, low, deleted, false);
        }
        txn.delete(k);
        txn.delete(keys::op(key.op, key.step));
        if class == Class::Client {
            let l = low.entry(key.op.client).or_default();
            *l = (*l).max(key.op.request.get());
        }
        deleted += 1;
    }
    finish(txn, low, deleted, full)
}

fn finish(txn: &mut Txn<'_>, low: BTreeMap<ClientId, u64>, deleted: u64, more: bool) -> Result<(u64, bool), ErrorCode> {
    for (c, r) in low {
        let mut rec = client(txn, c)?;
        if r > rec.low_water {
            rec.low_water = r;
            txn.put(keys::client(c), encode(&rec));
        }
    }
    Ok((deleted, more))
}

/// The oldest recorded time of `class`, to decide whether a [`gc`] is due.
pub fn oldest(kv: &dyn KvRead, class: Class) -> Result<Option<Time>, ErrorCode> {
    let prefix = [keys::OPS_AGE, class as u8];
    Ok(kv.scan(&prefix, &prefix, 1)?.first().and_then(|(k, _)| parse_age_key(k)).map(|(t, _)| t))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use bytes::Bytes;

    use super::*;
    use crate::txn::MemKv;

    fn op(r: u64) -> OpId {
        OpId::new(ClientId(3), RequestId(r))
    }

    fn ok() -> Outcome {
        Outcome::Done { commit: true, result: Ok(Bytes::from_static(b"x")) }
    }

    fn at(secs: i64) -> Time {
        Time { secs, nanos: 0 }
    }

    #[test]
    fn recorded_outcomes_come_back_per_step() {
        let base = MemKv(BTreeMap::new());
        let mut t = Txn::new(&base);
        record(&mut t, OpKey::new(op(1), 1), &ok(), Class::Client, at(10));
        record(&mut t, OpKey::new(op(1), 2), &Outcome::Fenced, Class::Protocol, at(10));
        assert_eq!(lookup(&t, OpKey::new(op(1), 1)).unwrap(), Some(ok()));
        assert_eq!(lookup(&t, OpKey::new(op(1), 2)).unwrap(), Some(Outcome::Fenced));
        assert_eq!(lookup(&t, OpKey::new(op(1), 3)).unwrap(), None);
        assert!(!too_old(&t, op(1)).unwrap());
    }

    #[test]
    fn out_of_order_requests_are_fine_until_their_time_is_up() {
        let base = MemKv(BTreeMap::new());
        let mut t = Txn::new(&base);
        // Many requests in flight, arriving newest first: none is refused.
        for r in (1..=1000).rev() {
            assert!(!too_old(&t, op(r)).unwrap());
            record(&mut t, OpKey::new(op(r), 0), &ok(), Class::Client, at(100 + (1000 - r as i64)));
        }
        // Forget what is older than t=600: requests 501..=1000 (recorded at 100..=599).
        let (n, more) = gc(&mut t, Class::Client, at(600), 10_000).unwrap();
        assert_eq!((n, more), (500, false));
        assert_eq!(lookup(&t, OpKey::new(op(1000), 0)).unwrap(), None);
        assert!(lookup(&t, OpKey::new(op(500), 0)).unwrap().is_some());
        // The low-water mark is the highest forgotten id: a late request below it is refused.
        assert!(too_old(&t, op(1000)).unwrap() && too_old(&t, op(2)).unwrap());
        assert!(!too_old(&t, op(1001)).unwrap());
        assert_eq!(oldest(&t, Class::Client).unwrap(), Some(at(600)));
        // Another client is unaffected.
        assert!(!too_old(&t, OpId::new(ClientId(4), RequestId(1))).unwrap());
    }

    #[test]
    fn protocol_outcomes_have_their_own_clock_and_move_no_low_water() {
        let base = MemKv(BTreeMap::new());
        let mut t = Txn::new(&base);
        record(&mut t, OpKey::new(op(7), 5), &ok(), Class::Protocol, at(100));
        record(&mut t, OpKey::new(op(8), 0), &ok(), Class::Client, at(100));
        assert_eq!(gc(&mut t, Class::Client, at(200), 10).unwrap(), (1, false));
        assert_eq!(lookup(&t, OpKey::new(op(7), 5)).unwrap(), Some(ok()));
        assert_eq!(gc(&mut t, Class::Protocol, at(200), 10).unwrap(), (1, false));
        assert_eq!(lookup(&t, OpKey::new(op(7), 5)).unwrap(), None);
        assert!(too_old(&t, op(8)).unwrap());
        // Times before 1970 sort before later ones.
        record(&mut t, OpKey::new(op(9), 0), &ok(), Class::Client, at(-5));
        assert_eq!(oldest(&t, Class::Client).unwrap(), Some(at(-5)));
    }
}
