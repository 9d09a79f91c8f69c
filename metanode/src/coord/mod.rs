//! Operations that span meta partitions, and the protocol that makes them crash-safe.
//!
//! # Where things live
//! An inode lives in the partition whose range holds its number; a directory's entries live with the
//! directory's inode. So `create` may put the new inode in partition I and its entry in partition D;
//! `link`, `unlink` and `rmdir` touch the entry's partition and the inode's; a rename touches the
//! source directory's partition A, the target directory's B, and the inodes of the moved (M) and
//! replaced (T) entries.
//!
//! # The protocol
//! The metanode serving the request coordinates; its partition (the directory whose entry is created,
//! removed or renamed into) is the **decider**. Every step is one Raft command in one partition,
//! recorded under `(op id, step)` (see [`crate::steps`], [`crate::dedup`]), so a retried step — by the
//! coordinator, by a client retrying the whole request, or by recovery — returns its first outcome.
//!
//! 1. **Prepare** what must exist or be checked elsewhere before the decision: the new inode (create),
//!    the raised link count (link), the empty directory marked *dying* (rmdir, rename over a
//!    directory), the rename source entry *locked*. A prepare is recorded in its partition as a
//!    [`crate::records::PreparedRec`] naming the decider and the decision's step.
//! 2. **Decide**: one atomic command in the decider checks everything local (POSIX rules, names,
//!    permissions), changes the entries, and — in the same batch — writes an **outbox** of the effects
//!    still due elsewhere (a removed file's link count, a moved directory's `..`). The decision is the
//!    commit point: its recorded outcome says whether the prepares commit.
//! 3. **Finish** each prepare (commit or undo) and **drain** the outbox (apply each effect, then delete
//!    the outbox).
//!
//! Nothing is ever visible half-made: a new inode exists before any entry points to it, a removed
//! entry disappears before its inode's link count drops, and a locked source entry stays until the
//! rename is decided. Observers may see a cross-directory rename's two names for a moment.
//!
//! # Crashes
//! If the coordinator dies (or gives up) at any point, the partitions hold the whole truth:
//! - a prepared record whose decision is unknown is resolved by the partition's leader ([`crate::sweeper`])
//!   after a grace period: it asks the decider with a `Resolve` command applied under the decision's
//!   own key, which returns the recorded outcome, or — if the decision was never taken — records it
//!   as *fenced*, so that the coordinator's late proposal of it can never succeed. Commit or undo
//!   follows.
//! - an outbox is drained by the decider's leader after the grace period.
//!
//! A decision that needs something not prepared yet (an owner for the sticky check, a dying mark on a
//! directory that replaced the expected one) is not recorded but answered with a `Need`: the
//! coordinator supplies it and proposes again, or abandons the attempt (fencing its decision, undoing
//! its prepares) and starts a new one with fresh step numbers.
//!
//! [`crate::fsck`] checks the whole namespace afterwards and repairs what other failures (or bugs)
//! might leave: dangling entries, wrong link counts, unreachable inodes.

mod create;
mod remove;
mod rename;

pub use create::{create, link, CreateReq};
pub use remove::{rmdir, unlink};
pub use rename::{rename, RenameReq};

use ferrum_proto::msg::meta::MetaRoute;
use ferrum_proto::{msg, ErrorCode, InodeId, OpId, PartitionId};
use serde::de::DeserializeOwned;

use crate::cmd::{Body, Need, OpKey, Outcome, PrepareArgs, PrepareWhat};
use crate::failpoint::Failpoints;
use crate::peers::Peers;
use crate::perm::Owner;
use crate::records::OutboxItem;
use crate::state::{self, PartitionInfo};
use crate::steps;

/// Attempts of one operation before giving up with `Busy` (each needs a concurrent change to fail).
const MAX_ATTEMPTS: u32 = 8;

/// Deepest directory chain walked for the rename loop check.
const MAX_DEPTH: usize = 4096;

/// One request being coordinated.
pub struct Coord<'a> {
    peers: &'a Peers,
    fail: Failpoints,
    /// The decider: the partition serving the request.
    part: PartitionInfo,
    op: OpId,
    routes: Vec<MetaRoute>,
    name: &'static str,
}

