//! Inode attributes as the metanode reports them and the client changes them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::ids::InodeId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDev,
    BlockDev,
}

/// A point in time as seconds and nanoseconds since the Unix epoch (negative before it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Time {
    pub secs: i64,
    pub nanos: u32,
}

impl Time {
    pub fn now() -> Time {
        Time::from(SystemTime::now())
    }

    pub fn to_system_time(self) -> SystemTime {
        if self.secs >= 0 {
            UNIX_EPOCH + Duration::new(self.secs as u64, self.nanos)
        } else {
            UNIX_EPOCH - Duration::from_secs(self.secs.unsigned_abs()) + Duration::from_nanos(self.nanos.into())
        }
    }
}

impl From<SystemTime> for Time {
    fn from(t: SystemTime) -> Time {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Time { secs: d.as_secs() as i64, nanos: d.subsec_nanos() },
            Err(e) => {
                // Before the epoch: round the seconds down so that nanos stays in 0..1e9.
                let d = e.duration();
                let (secs, nanos) = (d.as_secs() as i64, d.subsec_nanos());
                if nanos == 0 {
                    Time { secs: -secs, nanos: 0 }
                } else {
                    Time { secs: -secs - 1, nanos: 1_000_000_000 - nanos }
                }
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InodeAttr {
    pub inode: InodeId,
    pub kind: FileKind,
    /// Permission bits including setuid, setgid and sticky (`0o7777`); the type is in `kind`.
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Device number for `CharDev`/`BlockDev`, else 0.
    pub rdev: u32,
    pub atime: Time,
    pub mtime: Time,
    pub ctime: Time,
}

/// A timestamp to set: a given time, or the server's clock when it applies the change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetTime {
    Now,
    At(Time),
}

/// The attributes a `SetAttr` changes; `None` leaves one as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAttrFields {
    /// Permission bits (`0o7777`); the file type cannot change.
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub atime: Option<SetTime>,
    pub mtime: Option<SetTime>,
    /// New size of a regular file: the extents past it are dropped (freed), a larger size leaves a hole.
    pub size: Option<u64>,
    /// ctime to record instead of the server's clock (FUSE writeback caching sends the kernel's); owner
    /// or root only.
    pub ctime: Option<Time>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_converts_both_ways() {
        for t in [
            Time { secs: 0, nanos: 0 },
            Time { secs: 1_700_000_000, nanos: 123_456_789 },
            Time { secs: -1, nanos: 500_000_000 },
            Time { secs: -10, nanos: 0 },
        ] {
            assert_eq!(Time::from(t.to_system_time()), t);
        }
        let just_before = UNIX_EPOCH - Duration::from_nanos(1);
        assert_eq!(Time::from(just_before), Time { secs: -1, nanos: 999_999_999 });
    }

    #[test]
    fn now_is_after_2020() {
        assert!(Time::now().secs > 1_577_836_800);
    }
}
