//! `unlink` and `rmdir`. Unlink decides first and lowers a remote inode's link count through the
//! outbox; rmdir of a directory held elsewhere first marks it dying (checking it empty), then decides.

use ferrum_proto::msg::meta::{Cred, Unlinked};
use ferrum_proto::msg::name::Name;
use ferrum_proto::{ErrorCode, InodeId};

use super::{classify, supply_owner, Coord, Decision, Prepared, MAX_ATTEMPTS};
use crate::cmd::{Body, Need, Outcome, PrepareWhat, RmdirArgs, UnlinkArgs, UnlinkReply};
use crate::steps;

pub async fn unlink(
    c: &Coord<'_>,
    cred: Cred,
    parent: InodeId,
    name: Name,
    open_here: Option<Vec<InodeId>>,
) -> Result<Unlinked, ErrorCode> {
    let mut owners = Vec::new();
    loop {
        let args = UnlinkArgs {
            cred: cred.clone(),
            parent,
            name: name.clone(),
            owners: owners.clone(),
            routes: c.routes.clone(),
            open_here: open_here.clone(),
        };
        match classify::<UnlinkReply>(c.decide(0, Body::Unlink(args)).await?)? {
            Decision::Need(Need::Owner(i)) => supply_owner(c, &mut owners, i).await?,
            Decision::Taken { reply, .. } => {
                c.hit("after_decide")?;
                let nlink = match reply.nlink {
                    Some(n) => n,
                    None => match c.drain(0, &reply.outbox).await?.into_iter().next() {
                        Some(o) => o.into_result::<u32>()?,
                        None => 0,
                    },
                };
                return Ok(Unlinked { inode: reply.ino, nlink, evicted: reply.evicted, dir: None });
            }
            Decision::Refused(e) => return Err(e),
            Decision::Need(n) => return Err(ErrorCode::Internal(format!("unlink decision needs {n:?}"))),
            Decision::Fenced => return Err(crate::cmd::aborted()),
        }
    }
}

pub async fn rmdir(c: &Coord<'_>, cred: Cred, parent: InodeId, name: Name) -> Result<(), ErrorCode> {
    'attempt: for attempt in 0..MAX_ATTEMPTS {
        let mut owners = Vec::new();
        let mut prepared: Vec<Prepared> = Vec::new();
        let mut dying = None;
        let mut next: Option<Outcome> = None;
        loop {
            let o = match next.take() {
                Some(o) => o,
                None => {
                    let args =
                        RmdirArgs { cred: cred.clone(), parent, name: name.clone(), owners: owners.clone(), dying };
                    c.decide(attempt, Body::Rmdir(args)).await?
                }
            };
            match classify::<()>(o)? {
                Decision::Need(Need::Owner(i)) => supply_owner(c, &mut owners, i).await?,
                Decision::Need(Need::Dying(d)) if dying.is_none() => {
                    let route = c.route_of(d)?.clone();
                    let step = steps::at(steps::PREPARE_CHILD, attempt);
                    match c.prepare(&route, step, PrepareWhat::DirDying { ino: d }).await? {
                        Outcome::Done { result: Ok(_), .. } => {
                            prepared.push(Prepared { route, step });
                            dying = Some(d);
                            c.hit("after_prepare_child")?;
                        }
                        // Nothing prepared and the decision not taken: plainly refused.
                        Outcome::Done { result: Err(e), .. } => return Err(e),
                        other => return Err(ErrorCode::Internal(format!("dying prepare: {other:?}"))),
                    }
                }
                // Another directory took the name meanwhile: start over.
                Decision::Need(_) => match c.abandon(attempt, &prepared).await? {
                    Some(o) => next = Some(o),
                    None => continue 'attempt,
                },
                Decision::Taken { commit, .. } => {
                    c.hit("after_decide")?;
                    c.finish(&prepared, commit).await;
                    c.hit("after_finish")?;
                    return Ok(());
                }
                Decision::Refused(e) => {
                    c.finish(&prepared, false).await;
                    return Err(e);
                }
                Decision::Fenced => {
                    c.finish(&prepared, false).await;
                    continue 'attempt;
                }
            }
        }
    }
    Err(ErrorCode::Busy)
}
