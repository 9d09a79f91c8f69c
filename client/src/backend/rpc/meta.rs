//! [`MetaBackend`] over the metanodes. Routing follows `ferrum_proto::msg::meta`: calls about an inode go
//! to its partition, calls about a name to the directory's partition, `Link` and `Rename` to the
//! partition of `new_parent`. Mutations get a fresh `OpId`; those that may span partitions carry the
//! volume's meta routes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrum_proto::msg::attr::{InodeAttr, SetAttrFields};
use ferrum_proto::msg::extent::ExtentKey;
use ferrum_proto::msg::meta::{
    AttrResp, Create, Cred, Evict, ExtentAppend, ExtentList, ExtentListResp, GetAttr, GetXattr, InlineOp, Link,
    ListXattr, Lookup, Mkdir, ReadDir, ReadDirPlus, ReadDirPlusResp, ReadDirResp, Readlink, RemoveXattr, Rename,
    RenameResp, Rmdir, SetAttr, SetXattr, StatFs, Symlink, SyncPartition, Truncate, Unlink, Unlinked,
};
use ferrum_proto::msg::name::Name;
use ferrum_proto::msg::Rpc;
use ferrum_proto::{ErrorCode, InodeId, OpId, PartitionId};
use futures_util::future::try_join_all;

use super::cluster::Cluster;
use crate::backend::{BResult, MetaBackend, NewNode, VolumeUsage};

pub struct RpcMeta {
    c: Arc<Cluster>,
}

impl RpcMeta {
    pub fn new(c: Arc<Cluster>) -> RpcMeta {
        RpcMeta { c }
    }

    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.c
    }

    /// Sends `make(partition)` to every meta partition of the volume at once.
    async fn each_partition<R: Rpc + Clone>(&self, make: impl Fn(PartitionId) -> R) -> BResult<Vec<R::Response>> {
        let parts = self.c.meta_partitions();
        try_join_all(parts.iter().map(|&(partition, first)| {
            let req = make(partition);
            self.c.call_meta(first, move |_| req.clone())
        }))
        .await
    }

    /// A call that allocates an inode. When the chosen partition's inode range is used up (a split
    /// ended it), it is avoided from then on and the call is made again, as a new operation (the
    /// refusal was recorded under the first one's id, and nothing else happened), in the partition
    /// the refreshed view shows after it. That partition may still be being created: keep refreshing,
    /// with backoff; all of it within one op timeout.
    async fn allocating<R: Rpc>(
        &self,
        parent: InodeId,
        make: impl Fn(OpId, PartitionId, PartitionId) -> R,
    ) -> BResult<R::Response> {
        let deadline = self.c.deadline();
        let mut backoff = Duration::from_millis(20);
        loop {
            let op = self.c.ops.next();
            let mut chosen = None;
            let make = |partition| {
                let inode_partition = self.c.inode_partition(partition);
                chosen = Some(inode_partition);
                make(op, partition, inode_partition)
            };
            let r = self.c.call_meta_until(parent, make, deadline).await;
            let used_up = match (&r, chosen) {
                (Err(ErrorCode::InodeRangeEnd { partition, .. }), Some(c)) if *partition == c => c,
                // From a metanode that predates InodeRangeEnd.
                (Err(ErrorCode::NoSpace), Some(c)) => c,
                _ => return r,
            };
            self.c.mark_exhausted(used_up);
            if tokio::time::Instant::now() >= deadline {
                return r;
            }
            self.c.refresh_until(deadline).await?;
            if self.c.is_exhausted(self.c.inode_partition(used_up)) {
                // No partition after it in the view yet: the master is still creating it.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
        }
    }
}

impl MetaBackend for RpcMeta {
    async fn lookup(&self, parent: InodeId, name: &Name, cred: &Cred) -> BResult<InodeAttr> {
        let r = self
            .c
            .call_meta(parent, |partition| Lookup { partition, parent, name: name.clone(), cred: cred.clone() })
            .await?;
        match r.attr {
            Some(attr) => Ok(attr),
            // The child's inode lives in another partition than the directory.
            None => self.get_attr(r.inode).await,
        }
    }

