//! A partition's first command writes its format record, and in the partition that holds inode 1 the
//! volume's root directory (`0o755`, owned by root; the root's parent is itself).

use ferrum_proto::msg::attr::{FileKind, Time};
use ferrum_proto::{ErrorCode, InodeId};

use crate::keys::{self, FORMAT_VERSION};
use crate::records::{decode, encode, InodeRec};
use crate::state::{self, PartitionInfo};
use crate::txn::{KvRead, Txn};

pub const ROOT_MODE: u32 = 0o755;

pub fn ensure(txn: &mut Txn<'_>, part: &PartitionInfo, now: Time) -> Result<(), ErrorCode> {
    match txn.get(keys::FORMAT)? {
        Some(v) => {
            let version: u32 = decode("format", &v)?;
            if version != FORMAT_VERSION {
                return Err(ErrorCode::Internal(format!(
                    "partition {} has format {version}, this build reads {FORMAT_VERSION}",
                    part.id
                )));
            }
            Ok(())
        }
        None => {
            txn.put(keys::FORMAT.to_vec(), encode(&FORMAT_VERSION));
            if part.holds(InodeId::ROOT) {
                let root = InodeRec {
                    kind: FileKind::Dir,
                    mode: ROOT_MODE,
                    uid: 0,
                    gid: 0,
                    size: 0,
                    rdev: 0,
                    nlink: 2,
                    atime: now,
                    mtime: now,
                    ctime: now,
                    parent: InodeId::ROOT,
                    target: None,
                    dying: None,
                };
                state::add_inode(txn, InodeId::ROOT, &root)?;
            }
            Ok(())
        }
    }
}