/// A prepare made by this operation, to finish.
#[derive(Clone, Debug)]
struct Prepared {
    route: MetaRoute,
    step: u32,
}

/// What a decision's outcome means to the coordinator.
enum Decision<T> {
    Taken { commit: bool, reply: T },
    Refused(ErrorCode),
    Fenced,
    Need(Need),
}

impl<T> Decision<T> {
    fn name(&self) -> &'static str {
        match self {
            Decision::Taken { .. } => "taken",
            Decision::Refused(_) => "refused",
            Decision::Fenced => "fenced",
            Decision::Need(_) => "needs more",
        }
    }
}

fn classify<T: DeserializeOwned>(o: Outcome) -> Result<Decision<T>, ErrorCode> {
    Ok(match o {
        Outcome::Done { commit, result: Ok(bytes) } => Decision::Taken { commit, reply: msg::decode(&bytes)? },
        Outcome::Done { result: Err(e), .. } => Decision::Refused(e),
        Outcome::Fenced => Decision::Fenced,
        Outcome::Conflict(n) => Decision::Need(n),
    })
}

/// Supplies the owner a decision asked for; a second request for the same one is a bug.
async fn supply_owner(c: &Coord<'_>, owners: &mut Vec<(InodeId, Owner)>, ino: InodeId) -> Result<(), ErrorCode> {
    if owners.iter().any(|(i, _)| *i == ino) {
        return Err(ErrorCode::Internal(format!("owner of {ino} asked for twice")));
    }
    owners.push((ino, c.owner(ino).await?));
    Ok(())
}

