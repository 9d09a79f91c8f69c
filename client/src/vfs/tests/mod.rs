//! The client library over the in-memory backends: every VFS behaviour without a cluster or a kernel.

mod inline;
mod io;
mod namespace;
mod statahead;

use ferrum_proto::msg::meta::Cred;
use ferrum_proto::msg::name::Name;
use ferrum_proto::InodeId;

use super::{Vfs, VfsConfig};
use crate::backend::memory::{MemData, MemMeta};
use crate::errno;
use crate::error::FsError;

type MemVfs = Vfs<MemMeta, MemData>;

fn root() -> Cred {
    Cred::root()
}

fn name(s: &str) -> Name {
    Name::from(s)
}

/// A VFS over fresh in-memory backends (returned too, to inspect and to share with a second VFS).
fn vfs_with(cfg: VfsConfig) -> (MemVfs, MemMeta, MemData) {
    let (meta, data) = (MemMeta::new(), MemData::new(1 << 40));
    (Vfs::new(meta.clone(), data.clone(), cfg), meta, data)
}

fn vfs() -> (MemVfs, MemMeta, MemData) {
    vfs_with(VfsConfig::default())
}

/// Another client of the same volume.
fn second_client(meta: &MemMeta, data: &MemData) -> MemVfs {
    Vfs::new(meta.clone(), data.clone(), VfsConfig::default())
}

#[track_caller]
fn assert_errno<T: std::fmt::Debug>(r: Result<T, FsError>, want: i32) {
    match r {
        Err(e) => assert_eq!(errno::errno(&e), want, "{e:?}"),
        Ok(v) => panic!("expected errno {want}, got Ok({v:?})"),
    }
}

/// Creates `path` (one level under the root) and returns its inode and an open handle.
async fn create(v: &MemVfs, file: &str) -> (InodeId, u64) {
    let (attr, fh) = v.create(InodeId::ROOT, &name(file), 0o644, libc::O_RDWR, &root()).await.unwrap();
    (attr.inode, fh)
}
