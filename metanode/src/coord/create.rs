//! `create`/`mkdir`/`symlink`/`mknod` and `link`: prepare the inode side (a new inode, a raised link
//! count) in the inode's partition when it is not the directory's, then decide the entry.

use bytes::Bytes;
use ferrum_proto::msg::attr::{FileKind, InodeAttr};
use ferrum_proto::msg::meta::Cred;
use ferrum_proto::msg::name::Name;
use ferrum_proto::{msg, ErrorCode, InodeId, PartitionId};

use super::{classify, Coord, Decision, Prepared, MAX_ATTEMPTS};
use crate::cmd::{Body, CreateArgs, LinkArgs, NewInode, Outcome, PrepareWhat, RemoteChild};
use crate::ops::check_new;
use crate::perm;
use crate::state;
use crate::steps;

pub struct CreateReq {
    pub cred: Cred,
    pub parent: InodeId,
    pub name: Name,
    pub kind: FileKind,
    pub mode: u32,
    pub rdev: u32,
    pub target: Option<Bytes>,
    pub inode_partition: PartitionId,
}

fn unexpected(what: &str, o: impl std::fmt::Debug) -> ErrorCode {
    ErrorCode::Internal(format!("unexpected outcome of {what}: {o:?}"))
}

/// The attributes a prepare replied.
fn prepared_attr(o: Outcome) -> Result<InodeAttr, ErrorCode> {
    match o {
        Outcome::Done { result: Ok(b), .. } => msg::decode(&b),
        Outcome::Done { result: Err(e), .. } => Err(e),
        other => Err(unexpected("a prepare", other)),
    }
}

/// Checks that only the directory's partition can make, before anything is prepared elsewhere: a
/// taken name then costs no inode made and undone.
async fn precheck(
    c: &Coord<'_>,
    cred: &Cred,
    parent: InodeId,
    name: &Name,
) -> Result<crate::records::InodeRec, ErrorCode> {
    name.validate()?;
    let n = name.clone();
    let (dir, existing) = c
        .peers
        .read(c.part.id, move |kv, part| {
            part.check_holds(parent)?;
            Ok((state::live_dir(kv, parent)?, state::get_dentry(kv, parent, &n)?))
        })
        .await?;
    perm::may_modify_dir(cred, &dir)?;
    if existing.is_some() {
        return Err(ErrorCode::Exists);
    }
    Ok(dir)
}

/// Decides an entry for an inode prepared at `prepared`; undoes the prepare unless the decision commits.
async fn decide_entry(c: &Coord<'_>, attempt: u32, body: Body, prepared: Prepared) -> Result<Option<()>, ErrorCode> {
    let o = c.decide(attempt, body).await?;
    c.hit("after_decide")?;
    match classify::<Option<InodeAttr>>(o)? {
        Decision::Taken { commit, .. } => {
            c.finish(&[prepared], commit).await;
            c.hit("after_finish")?;
            Ok(Some(()))
        }
        Decision::Refused(e) => {
            c.finish(&[prepared], false).await;
            Err(e)
        }
        // Recovery gave up on this attempt (the coordinator was too slow): try again.
        Decision::Fenced => {
            c.finish(&[prepared], false).await;
            Ok(None)
        }
        Decision::Need(n) => Err(unexpected("an entry decision", n)),
    }
}

pub async fn create(c: &Coord<'_>, req: CreateReq) -> Result<InodeAttr, ErrorCode> {
    let args = |remote| CreateArgs {
        cred: req.cred.clone(),
        parent: req.parent,
        name: req.name.clone(),
        kind: req.kind,
        mode: req.mode,
        rdev: req.rdev,
        target: req.target.clone(),
        remote,
    };
    if req.inode_partition == c.part.id {
        return match classify::<Option<InodeAttr>>(c.decide(0, Body::Create(args(None))).await?)? {
            Decision::Taken { reply: Some(attr), .. } => Ok(attr),
            Decision::Refused(e) => Err(e),
            other => Err(unexpected("a local create", other.name())),
        };
    }
    // A retry must replay the same prepare even though its own entry now exists: skip the checks and
    // rebuild the prepare from the recorded state (the prepare's outcome is replayed, not re-applied).
    let dir = if c.decided(0).await? {
        c.peers.read(c.part.id, |kv, _| state::inode(kv, req.parent)).await?
    } else {
        precheck(c, &req.cred, req.parent, &req.name).await?
    };
    check_new(&req.cred, req.kind, req.target.as_ref())?;
    let new = NewInode {
        kind: req.kind,
        owner: perm::new_owner(&req.cred, &dir, req.kind, req.mode),
        rdev: req.rdev,
        target: req.target.clone(),
    };
    let route = c.route_to(req.inode_partition)?.clone();
    for attempt in 0..MAX_ATTEMPTS {
        let step = steps::at(steps::PREPARE_CHILD, attempt);
        let what = PrepareWhat::NewInode { new: new.clone(), parent: req.parent };
        let attr = prepared_attr(c.prepare(&route, step, what).await?)?;
        c.hit("after_prepare_child")?;
        let remote = RemoteChild { ino: attr.inode, kind: req.kind, partition: req.inode_partition };
        let prepared = Prepared { route: route.clone(), step };
        if decide_entry(c, attempt, Body::Create(args(Some(remote))), prepared).await?.is_some() {
            return Ok(attr);
        }
    }
    Err(ErrorCode::Busy)
}

pub async fn link(
    c: &Coord<'_>,
    cred: Cred,
    ino: InodeId,
    parent: InodeId,
    name: Name,
) -> Result<InodeAttr, ErrorCode> {
    let args = |remote| LinkArgs { cred: cred.clone(), ino, parent, name: name.clone(), remote };
    if c.is_local(ino) {
        return match classify::<Option<InodeAttr>>(c.decide(0, Body::Link(args(None))).await?)? {
            Decision::Taken { reply: Some(attr), .. } => Ok(attr),
            Decision::Refused(e) => Err(e),
            other => Err(unexpected("a local link", other.name())),
        };
    }
    if !c.decided(0).await? {
        precheck(c, &cred, parent, &name).await?;
    }
    let route = c.route_of(ino)?.clone();
    for attempt in 0..MAX_ATTEMPTS {
        let step = steps::at(steps::PREPARE_CHILD, attempt);
        let attr = prepared_attr(c.prepare(&route, step, PrepareWhat::LinkInc { ino }).await?)?;
        c.hit("after_prepare_child")?;
        let remote = RemoteChild { ino, kind: attr.kind, partition: route.partition };
        let prepared = Prepared { route: route.clone(), step };
        if decide_entry(c, attempt, Body::Link(args(Some(remote))), prepared).await?.is_some() {
            return Ok(attr);
        }
    }
    Err(ErrorCode::Busy)
}