impl<'a> Coord<'a> {
    pub fn new(
        peers: &'a Peers,
        fail: Failpoints,
        partition: PartitionId,
        op: OpId,
        mut routes: Vec<MetaRoute>,
        name: &'static str,
    ) -> Result<Coord<'a>, ErrorCode> {
        let part = peers.local_info(partition)?;
        // Only the leader coordinates: a follower would otherwise prepare elsewhere before learning
        // (at its first local read or write) that it cannot decide.
        if !peers.is_leader(partition) {
            return Err(peers.not_leader(partition));
        }
        // Our own route from our membership, which is fresher than the caller's.
        routes.retain(|r| r.partition != partition);
        routes.push(peers.self_route(partition)?);
        Ok(Coord { peers, fail, part, op, routes, name })
    }

    fn hit(&self, point: &str) -> Result<(), ErrorCode> {
        self.fail.hit(&format!("{}.{point}", self.name))
    }

    fn is_local(&self, ino: InodeId) -> bool {
        self.part.holds(ino)
    }

    fn route_of(&self, ino: InodeId) -> Result<&MetaRoute, ErrorCode> {
        crate::ops::route_of(&self.routes, ino)
    }

    fn route_to(&self, p: PartitionId) -> Result<&MetaRoute, ErrorCode> {
        self.routes
            .iter()
            .find(|r| r.partition == p)
            .ok_or_else(|| ErrorCode::InvalidArgument(format!("no route to partition {p}")))
    }

    fn self_route(&self) -> MetaRoute {
        self.route_to(self.part.id).expect("own route added at construction").clone()
    }

    async fn decide(&self, attempt: u32, body: Body) -> Result<Outcome, ErrorCode> {
        self.peers.propose(self.part.id, Some(OpKey::new(self.op, steps::at(steps::DECIDE, attempt))), body).await
    }

    /// Whether this attempt's decision is already recorded (a retried request): checks made before
    /// deciding are then skipped, since the state may have moved on because of the decision itself.
    async fn decided(&self, attempt: u32) -> Result<bool, ErrorCode> {
        let key = OpKey::new(self.op, steps::at(steps::DECIDE, attempt));
        self.peers.read(self.part.id, move |kv, _| Ok(crate::dedup::lookup(kv, key)?.is_some())).await
    }

    /// Fences this attempt's decision (or learns it was taken after all).
    async fn fence(&self, attempt: u32) -> Result<Outcome, ErrorCode> {
        self.decide(attempt, Body::Resolve).await
    }

    async fn prepare(&self, route: &MetaRoute, step: u32, what: PrepareWhat) -> Result<Outcome, ErrorCode> {
        let args = PrepareArgs {
            decider: self.part.id,
            decide_step: steps::at(steps::DECIDE, steps::attempt_of(step)),
            route: Some(self.self_route()),
            what,
        };
        self.peers.step(route, OpKey::new(self.op, step), Body::Prepare(args)).await
    }

    /// Commits or undoes prepares. A failure is left to recovery: the decision is recorded, so the
    /// prepare's partition resolves it the same way.
    async fn finish(&self, prepared: &[Prepared], commit: bool) {
        for p in prepared {
            let body = Body::Finish { prepare_step: p.step, commit };
            if let Err(e) = self.peers.step(&p.route, OpKey::new(self.op, steps::finish_of(p.step)), body).await {
                tracing::warn!(op = %self.op, partition = %p.route.partition, "finishing a prepare failed, left to recovery: {e}");
            }
        }
    }

    /// Abandons an attempt whose decision was not taken: fences it, then undoes its prepares. Returns
    /// the decision if it turns out it was taken (a lost reply), for the caller to complete.
    async fn abandon(&self, attempt: u32, prepared: &[Prepared]) -> Result<Option<Outcome>, ErrorCode> {
        let o = self.fence(attempt).await?;
        match o {
            Outcome::Fenced => {
                self.finish(prepared, false).await;
                Ok(None)
            }
            done => Ok(Some(done)),
        }
    }

    /// Applies a decision's outbox, then deletes it. Returns each effect's outcome.
    async fn drain(&self, attempt: u32, items: &[OutboxItem]) -> Result<Vec<Outcome>, ErrorCode> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let route = self.route_to(item.partition)?;
            out.push(self.peers.step(route, OpKey::new(self.op, item.step), Body::Effect(item.effect.clone())).await?);
            self.hit("after_effect")?;
        }
        let decide = steps::at(steps::DECIDE, attempt);
        let done = Body::OutboxDone { decide_step: decide };
        self.peers.propose(self.part.id, Some(OpKey::new(self.op, steps::outbox_done_of(decide))), done).await?;
        Ok(out)
    }

    async fn info(&self, ino: InodeId) -> Result<crate::wire::InodeInfoResp, ErrorCode> {
        if self.is_local(ino) {
            return self.peers.read(self.part.id, |kv, part| crate::read::inode_info(kv, part, ino)).await;
        }
        self.peers.inode_info(self.route_of(ino)?, ino).await
    }

    async fn owner(&self, ino: InodeId) -> Result<Owner, ErrorCode> {
        let a = self.info(ino).await?.attr;
        Ok(Owner { uid: a.uid, gid: a.gid, mode: a.mode })
    }

    /// `InvalidArgument` if directory `moved` is `from` or one of its ancestors (across partitions).
    /// Concurrent renames elsewhere can still race with this check, as in every distributed
    /// filesystem without a volume-wide rename lock; the decision repeats the local part atomically.
    async fn check_not_below(&self, moved: InodeId, from: InodeId) -> Result<(), ErrorCode> {
        let mut cur = from;
        for _ in 0..MAX_DEPTH {
            if cur == moved {
                return Err(ErrorCode::InvalidArgument("cannot move a directory below itself".into()));
            }
            if cur == InodeId::ROOT {
                return Ok(());
            }
            cur = match self.info(cur).await {
                Ok(i) => i.parent,
                // Gone meanwhile: the decision will find out.
                Err(ErrorCode::NotFound) => return Ok(()),
                Err(e) => return Err(e),
            };
        }
        Err(ErrorCode::Internal(format!("directory chain above {from} is too deep")))
    }

    /// A local directory entry, read on the leader.
    async fn local_entry(
        &self,
        parent: InodeId,
        name: &ferrum_proto::msg::name::Name,
    ) -> Result<Option<crate::records::DentryRec>, ErrorCode> {
        let name = name.clone();
        self.peers.read(self.part.id, move |kv, _| state::get_dentry(kv, parent, &name)).await
    }
}
