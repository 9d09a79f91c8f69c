//! Ferrum attributes in fuser's shapes.

use ferrum_proto::msg::attr::{FileKind, InodeAttr};
use fuser::{FileAttr, FileType, INodeNo};

/// What `stat` reports as `st_blksize`.
pub const BLKSIZE: u32 = 4096;

pub fn file_type(kind: FileKind) -> FileType {
    match kind {
        FileKind::File => FileType::RegularFile,
        FileKind::Dir => FileType::Directory,
        FileKind::Symlink => FileType::Symlink,
        FileKind::Fifo => FileType::NamedPipe,
        FileKind::Socket => FileType::Socket,
        FileKind::CharDev => FileType::CharDevice,
        FileKind::BlockDev => FileType::BlockDevice,
    }
}

pub fn file_attr(a: &InodeAttr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.inode.get()),
        size: a.size,
        // Thin allocation: report the size (in 512-byte units) rather than track allocated blocks.
        blocks: a.size.div_ceil(512),
        atime: a.atime.to_system_time(),
        mtime: a.mtime.to_system_time(),
        ctime: a.ctime.to_system_time(),
        crtime: a.ctime.to_system_time(),
        kind: file_type(a.kind),
        perm: (a.mode & 0o7777) as u16,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: BLKSIZE,
        flags: 0,
    }
}

#[cfg(test)]
mod tests {
    use ferrum_proto::msg::attr::Time;
    use ferrum_proto::InodeId;

    use super::*;

    #[test]
    fn converts_every_field() {
        let a = InodeAttr {
            inode: InodeId(42),
            kind: FileKind::CharDev,
            mode: 0o4755,
            nlink: 3,
            uid: 7,
            gid: 8,
            size: 1025,
            rdev: 0x0103,
            atime: Time { secs: 1, nanos: 2 },
            mtime: Time { secs: 3, nanos: 4 },
            ctime: Time { secs: 5, nanos: 6 },
        };
        let f = file_attr(&a);
        assert_eq!(
            (f.ino, f.kind, f.perm, f.nlink, f.uid, f.gid),
            (INodeNo(42), FileType::CharDevice, 0o4755, 3, 7, 8)
        );
        assert_eq!((f.size, f.blocks, f.rdev), (1025, 3, 0x0103));
        assert_eq!(Time::from(f.mtime), a.mtime);
    }
}