    async fn get_attr(&self, inode: InodeId) -> BResult<InodeAttr> {
        Ok(self.c.call_meta(inode, |partition| GetAttr { partition, inode }).await?.attr)
    }

    async fn set_attr(&self, inode: InodeId, set: &SetAttrFields, cred: &Cred, handle: bool) -> BResult<InodeAttr> {
        let op = self.c.ops.next();
        let make = |partition| SetAttr { partition, op, inode, set: set.clone(), cred: cred.clone(), handle };
        Ok(self.c.call_meta(inode, make).await?.attr)
    }

    async fn create(&self, parent: InodeId, name: &Name, n: &NewNode, cred: &Cred) -> BResult<AttrResp> {
        let make = |op, partition, inode_partition| Create {
            partition,
            op,
            parent,
            name: name.clone(),
            kind: n.kind,
            mode: n.mode,
            rdev: n.rdev,
            cred: cred.clone(),
            inode_partition,
            routes: self.c.meta_routes(),
        };
        self.allocating(parent, make).await
    }

    async fn mkdir(&self, parent: InodeId, name: &Name, mode: u32, cred: &Cred) -> BResult<AttrResp> {
        let make = |op, partition, inode_partition| Mkdir {
            partition,
            op,
            parent,
            name: name.clone(),
            mode,
            cred: cred.clone(),
            inode_partition,
            routes: self.c.meta_routes(),
        };
        self.allocating(parent, make).await
    }

    async fn symlink(&self, parent: InodeId, name: &Name, target: &Bytes, cred: &Cred) -> BResult<AttrResp> {
        let make = |op, partition, inode_partition| Symlink {
            partition,
            op,
            parent,
            name: name.clone(),
            target: target.clone(),
            cred: cred.clone(),
            inode_partition,
            routes: self.c.meta_routes(),
        };
        self.allocating(parent, make).await
    }

    async fn link(&self, inode: InodeId, new_parent: InodeId, new_name: &Name, cred: &Cred) -> BResult<AttrResp> {
        let op = self.c.ops.next();
        let make = |partition| Link {
            partition,
            op,
            inode,
            new_parent,
            new_name: new_name.clone(),
            cred: cred.clone(),
            routes: self.c.meta_routes(),
        };
        self.c.call_meta(new_parent, make).await
    }

    async fn unlink(
        &self,
        parent: InodeId,
        name: &Name,
        cred: &Cred,
        open_here: Option<Vec<InodeId>>,
    ) -> BResult<Unlinked> {
        let op = self.c.ops.next();
        let make = |partition| Unlink {
            partition,
            op,
            parent,
            name: name.clone(),
            cred: cred.clone(),
            routes: self.c.meta_routes(),
            open_here: open_here.clone(),
        };
        self.c.call_meta(parent, make).await
    }

    async fn rmdir(&self, parent: InodeId, name: &Name, cred: &Cred) -> BResult<()> {
        let op = self.c.ops.next();
        let make = |partition| Rmdir {
            partition,
            op,
            parent,
            name: name.clone(),
            cred: cred.clone(),
            routes: self.c.meta_routes(),
        };
        self.c.call_meta(parent, make).await
    }

    async fn rename(
        &self,
        parent: InodeId,
        name: &Name,
        new_parent: InodeId,
        new_name: &Name,
        flags: u32,
        cred: &Cred,
    ) -> BResult<RenameResp> {
        let op = self.c.ops.next();
        let make = |partition| Rename {
            partition,
            op,
            parent,
            name: name.clone(),
            new_parent,
            new_name: new_name.clone(),
            flags,
            cred: cred.clone(),
            routes: self.c.meta_routes(),
        };
        self.c.call_meta(new_parent, make).await
    }

