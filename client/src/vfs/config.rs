//! Tunables of the client library; the defaults are what `ferrum mount` uses.

use std::time::Duration;

/// Two pages: most configuration files, scripts and source files, far below a metanode's budget.
pub const DEFAULT_INLINE_MAX: usize = 8192;

#[derive(Clone, Debug)]
pub struct VfsConfig {
    /// How long the kernel (and this client) may trust an inode's attributes.
    pub attr_ttl: Duration,
    /// How long the kernel may trust a name → inode mapping.
    pub entry_ttl: Duration,
    /// Buffered bytes of one file that start a background flush. Large enough that a stream of small
    /// writes leaves as few, large extent writes; small enough to bound memory per open file.
    pub flush_threshold: usize,
    /// Largest single datanode write or read; bigger ranges are split and sent in parallel.
    pub io_chunk: usize,
    /// Datanode calls one flush or read keeps in flight.
    pub io_concurrency: usize,
    /// Datanode writes one flush keeps in flight when they are small (see `flush::writes_in_flight`):
    /// never more bytes than `io_concurrency` full chunks, never more calls than this.
    pub io_max_in_flight: usize,
    /// Size at which a file's append extent is closed and a new one created.
    pub max_extent_size: u64,
    /// Read-ahead unit; also the granularity of the read-ahead cache.
    pub readahead_block: u64,
    /// How far ahead a sequential reader is served (0 turns read-ahead off).
    pub readahead_max: u64,
    /// Entries fetched per directory page.
    pub readdir_page: u32,
    /// Attributes kept by the client-side attribute cache.
    pub attr_cache_capacity: usize,
    /// How long a write-back keeps trying after a transient failure (no leader, no majority, a
    /// timeout) before it gives up on the buffered bytes and reports the error: the mount's op
    /// timeout, the same bound every call to the cluster has.
    pub op_timeout: Duration,
    /// Files up to this many bytes keep their data inline, with the inode on the metanode (at most
    /// `MAX_INLINE`; 0 turns it off): writing, reading and deleting them touches no datanode.
    pub inline_max: usize,
}

impl Default for VfsConfig {
    fn default() -> Self {
        VfsConfig {
            attr_ttl: Duration::from_secs(1),
            entry_ttl: Duration::from_secs(1),
            flush_threshold: 8 << 20,
            // Each write is one Raft entry on the data partition: 1 MiB keeps entries small enough to
            // interleave with heartbeats, and 16 in flight keep the pipe full.
            io_chunk: 1 << 20,
            io_concurrency: 16,
            io_max_in_flight: 128,
            max_extent_size: 128 << 20,
            readahead_block: 1 << 20,
            readahead_max: 8 << 20,
            readdir_page: 1024,
            attr_cache_capacity: 65_536,
            op_timeout: Duration::from_secs(60),
            inline_max: DEFAULT_INLINE_MAX,
        }
    }
}
