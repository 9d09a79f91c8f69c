//! Applying one command to a partition: idempotency, initialisation, then the operation itself (one
//! file per operation). Every operation checks everything before its first write, or relies on the
//! rollback here: a command that fails leaves no trace but its recorded outcome.

mod create;
mod evict;
mod extent;
mod finish;
mod init;
mod link;
mod prepare;
mod rename;
mod repair;
mod rmdir;
mod setattr;
mod unlink;
mod xattr;

pub use create::{check_new, new_inode_rec};
pub use init::ensure as ensure_init;
pub use xattr::{get as xattr_get, list as xattr_list};

use bytes::Bytes;
use ferrum_proto::msg::attr::Time;
use ferrum_proto::msg::meta::MetaRoute;
use ferrum_proto::{ErrorCode, InodeId, PartitionId};
use serde::Serialize;

use crate::cmd::{Body, MetaCmd, Need, OpKey, Outcome};
use crate::dedup;
use crate::perm::Owner;
use crate::records::{encode, Effect, OutboxItem, OutboxRec};
use crate::state::{self, PartitionInfo};
use crate::txn::Txn;
use crate::{keys, steps};

/// What an operation sees while it is applied.
pub struct Ctx<'t, 'a> {
    pub txn: &'t mut Txn<'a>,
    pub part: &'t PartitionInfo,
    /// The proposing leader's clock.
    pub now: Time,
    pub key: Option<OpKey>,
    /// Set by operations that involve other partitions: their outcome goes to the PROTO table.
    pub cross: bool,
}

impl Ctx<'_, '_> {
    /// The operation's key, required by the steps of cross-partition operations.
    pub fn key(&self) -> Result<OpKey, ErrorCode> {
        self.key.ok_or_else(|| ErrorCode::InvalidArgument("this command needs an op id".into()))
    }

    /// Owner of an inode: read here when local, else taken from what the coordinator supplied.
    pub fn owner_of(&self, ino: InodeId, supplied: &[(InodeId, Owner)]) -> Result<Owner, Fail> {
        if self.part.holds(ino) {
            return Ok(Owner::from(&state::inode(self.txn, ino)?));
        }
        supplied.iter().find(|(i, _)| *i == ino).map(|(_, o)| *o).ok_or(Fail::Conflict(Need::Owner(ino)))
    }

    /// Records effects to apply in other partitions after this decision (see `coord`).
    pub fn write_outbox(&mut self, effects: Vec<Effect>, routes: &[MetaRoute]) -> Result<Vec<OutboxItem>, Fail> {
        if effects.is_empty() {
            return Ok(Vec::new());
        }
        self.cross = true;
        let key = self.key()?;
        let mut items = Vec::new();
        let mut used: Vec<MetaRoute> = Vec::new();
        for (i, effect) in effects.into_iter().enumerate() {
            let ino = match &effect {
                Effect::DecLink { ino } | Effect::Relink { ino, .. } => *ino,
            };
            let route = route_of(routes, ino)?;
            if !used.iter().any(|r| r.partition == route.partition) {
                used.push(route.clone());
            }
            items.push(OutboxItem { partition: route.partition, step: steps::effect_of(key.step, i as u32), effect });
        }
        let rec = OutboxRec { created: self.now, items: items.clone(), routes: used };
        self.txn.put(keys::outbox(key.op, key.step), encode(&rec));
        Ok(items)
    }
}

/// The route of the partition holding `ino`.
pub fn route_of(routes: &[MetaRoute], ino: InodeId) -> Result<&MetaRoute, ErrorCode> {
    routes
        .iter()
        .find(|r| r.inodes.contains(ino))
        .ok_or_else(|| ErrorCode::InvalidArgument(format!("no route to the partition of inode {ino}")))
}

pub fn partition_of(routes: &[MetaRoute], ino: InodeId) -> Result<PartitionId, ErrorCode> {
    Ok(route_of(routes, ino)?.partition)
}

/// Why an operation did not go through.
#[derive(Debug)]
pub enum Fail {
    /// Refused with this error (recorded like a success).
    Code(ErrorCode),
    /// The coordinator must supply something first (not recorded).
    Conflict(Need),
    /// `Resolve` found no decision: record it as fenced.
    Fence,
}

impl From<ErrorCode> for Fail {
    fn from(e: ErrorCode) -> Fail {
        Fail::Code(e)
    }
}

pub struct Success {
    pub reply: Bytes,
    /// Whether prepares depending on this decision commit (false: a rename that changes nothing).
    pub commit: bool,
}

