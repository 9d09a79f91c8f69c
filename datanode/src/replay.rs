//! Re-applies, when a partition opens, the log entries whose effect on the extent files may have been
//! lost: those after the index recorded in `SYNCED` up to the raftstore's applied index (see
//! `partition` for why the two can differ after a power loss).
//!
//! The raftstore never purges an entry before `sync_external` recorded an index at or past it, so these
//! entries are still in the log. Re-applying an entry whose effect did survive changes nothing.

use std::io;

use ferrum_proto::GroupId;
use ferrum_raftstore::log_store::read_entries;
use ferrum_raftstore::{GroupView, Store};
use openraft::EntryPayload;

use crate::app::DataApp;
use crate::cmd;

/// Entries read from the log at a time (each up to a write's size).
const CHUNK: u64 = 64;

/// Re-applies the entries `from..=to` of `group`'s log to `app`'s extents; returns how many entries
/// carried commands.
pub fn replay(app: &DataApp, store: &Store, group: GroupId, from: u64, to: u64) -> io::Result<u64> {
    if from > to {
        return Ok(0);
    }
    let view = GroupView::new(store, group);
    let (mut next, mut applied) = (from, 0);
    let mut chunk_from = from;
    while chunk_from <= to {
        let chunk_to = to.min(chunk_from + CHUNK - 1);
        let entries = read_entries(store, group, chunk_from, chunk_to + 1).map_err(io::Error::other)?;
        chunk_from = chunk_to + 1;
        for entry in entries {
            let index = entry.log_id.index;
            if index != next {
                tracing::warn!(%group, expected = next, found = index, "log entries missing during replay");
            }
            next = index + 1;
            if let EntryPayload::Normal(c) = &entry.payload {
                // Same decisions as `apply`, against the keyspace as of the applied index.
                if let Ok(c) = cmd::decode(&c.0) {
                    app.run(&view, None, index, &c);
                    applied += 1;
                }
            }
            app.partition().note_applied(index);
        }
    }
    if next <= to {
        tracing::warn!(%group, from, to, reached = next, "log ends before the applied index during replay");
    }
    Ok(applied)
}
