//! The Raft state machine of a meta partition: decode the command, apply it over the group's
//! keyspace (see [`crate::ops`]), commit its writes with the applied index.

use std::sync::Arc;

use bytes::Bytes;
use ferrum_proto::msg::master::CreatePartition;
use ferrum_proto::msg::topology::{InodeRange, PartitionKind, Replica};
use ferrum_proto::{msg, ErrorCode, GroupId, InodeId, PartitionId, VolumeId};
use ferrum_raftstore::{App, AppFactory, GroupBatch, GroupDesc, GroupView, Usage};

use crate::cmd::{MetaCmd, Outcome};
use crate::state::{self, PartitionInfo};
use crate::txn::Txn;

/// `GroupDesc::kind` of meta partitions.
pub const KIND: &str = "meta";

pub struct MetaApp {
    part: PartitionInfo,
}

impl MetaApp {
    pub fn new(part: PartitionInfo) -> MetaApp {
        MetaApp { part }
    }
}

impl App for MetaApp {
    /// A log entry is a batch of commands (see [`crate::batch`]), applied in order, each atomically:
    /// each runs in its own transaction over the batch's, so a refused command leaves no trace and the
    /// next one sees what the previous ones wrote.
    fn apply(&self, view: &GroupView<'_>, batch: &mut GroupBatch<'_>, _index: u64, cmd: &[u8]) -> Bytes {
        let outcomes: Vec<Outcome> = match msg::decode::<Vec<MetaCmd>>(cmd) {
            Ok(cmds) => {
                let mut txn = Txn::new(view);
                let mut outcomes = Vec::with_capacity(cmds.len());
                for cmd in cmds {
                    let (outcome, writes) = {
                        let mut one = Txn::new(&txn);
                        let outcome = crate::ops::apply(&mut one, &self.part, cmd);
                        (outcome, one.into_writes())
                    };
                    txn.absorb(writes);
                    outcomes.push(outcome);
                }
                txn.commit(batch);
                outcomes
            }
            // Proposed by a buggy peer: every replica refuses it alike.
            Err(e) => vec![Outcome::error(e)],
        };
        msg::encode(&outcomes)
    }

    /// `read_only` says the inode range was ended by a split: the master then completes the split
    /// (creates the partition that follows) even if it restarted since asking for it.
    fn usage(&self, view: &GroupView<'_>) -> Usage {
        match (state::usage(view), state::split_end(view)) {
            (Ok(u), Ok(end)) => Usage { used_bytes: u.bytes, items: u.inodes, read_only: end.is_some() },
            _ => Usage::default(),
        }
    }
}

/// What a meta group's description says: its partition id and inode range.
pub fn partition_info(group: GroupId, desc: &GroupDesc) -> Result<PartitionInfo, ErrorCode> {
    if desc.kind != KIND {
        return Err(ErrorCode::InvalidArgument(format!(
            "group {group} is a {:?} group, not a meta partition",
            desc.kind
        )));
    }
    let cp: CreatePartition = msg::decode(&desc.params)?;
    let range = cp
        .inodes
        .ok_or_else(|| ErrorCode::InvalidArgument(format!("meta partition {} has no inode range", cp.partition)))?;
    Ok(PartitionInfo::described(cp.partition, range))
}

/// The [`AppFactory`] of a metanode. A group whose description cannot be read gets an empty inode
/// range, so that it refuses every request instead of taking the process down.
pub fn meta_app_factory() -> AppFactory {
    Arc::new(|group, desc| {
        let part = partition_info(group, desc).unwrap_or_else(|e| {
            tracing::error!(%group, "cannot read the meta partition's description: {e}");
            PartitionInfo::described(PartitionId(group.get()), InodeRange { start: InodeId(0), end: InodeId(0) })
        });
        Arc::new(MetaApp::new(part)) as Arc<dyn App>
    })
}

/// The group description the node agent stores for a meta partition (`CreatePartition`, postcard).
pub fn partition_desc(partition: PartitionId, volume: VolumeId, range: InodeRange, members: Vec<Replica>) -> GroupDesc {
    let cp = CreatePartition { partition, kind: PartitionKind::Meta, volume, members, inodes: Some(range) };
    GroupDesc { kind: KIND.into(), params: msg::encode(&cp).to_vec() }
}
