//! `rename` (with `NOREPLACE` / `EXCHANGE`), decided in the target directory's partition B. When the
//! source directory lives in another partition A, its entry is first locked there (a prepare); a
//! replaced directory held elsewhere is first marked dying. The decision then changes B, and its
//! outcome commits or undoes the prepares; effects on remote inodes (ctime and `..` of the moved one,
//! the link count of a replaced file) go through the outbox.

use ferrum_proto::msg::attr::FileKind;
use ferrum_proto::msg::meta::{Cred, Rename, RenameResp, Unlinked};
use ferrum_proto::msg::name::Name;
use ferrum_proto::{msg, ErrorCode, InodeId};

use super::{classify, supply_owner, Coord, Decision, Prepared, MAX_ATTEMPTS};
use crate::cmd::{Body, Need, Outcome, PrepareWhat, RenameArgs, RenameReply};
use crate::records::Effect;
use crate::steps;

pub struct RenameReq {
    pub cred: Cred,
    pub parent: InodeId,
    pub name: Name,
    pub new_parent: InodeId,
    pub new_name: Name,
    pub flags: u32,
}

pub async fn rename(c: &Coord<'_>, r: RenameReq) -> Result<RenameResp, ErrorCode> {
    let exchange = r.flags & Rename::EXCHANGE != 0;
    let local_src = c.is_local(r.parent);
    'attempt: for attempt in 0..MAX_ATTEMPTS {
        let mut prepared: Vec<Prepared> = Vec::new();
        let mut owners = Vec::new();
        let mut dying = None;
        let target = c.local_entry(r.new_parent, &r.new_name).await?;
        let expect_target = if exchange && !local_src {
            match &target {
                Some(t) => Some(t.ino),
                None => return Err(ErrorCode::NotFound),
            }
        } else {
            None
        };

        // The source entry: read here, or locked in its own partition.
        let src = if local_src {
            c.local_entry(r.parent, &r.name).await?.map(|d| (d.ino, d.kind))
        } else {
            let route = c.route_of(r.parent)?.clone();
            let step = steps::at(steps::PREPARE_SRC, attempt);
            loop {
                let what = PrepareWhat::SrcEntry {
                    cred: r.cred.clone(),
                    parent: r.parent,
                    name: r.name.clone(),
                    exchange: if exchange { target.as_ref().map(|t| (t.ino, t.kind)) } else { None },
                    owners: owners.clone(),
                };
                match c.prepare(&route, step, what).await? {
                    Outcome::Conflict(Need::Owner(i)) => supply_owner(c, &mut owners, i).await?,
                    Outcome::Done { result: Ok(b), .. } => {
                        prepared.push(Prepared { route: route.clone(), step });
                        break Some(msg::decode::<(InodeId, FileKind)>(&b)?);
                    }
                    Outcome::Done { result: Err(e), .. } => return Err(e),
                    other => return Err(ErrorCode::Internal(format!("source prepare: {other:?}"))),
                }
            }
        };
        c.hit("after_prepare_src")?;

        // Moving a directory below itself, through ancestors in any partition.
        let moves_dir = r.parent != r.new_parent && !c.decided(attempt).await?;
        let mut below = Ok(());
        if let (Some((m, FileKind::Dir)), true) = (src, moves_dir) {
            below = c.check_not_below(m, r.new_parent).await;
        }
        if let (Some(t), true, true) = (&target, exchange, moves_dir) {
            if t.kind == FileKind::Dir && below.is_ok() {
                below = c.check_not_below(t.ino, r.parent).await;
            }
        }
        let mut next: Option<Outcome> = None;
        if let Err(e) = below {
            match c.abandon(attempt, &prepared).await? {
                None => return Err(e),
                // Decided after all by a concurrent duplicate of this request: report that.
                Some(o) => next = Some(o),
            }
        }
        loop {
            let o = match next.take() {
                Some(o) => o,
                None => {
                    let args = RenameArgs {
                        cred: r.cred.clone(),
                        src_parent: r.parent,
                        src_name: r.name.clone(),
                        dst_parent: r.new_parent,
                        dst_name: r.new_name.clone(),
                        flags: r.flags,
                        src: if local_src { None } else { src },
                        dying,
                        expect_target,
                        owners: owners.clone(),
                        routes: c.routes.clone(),
                    };
                    c.decide(attempt, Body::Rename(args)).await?
                }
            };
            match classify::<RenameReply>(o)? {
                Decision::Need(Need::Owner(i)) => supply_owner(c, &mut owners, i).await?,
                Decision::Need(Need::Dying(d)) if dying.is_none() => {
                    let route = c.route_of(d)?.clone();
                    let step = steps::at(steps::PREPARE_TARGET, attempt);
                    match c.prepare(&route, step, PrepareWhat::DirDying { ino: d }).await? {
                        Outcome::Done { result: Ok(_), .. } => {
                            prepared.push(Prepared { route, step });
                            dying = Some(d);
                            c.hit("after_prepare_target")?;
                        }
                        Outcome::Done { result: Err(e), .. } => match c.abandon(attempt, &prepared).await? {
                            None => return Err(e),
                            Some(o) => next = Some(o),
                        },
                        other => return Err(ErrorCode::Internal(format!("dying prepare: {other:?}"))),
                    }
                }
                Decision::Need(_) => match c.abandon(attempt, &prepared).await? {
                    Some(o) => next = Some(o),
                    None => continue 'attempt,
                },
                Decision::Fenced => {
                    c.finish(&prepared, false).await;
                    continue 'attempt;
                }
                Decision::Refused(e) => {
                    c.finish(&prepared, false).await;
                    return Err(e);
                }
                Decision::Taken { commit, reply } => {
                    c.hit("after_decide")?;
                    c.finish(&prepared, commit).await;
                    c.hit("after_finish")?;
                    let outs = c.drain(attempt, &reply.outbox).await?;
                    let mut nlink = reply.nlink;
                    for (item, o) in reply.outbox.iter().zip(outs) {
                        if let Effect::DecLink { .. } = item.effect {
                            nlink = Some(o.into_result::<u32>()?);
                        }
                    }
                    let replaced = match (exchange, reply.target) {
                        (false, Some((inode, _))) if commit => {
                            Some(Unlinked { inode, nlink: nlink.unwrap_or(0), evicted: false, dir: None })
                        }
                        _ => None,
                    };
                    return Ok(RenameResp { replaced, dirs: Vec::new() });
                }
            }
        }
    }
    Err(ErrorCode::Busy)
}
