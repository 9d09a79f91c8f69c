//! Re-applies, when a partition opens, the log entries whose effect on the extent files may have been
//! lost: those after the index recorded in `SYNCED` up to the raftstore's applied index (see
//! `partition` for why the two can differ after a power loss).
//!
//! The raftstore never purges an entry before `sync_external` recorded an index at or past it, so these
//! entries are still in the log. Re-applying an entry whose effect did survive changes nothing.

use std::io;

use ferrum_proto::GroupId;
use ferrum_raftstore::store::{log_key, CF_LOG};
use ferrum_raftstore::types::Entry;
use ferrum_raftstore::{GroupView, Store};
use openraft::EntryPayload;
use rocksdb::{Direction, IteratorMode, ReadOptions};

use crate::app::DataApp;
use crate::cmd;

/// Re-applies the entries `from..=to` of `group`'s log to `app`'s extents; returns how many entries
/// carried commands.
pub fn replay(app: &DataApp, store: &Store, group: GroupId, from: u64, to: u64) -> io::Result<u64> {
    if from > to {
        return Ok(0);
    }
    let mut ro = ReadOptions::default();
    ro.set_iterate_upper_bound(log_key(group, to + 1).to_vec());
    let start = log_key(group, from);
    let it = store.db().iterator_cf_opt(store.cf(CF_LOG), ro, IteratorMode::From(&start, Direction::Forward));
    let view = GroupView::new(store, group);
    let (mut next, mut applied) = (from, 0);
    for item in it {
        let (_, v) = item.map_err(io::Error::other)?;
        let entry: Entry = postcard::from_bytes(&v).map_err(io::Error::other)?;
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
    if next <= to {
        tracing::warn!(%group, from, to, reached = next, "log ends before the applied index during replay");
    }
    Ok(applied)
}
