//! Hosting partitions on request (`MASTER_CREATE_PARTITION`, `MASTER_DELETE_PARTITION`), as the master
//! (or a test standing in for it) asks every member of a new partition.
//!
//! The `ferrum-datanode` binary runs under the raftstore's node agent, which routes these opcodes
//! itself. This is for a [`crate::DataService`] serving on its own (the in-process cluster tests). Either
//! way a removed partition's extent files are deleted (`App::on_remove`).

use ferrum_proto::msg::master::{CreatePartition, DeletePartition};
use ferrum_proto::msg::topology::PartitionKind;
use ferrum_proto::rpc::{Incoming, Outgoing};
use ferrum_proto::{ErrorCode, GroupId, Opcode};
use ferrum_raftstore::MultiRaft;

use crate::context::{DataContext, KIND};

pub async fn handle(raft: &MultiRaft, ctx: &DataContext, req: Incoming) -> Result<Outgoing, ErrorCode> {
    match req.opcode {
        Opcode::MASTER_CREATE_PARTITION => {
            let cp: CreatePartition = req.decode()?;
            if cp.kind != PartitionKind::Data {
                return Err(ErrorCode::InvalidArgument(format!("a datanode hosts data partitions, not {:?}", cp.kind)));
            }
            raft.create_partition_group(&cp, KIND).await?;
            Ok(Outgoing::msg(&()))
        }
        Opcode::MASTER_DELETE_PARTITION => {
            let d: DeletePartition = req.decode()?;
            raft.remove_group(GroupId::from(d.partition)).await?;
            ctx.remove(d.partition).map_err(|e| ErrorCode::Internal(e.to_string()))?;
            Ok(Outgoing::msg(&()))
        }
        other => Err(ErrorCode::UnknownOpcode(other.0)),
    }
}
