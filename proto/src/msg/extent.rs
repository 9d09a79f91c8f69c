//! Where a piece of a file's data lives.

use serde::{Deserialize, Serialize};

use crate::ids::{ExtentId, PartitionId};

/// `len` bytes of a file starting at `file_offset` are stored in `extent` of data partition `partition`,
/// starting at `extent_offset`. An inode's data is the list of its extent keys; later keys win where
/// they overlap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExtentKey {
    pub file_offset: u64,
    pub partition: PartitionId,
    pub extent: ExtentId,
    pub extent_offset: u64,
    pub len: u64,
}

impl ExtentKey {
    /// The file offset just past this piece.
    pub fn file_end(&self) -> u64 {
        self.file_offset + self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_and_round_trip() {
        let k = ExtentKey {
            file_offset: 4096,
            partition: PartitionId(3),
            extent: ExtentId(17),
            extent_offset: 0,
            len: 100,
        };
        assert_eq!(k.file_end(), 4196);
        assert_eq!(crate::msg::decode::<ExtentKey>(&crate::msg::encode(&k)).unwrap(), k);
    }
}
