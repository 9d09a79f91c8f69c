//! The commands a meta partition's Raft log carries, and what applying one returns.
//!
//! A command is applied identically on every replica, so everything that is not a function of the
//! partition's state travels in it: the leader's clock (`now`), the caller's credentials, and for the
//! steps of cross-partition operations the routes to the other partitions.

use bytes::Bytes;
use ferrum_proto::msg::attr::{FileKind, SetAttrFields, Time};
use ferrum_proto::msg::extent::ExtentKey;
use ferrum_proto::msg::meta::{Cred, InlineOp, MetaRoute};
use ferrum_proto::msg::name::Name;
use ferrum_proto::{ErrorCode, InodeId, OpId, PartitionId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::perm::Owner;
use crate::records::{Effect, OutboxItem};

/// Names one step of one logical mutation: the key of its recorded outcome (see [`crate::dedup`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OpKey {
    pub op: OpId,
    pub step: u32,
}

impl OpKey {
    pub const fn new(op: OpId, step: u32) -> Self {
        OpKey { op, step }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaCmd {
    /// `None` for commands that are idempotent by themselves (initialisation, repairs).
    pub op: Option<OpKey>,
    pub now: Time,
    pub body: Body,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// Creates the partition's format record (and the root directory in the partition holding inode 1).
    /// Every command does this first when it is missing; this one does nothing else.
    Init,
    SetAttr {
        ino: InodeId,
        set: SetAttrFields,
        cred: Cred,
        handle: bool,
    },
    SetXattr {
        ino: InodeId,
        name: Name,
        value: Bytes,
        flags: u32,
        cred: Cred,
    },
    RemoveXattr {
        ino: InodeId,
        name: Name,
        cred: Cred,
    },
    ExtentAppend {
        ino: InodeId,
        extents: Vec<ExtentKey>,
        inline: InlineOp,
        cred: Cred,
    },
    Evict {
        ino: InodeId,
    },
    FreedAck {
        upto: u64,
    },
    // --- Decisions, at the partition of the directory whose entries change.
    Create(CreateArgs),
    Link(LinkArgs),
    Unlink(UnlinkArgs),
    Rmdir(RmdirArgs),
    Rename(RenameArgs),
    // --- Steps of operations spanning partitions (see `coord`).
    Prepare(PrepareArgs),
    /// Commits or undoes the prepared record `(op, prepare_step)`; nothing if already finished.
    Finish {
        prepare_step: u32,
        commit: bool,
    },
    /// Applied under a decision's own key: returns its recorded outcome, or, when it was never taken,
    /// records it as fenced so that it never will be.
    Resolve,
    Effect(Effect),
    /// The outbox of decision `(op, decide_step)` is drained.
    OutboxDone {
        decide_step: u32,
    },
    Repair(Repair),
    /// Forgets up to `limit` recorded outcomes of a class older than its TTL (see `dedup::gc`); replies
    /// `(forgotten, more)`.
    Gc {
        class: crate::dedup::Class,
        ttl_secs: u64,
        limit: u32,
    },
    /// The master splits the partition: end its inode range `step` numbers past the next free one
    /// (once; later ones answer the end chosen then). Replies the end (`InodeId`).
    EndRange {
        step: u64,
    },
}

impl Body {
    /// Steps of cross-partition operations: recorded for the protocol TTL, and accepted however old
    /// their request id is (they are idempotent through their own record, kept that long).
    pub fn is_protocol(&self) -> bool {
        matches!(
            self,
            Body::Prepare(_) | Body::Finish { .. } | Body::Resolve | Body::Effect(_) | Body::OutboxDone { .. }
        )
    }
}

/// An inode created elsewhere (prepared in `partition`) that this decision links.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteChild {
    pub ino: InodeId,
    pub kind: FileKind,
    pub partition: PartitionId,
}

/// What a new inode looks like (computed from the parent directory and the caller).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewInode {
    pub kind: FileKind,
    pub owner: Owner,
    pub rdev: u32,
    pub target: Option<Bytes>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateArgs {
    pub cred: Cred,
    pub parent: InodeId,
    pub name: Name,
    pub kind: FileKind,
    pub mode: u32,
    pub rdev: u32,
    pub target: Option<Bytes>,
    pub remote: Option<RemoteChild>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkArgs {
    pub cred: Cred,
    pub ino: InodeId,
    pub parent: InodeId,
    pub name: Name,
    pub remote: Option<RemoteChild>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnlinkArgs {
    pub cred: Cred,
    pub parent: InodeId,
    pub name: Name,
    /// Owners of inodes in other partitions, for the sticky-directory check.
    pub owners: Vec<(InodeId, Owner)>,
    pub routes: Vec<MetaRoute>,
    /// See [`ferrum_proto::msg::meta::Unlink::open_here`].
    pub open_here: Option<Vec<InodeId>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RmdirArgs {
    pub cred: Cred,
    pub parent: InodeId,
    pub name: Name,
    pub owners: Vec<(InodeId, Owner)>,
    /// The child directory, when it lives elsewhere and was prepared dying by this operation.
    pub dying: Option<InodeId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenameArgs {
    pub cred: Cred,
    pub src_parent: InodeId,
    pub src_name: Name,
    pub dst_parent: InodeId,
    pub dst_name: Name,
    pub flags: u32,
    /// The source entry, when its directory lives elsewhere and was prepared (locked) by this operation.
    pub src: Option<(InodeId, FileKind)>,
    /// The replaced target directory, when it lives elsewhere and was prepared dying.
    pub dying: Option<InodeId>,
    /// For an exchange whose source was prepared elsewhere: the target the source was prepared to
    /// receive (the decision refuses with `Need::Retry` if the target changed since).
    pub expect_target: Option<InodeId>,
    pub owners: Vec<(InodeId, Owner)>,
    pub routes: Vec<MetaRoute>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepareArgs {
    pub decider: PartitionId,
    pub decide_step: u32,
    pub route: Option<MetaRoute>,
    pub what: PrepareWhat,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PrepareWhat {
    /// Allocate and create an inode (a directory's parent is `parent`). Replies its attributes.
    NewInode { new: NewInode, parent: InodeId },
    /// Raise the link count for a new hard link. Replies the attributes.
    LinkInc { ino: InodeId },
    /// Mark an empty directory dying. Replies `()`.
    DirDying { ino: InodeId },
    /// Lock a rename's source entry. Replies `(InodeId, FileKind)` of the entry.
    SrcEntry {
        cred: Cred,
        parent: InodeId,
        name: Name,
        exchange: Option<(InodeId, FileKind)>,
        owners: Vec<(InodeId, Owner)>,
    },
}

/// Corrections made by fsck once it found an inconsistency; each re-checks its premise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Repair {
    /// Remove an entry whose inode does not exist.
    RemoveDentry { parent: InodeId, name: Name, expect: InodeId },
    /// Set a link count (at 0 the inode becomes an orphan; a directory is deleted if empty).
    SetNlink { ino: InodeId, nlink: u32 },
    /// Set a directory's parent.
    SetParent { ino: InodeId, parent: InodeId },
}

/// What a decision or a prepare needs to know before it can go ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Need {
    /// Owner and mode of an inode in another partition (sticky directories, moving a directory).
    Owner(InodeId),
    /// This directory (in another partition) must first be prepared dying by this operation.
    Dying(InodeId),
    /// What was prepared no longer matches (e.g. the target of an exchange changed): abandon this
    /// attempt and prepare again.
    Retry,
}

/// The reply of every applied command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Applied (or refused with an error) and recorded under the command's [`OpKey`]. `commit` says
    /// whether prepared records depending on this decision are to be committed; `result` holds the
    /// postcard-encoded reply.
    Done { commit: bool, result: Result<Bytes, ErrorCode> },
    /// The decision was fenced by recovery: it is never taken.
    Fenced,
    /// Not applied and not recorded: the proposer must first provide what is needed.
    Conflict(Need),
}

impl Outcome {
    pub fn error(e: ErrorCode) -> Outcome {
        Outcome::Done { commit: false, result: Err(e) }
    }

    /// The typed reply of a `Done`; `Fenced` and `Conflict` become `Unavailable` (callers that handle
    /// them match on the outcome first).
    pub fn into_result<T: DeserializeOwned>(self) -> Result<T, ErrorCode> {
        match self {
            Outcome::Done { result, .. } => ferrum_proto::msg::decode(&result?),
            Outcome::Fenced => Err(aborted()),
            Outcome::Conflict(n) => Err(ErrorCode::Unavailable(format!("unresolved conflict: {n:?}"))),
        }
    }
}

/// The error of an operation whose decision recovery fenced: nothing happened.
pub fn aborted() -> ErrorCode {
    ErrorCode::Unavailable("operation aborted by recovery; retry with a new request id".into())
}

/// The reply of an `Unlink` decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnlinkReply {
    pub ino: InodeId,
    /// Known when the inode is local; else the `DecLink` effect in `outbox` tells.
    pub nlink: Option<u32>,
    pub outbox: Vec<OutboxItem>,
    /// The inode lost its last link and was deleted in the same step (see `UnlinkArgs::open_here`).
    pub evicted: bool,
}

/// The reply of a `Rename` decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenameReply {
    /// The inode the target name pointed to before, and its kind (also for an exchange).
    pub target: Option<(InodeId, FileKind)>,
    /// The replaced file's link count when it is local.
    pub nlink: Option<u32>,
    pub outbox: Vec<OutboxItem>,
}