    async fn readlink(&self, inode: InodeId) -> BResult<Bytes> {
        Ok(self.c.call_meta(inode, |partition| Readlink { partition, inode }).await?.target)
    }

    async fn read_dir(&self, inode: InodeId, cursor: Option<&Name>, limit: u32) -> BResult<ReadDirResp> {
        let limit = limit.min(ReadDir::MAX_LIMIT);
        self.c.call_meta(inode, |partition| ReadDir { partition, inode, cursor: cursor.cloned(), limit }).await
    }

    async fn read_dir_plus(&self, inode: InodeId, cursor: Option<&Name>, limit: u32) -> BResult<ReadDirPlusResp> {
        let limit = limit.min(ReadDir::MAX_LIMIT);
        self.c.call_meta(inode, |partition| ReadDirPlus { partition, inode, cursor: cursor.cloned(), limit }).await
    }

    async fn get_xattr(&self, inode: InodeId, name: &Name, cred: &Cred) -> BResult<Bytes> {
        let make = |partition| GetXattr { partition, inode, name: name.clone(), cred: cred.clone() };
        Ok(self.c.call_meta(inode, make).await?.value)
    }

    async fn set_xattr(&self, inode: InodeId, name: &Name, value: &Bytes, flags: u32, cred: &Cred) -> BResult<()> {
        let op = self.c.ops.next();
        let make = |partition| SetXattr {
            partition,
            op,
            inode,
            name: name.clone(),
            value: value.clone(),
            flags,
            cred: cred.clone(),
        };
        self.c.call_meta(inode, make).await
    }

    async fn list_xattr(&self, inode: InodeId, cred: &Cred) -> BResult<Vec<Name>> {
        Ok(self.c.call_meta(inode, |partition| ListXattr { partition, inode, cred: cred.clone() }).await?.names)
    }

    async fn remove_xattr(&self, inode: InodeId, name: &Name, cred: &Cred) -> BResult<()> {
        let op = self.c.ops.next();
        let make = |partition| RemoveXattr { partition, op, inode, name: name.clone(), cred: cred.clone() };
        self.c.call_meta(inode, make).await
    }

    async fn stat_fs(&self) -> BResult<VolumeUsage> {
        let each = self.each_partition(|partition| StatFs { partition }).await?;
        Ok(each.iter().fold(VolumeUsage { free_inodes: Some(0), ..VolumeUsage::default() }, |acc, s| VolumeUsage {
            inodes: acc.inodes + s.inodes,
            bytes: acc.bytes + s.bytes,
            free_inodes: acc.free_inodes.map(|f| f.saturating_add(s.free_inodes)),
        }))
    }

    async fn sync(&self) -> BResult<()> {
        // A volume has few meta partitions (usually one): sync them all rather than track which changed.
        self.each_partition(|partition| SyncPartition { partition }).await.map(drop)
    }

    async fn extent_append(
        &self,
        inode: InodeId,
        extents: &[ExtentKey],
        inline: &InlineOp,
        cred: &Cred,
    ) -> BResult<()> {
        let op = self.c.ops.next();
        let make = |partition| ExtentAppend {
            partition,
            op,
            inode,
            extents: extents.to_vec(),
            inline: inline.clone(),
            cred: cred.clone(),
        };
        self.c.call_meta(inode, make).await
    }

    async fn extent_list(&self, inode: InodeId) -> BResult<ExtentListResp> {
        self.c.call_meta(inode, |partition| ExtentList { partition, inode }).await
    }

    async fn truncate(&self, inode: InodeId, size: u64) -> BResult<InodeAttr> {
        let op = self.c.ops.next();
        Ok(self.c.call_meta(inode, |partition| Truncate { partition, op, inode, size }).await?.attr)
    }

    async fn evict(&self, inode: InodeId) -> BResult<()> {
        let op = self.c.ops.next();
        self.c.call_meta(inode, |partition| Evict { partition, op, inode }).await
    }
}
