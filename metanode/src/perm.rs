//! Permission checks, as a local POSIX filesystem makes them. Root (uid 0) passes the permission-bit
//! checks (`CAP_DAC_OVERRIDE`) and the ownership checks (`CAP_FOWNER`, `CAP_CHOWN`, `CAP_FSETID`).

use ferrum_proto::msg::attr::FileKind;
use ferrum_proto::msg::meta::Cred;
use ferrum_proto::ErrorCode;

use crate::records::{InodeRec, S_ISGID, S_ISUID, S_ISVTX, S_IXGRP};

pub const R: u32 = 4;
pub const W: u32 = 2;
pub const X: u32 = 1;

/// The owner, group and mode bits that decide access to an inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl From<&InodeRec> for Owner {
    fn from(r: &InodeRec) -> Owner {
        Owner { uid: r.uid, gid: r.gid, mode: r.mode }
    }
}

/// `want` is a mask of [`R`], [`W`], [`X`]; `PermissionDenied` unless every wanted bit is granted by the
/// class (owner, group, others) the caller falls in.
pub fn access(cred: &Cred, o: Owner, want: u32) -> Result<(), ErrorCode> {
    if cred.is_root() {
        return Ok(());
    }
    let bits = if cred.uid == o.uid {
        (o.mode >> 6) & 7
    } else if cred.in_group(o.gid) {
        (o.mode >> 3) & 7
    } else {
        o.mode & 7
    };
    if bits & want == want {
        Ok(())
    } else {
        Err(ErrorCode::PermissionDenied)
    }
}

/// Write and search permission on a directory whose entries change.
pub fn may_modify_dir(cred: &Cred, dir: &InodeRec) -> Result<(), ErrorCode> {
    access(cred, dir.into(), W | X)
}

/// In a sticky directory, only the owner of the entry's inode, the owner of the directory, or root may
/// remove or rename the entry.
pub fn check_sticky(cred: &Cred, dir: &InodeRec, victim_uid: u32) -> Result<(), ErrorCode> {
    if dir.mode & S_ISVTX == 0 || cred.is_root() || cred.uid == dir.uid || cred.uid == victim_uid {
        Ok(())
    } else {
        Err(ErrorCode::NotPermitted)
    }
}

/// Whether [`check_sticky`] needs to know the victim's owner at all.
pub fn sticky_needs_owner(cred: &Cred, dir: &InodeRec) -> bool {
    dir.mode & S_ISVTX != 0 && !cred.is_root() && cred.uid != dir.uid
}

pub fn is_owner(cred: &Cred, uid: u32) -> bool {
    cred.is_root() || cred.uid == uid
}

/// Owner, group and mode of a new inode: owned by the caller; in a setgid directory it takes the
/// directory's group, and a new directory inherits setgid. A non-member (non-root) creating a file with
/// setgid for a group it is not in loses the bit, as in Linux `inode_init_owner`.
pub fn new_owner(cred: &Cred, parent: &InodeRec, kind: FileKind, mode: u32) -> Owner {
    let mut mode = mode & crate::records::MODE_MASK;
    let gid = if parent.mode & S_ISGID != 0 { parent.gid } else { cred.gid };
    if kind == FileKind::Dir {
        if parent.mode & S_ISGID != 0 {
            mode |= S_ISGID;
        }
    } else if mode & S_ISGID != 0 && !cred.is_root() && !cred.in_group(gid) {
        mode &= !S_ISGID;
    }
    Owner { uid: cred.uid, gid, mode }
}

/// The mode after a change of owner or data by `cred`: setuid goes, and setgid when group-executable
/// (Linux `should_remove_suid`). Only regular files are affected.
pub fn kill_setid(kind: FileKind, mode: u32) -> u32 {
    if kind != FileKind::File {
        return mode;
    }
    let mut m = mode & !S_ISUID;
    if m & (S_ISGID | S_IXGRP) == S_ISGID | S_IXGRP {
        m &= !S_ISGID;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(uid: u32, gid: u32, mode: u32) -> Owner {
        Owner { uid, gid, mode }
    }

    #[test]
    fn the_class_decides_not_the_union() {
        let user = Cred { uid: 10, gid: 20, groups: vec![30] };
        assert!(access(&user, o(10, 99, 0o700), R | W | X).is_ok());
        // The owner is judged by the owner bits even if the group bits would allow.
        assert_eq!(access(&user, o(10, 20, 0o070), R), Err(ErrorCode::PermissionDenied));
        assert!(access(&user, o(1, 30, 0o050), R | X).is_ok());
        assert_eq!(access(&user, o(1, 30, 0o050), W), Err(ErrorCode::PermissionDenied));
        assert!(access(&user, o(1, 2, 0o004), R).is_ok());
        assert!(access(&Cred::root(), o(1, 2, 0o000), R | W | X).is_ok());
    }

    #[test]
    fn new_inodes_in_setgid_directories() {
        let parent = |mode| InodeRec {
            kind: FileKind::Dir,
            mode,
            uid: 1,
            gid: 77,
            size: 0,
            rdev: 0,
            nlink: 2,
            atime: Default::default(),
            mtime: Default::default(),
            ctime: Default::default(),
            parent: ferrum_proto::InodeId(1),
            target: None,
            dying: None,
        };
        let user = Cred { uid: 10, gid: 20, groups: vec![] };
        assert_eq!(new_owner(&user, &parent(0o755), FileKind::File, 0o644), o(10, 20, 0o644));
        assert_eq!(new_owner(&user, &parent(0o2775), FileKind::File, 0o644), o(10, 77, 0o644));
        assert_eq!(new_owner(&user, &parent(0o2775), FileKind::Dir, 0o755), o(10, 77, 0o2755));
        // Not a member of the inherited group: setgid on the new file is dropped.
        assert_eq!(new_owner(&user, &parent(0o2775), FileKind::File, 0o2755), o(10, 77, 0o755));
    }

    #[test]
    fn setid_bits_on_change() {
        assert_eq!(kill_setid(FileKind::File, 0o6755), 0o755);
        // setgid without group-exec is mandatory locking, not privilege: kept.
        assert_eq!(kill_setid(FileKind::File, 0o6745), 0o2745);
        assert_eq!(kill_setid(FileKind::Dir, 0o2755), 0o2755);
    }
}
