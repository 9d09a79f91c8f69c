//! Operation codes: which request a frame carries.
//!
//! Numbers are grouped by service in fixed ranges and are never reused, even after an operation is
//! retired, so that an old peer can never mistake a new request for an old one:
//!
//! | range    | service                                                          |
//! |----------|------------------------------------------------------------------|
//! | `0x0001` | connection handshake ([`Opcode::HELLO`])                         |
//! | `0x01xx` | Raft between replicas of a group                                 |
//! | `0x02xx` | master (node registration, partition placement, volume views)    |
//! | `0x03xx` | metanode (namespace, attributes, extent maps)                    |
//! | `0x04xx` | datanode (extent data)                                           |
//! | `0x0Fxx` | reserved for test and demo apps, which define their own constants |

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Opcode(pub u16);

macro_rules! opcodes {
    ($($name:ident = $val:literal;)*) => {
        impl Opcode {
            $(pub const $name: Opcode = Opcode($val);)*
        }

        const KNOWN: &[(Opcode, &str)] = &[$((Opcode($val), stringify!($name)),)*];
    };
}

opcodes! {
    HELLO = 0x0001;

    RAFT_APPEND = 0x0101;
    RAFT_VOTE = 0x0102;
    RAFT_SNAPSHOT = 0x0103;
    // The leader hands its leadership to the receiver: campaign now (no openraft payload).
    RAFT_ELECT = 0x0104;

    MASTER_REGISTER_NODE = 0x0201;
    MASTER_HEARTBEAT = 0x0202;
    MASTER_GET_RESOURCES = 0x0203;
    MASTER_CREATE_PARTITION = 0x0204;
    MASTER_DELETE_PARTITION = 0x0205;
    MASTER_GET_VOLUME_VIEW = 0x0206;
    MASTER_CLUSTER_STATUS = 0x0207;
    MASTER_LIST_NODES = 0x0208;
    MASTER_CREATE_VOLUME = 0x0209;
    MASTER_DELETE_VOLUME = 0x020A;
    MASTER_LIST_VOLUMES = 0x020B;
    MASTER_GET_VOLUME = 0x020C;
    MASTER_LIST_PARTITIONS = 0x020D;
    MASTER_JOIN = 0x020E;
    MASTER_PROMOTE = 0x020F;
    MASTER_SPLIT_META_PARTITION = 0x0210;
    // 0x0220-0x023F: high availability (repair, decommission).
    MASTER_CHANGE_REPLICAS = 0x0220;
    MASTER_DECOMMISSION_NODE = 0x0221;
    MASTER_REMOVE_NODE = 0x0222;
    MASTER_LIST_REPAIRS = 0x0223;
    MASTER_TRANSFER_LEADER = 0x0224;
    // 0x0240-0x024F: master group and node addresses.
    MASTER_REMOVE_MASTER = 0x0240;
    MASTER_NODE_ADDRS = 0x0241;

    META_LOOKUP = 0x0301;
    META_GET_ATTR = 0x0302;
    META_SET_ATTR = 0x0303;
    META_CREATE = 0x0304;
    META_MKDIR = 0x0305;
    META_UNLINK = 0x0306;
    META_RMDIR = 0x0307;
    META_RENAME = 0x0308;
    META_LINK = 0x0309;
    META_SYMLINK = 0x030A;
    META_READLINK = 0x030B;
    META_READ_DIR = 0x030C;
    META_GET_XATTR = 0x030D;
    META_SET_XATTR = 0x030E;
    META_LIST_XATTR = 0x030F;
    META_REMOVE_XATTR = 0x0310;
    META_STAT_FS = 0x0311;
    META_EXTENT_APPEND = 0x0312;
    META_EXTENT_LIST = 0x0313;
    META_TRUNCATE = 0x0314;
    META_EVICT = 0x0315;
    META_FREED_LIST = 0x0316;
    META_FREED_ACK = 0x0317;
    // Between metanodes (and the fsck tool): steps of operations that span partitions, inspection.
    META_TXN_STEP = 0x0318;
    META_INODE_INFO = 0x0319;
    META_SCAN = 0x031A;
    META_SYNC = 0x031B;
    META_READ_DIR_PLUS = 0x031C;

    DATA_CREATE_EXTENT = 0x0401;
    DATA_WRITE = 0x0402;
    DATA_READ = 0x0403;
    DATA_TRUNCATE = 0x0404;
    DATA_DELETE_EXTENT = 0x0405;
    DATA_PUNCH_HOLE = 0x0406;
    DATA_READ_BLOCKS = 0x0407;
    DATA_PARTITION_STATUS = 0x0408;
    DATA_STAT_EXTENT = 0x0409;
    DATA_SYNC = 0x040A;
}

impl Opcode {
    /// First opcode of the range reserved for test and demo apps (`0x0F00..=0x0FFF`).
    pub const TEST_RANGE_START: u16 = 0x0F00;

    /// Raft traffic between the replicas of a group (`0x01xx`), which the Raft store serves.
    pub fn is_raft(&self) -> bool {
        self.0 >> 8 == 0x01
    }

    /// The constant's name for opcodes defined here; `None` for unknown ones and the test range.
    pub fn name(&self) -> Option<&'static str> {
        KNOWN.iter().find(|(op, _)| op == self).map(|(_, name)| *name)
    }
}

impl fmt::Display for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{:#06x}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn numbers_and_names_are_unique() {
        let numbers: HashSet<u16> = KNOWN.iter().map(|(op, _)| op.0).collect();
        let names: HashSet<&str> = KNOWN.iter().map(|(_, n)| *n).collect();
        assert_eq!(numbers.len(), KNOWN.len());
        assert_eq!(names.len(), KNOWN.len());
    }

    #[test]
    fn each_service_stays_in_its_range() {
        for (op, name) in KNOWN {
            let range = match name.split('_').next().unwrap() {
                "HELLO" => 0x00,
                "RAFT" => 0x01,
                "MASTER" => 0x02,
                "META" => 0x03,
                "DATA" => 0x04,
                other => panic!("unexpected prefix {other}"),
            };
            assert_eq!(op.0 >> 8, range, "{name}");
        }
    }

    #[test]
    fn stable_numbers() {
        assert_eq!(Opcode::HELLO.0, 0x0001);
        assert_eq!(Opcode::RAFT_APPEND.0, 0x0101);
        assert_eq!(Opcode::RAFT_VOTE.0, 0x0102);
        assert_eq!(Opcode::RAFT_SNAPSHOT.0, 0x0103);
    }

    #[test]
    fn display_names_known_opcodes() {
        assert_eq!(Opcode::META_LOOKUP.to_string(), "META_LOOKUP");
        assert_eq!(Opcode::META_LOOKUP.name(), Some("META_LOOKUP"));
        assert_eq!(Opcode(0x0F01).name(), None);
        assert_eq!(Opcode(0x0F01).to_string(), "0x0f01");
    }
}