pub type OpResult = Result<Success, Fail>;

pub fn ok<T: Serialize>(reply: &T) -> OpResult {
    Ok(Success { reply: Bytes::from(encode(reply)), commit: true })
}

/// Success that changes nothing: prepares of the operation are undone.
pub fn noop<T: Serialize>(reply: &T) -> OpResult {
    Ok(Success { reply: Bytes::from(encode(reply)), commit: false })
}

/// Applies `cmd`, with its writes left in `txn`, and returns what the proposer gets back.
pub fn apply(txn: &mut Txn<'_>, part: &PartitionInfo, cmd: MetaCmd) -> Outcome {
    let protocol = cmd.body.is_protocol();
    if let Some(key) = cmd.op {
        match dedup::lookup(txn, key) {
            Ok(Some(recorded)) => return recorded,
            Ok(None) => {}
            Err(e) => return Outcome::error(e),
        }
        match dedup::too_old(txn, key.op) {
            Ok(false) => {}
            // A decision this old is refused anyway (below), so it can never be taken.
            Ok(true) if matches!(cmd.body, Body::Resolve) => return Outcome::Fenced,
            Ok(true) if !protocol => return Outcome::error(dedup::refused(key.op)),
            Ok(true) => {}
            Err(e) => return Outcome::error(e),
        }
    }
    if let Err(e) = init::ensure(txn, part, cmd.now) {
        return Outcome::error(e);
    }
    // The range as committed: a split may have ended it.
    let part = match state::effective(txn, part) {
        Ok(p) => p,
        Err(e) => return Outcome::error(e),
    };
    let sp = txn.savepoint();
    let mut ctx = Ctx { txn, part: &part, now: cmd.now, key: cmd.op, cross: protocol };
    let result = dispatch(&mut ctx, cmd.body);
    let cross = ctx.cross;
    let outcome = match result {
        Ok(s) => Outcome::Done { commit: s.commit, result: Ok(s.reply) },
        Err(Fail::Code(e)) => {
            txn.rollback(sp);
            Outcome::error(e)
        }
        Err(Fail::Conflict(need)) => {
            txn.rollback(sp);
            return Outcome::Conflict(need);
        }
        Err(Fail::Fence) => {
            txn.rollback(sp);
            Outcome::Fenced
        }
    };
    if let Some(key) = cmd.op {
        let class = if cross { dedup::Class::Protocol } else { dedup::Class::Client };
        dedup::record(txn, key, &outcome, class, cmd.now);
    }
    outcome
}

fn dispatch(ctx: &mut Ctx<'_, '_>, body: Body) -> OpResult {
    match body {
        Body::Init => ok(&()),
        Body::SetAttr { ino, set, cred, handle } => setattr::setattr(ctx, ino, set, &cred, handle),
        Body::SetXattr { ino, name, value, flags, cred } => xattr::set(ctx, ino, &name, value, flags, &cred),
        Body::RemoveXattr { ino, name, cred } => xattr::remove(ctx, ino, &name, &cred),
        Body::ExtentAppend { ino, extents, inline, cred } => extent::append(ctx, ino, &extents, inline, &cred),
        Body::Evict { ino } => evict::evict(ctx, ino),
        Body::FreedAck { upto } => extent::freed_ack(ctx, upto),
        Body::Create(a) => create::create(ctx, a),
        Body::Link(a) => link::link(ctx, a),
        Body::Unlink(a) => unlink::unlink(ctx, a),
        Body::Rmdir(a) => rmdir::rmdir(ctx, a),
        Body::Rename(a) => rename::rename(ctx, a),
        Body::Prepare(a) => prepare::prepare(ctx, a),
        Body::Finish { prepare_step, commit } => finish::finish(ctx, prepare_step, commit),
        Body::Resolve => {
            // Reached only when nothing is recorded under the decision's key (see `apply`).
            ctx.key()?;
            Err(Fail::Fence)
        }
        Body::Effect(e) => finish::effect(ctx, e),
        Body::OutboxDone { decide_step } => {
            let key = ctx.key()?;
            ctx.txn.delete(keys::outbox(key.op, decide_step));
            ok(&())
        }
        Body::Repair(r) => repair::repair(ctx, r),
        Body::EndRange { step } => ok(&state::end_range(ctx.txn, ctx.part, step)?),
        Body::Gc { class, ttl_secs, limit } => {
            let before = crate::sweeper::before(ctx.now, std::time::Duration::from_secs(ttl_secs));
            ok(&dedup::gc(ctx.txn, class, before, limit.max(1) as usize)?)
        }
    }
}
