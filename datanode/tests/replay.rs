//! Opening a partition re-applies the log entries after the last recorded sync: what a power loss
//! takes from the page cache (extent writes the raftstore had already counted as applied) comes back
//! from the fsynced Raft log.

use bytes::Bytes;
use ferrum_datanode::cmd::{self, DataCmd};
use ferrum_datanode::{DataApp, DataConfig, DataContext, DataMetrics};
use ferrum_proto::{ClientId, ExtentId, GroupId, OpId, RequestId};
use ferrum_raftstore::log_store::Stored;
use ferrum_raftstore::store::{encode, log_key, tag, CF_LOG};
use ferrum_raftstore::types::{Entry, LogId};
use ferrum_raftstore::{Cmd, Store};
use openraft::{CommittedLeaderId, EntryPayload};

const GROUP: GroupId = GroupId(7);

fn log_id(index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(1, 1), index)
}

/// Appends commands to the group's log as the raftstore would, and marks them all applied.
fn append_applied(store: &Store, cmds: &[Bytes], first: u64) -> u64 {
    let mut wb = rocksdb::WriteBatch::default();
    let mut index = first;
    for c in cmds {
        let e = Entry { log_id: log_id(index), payload: EntryPayload::Normal(Cmd(c.clone())) };
        wb.put_cf(store.cf(CF_LOG), log_key(GROUP, index), encode(&Stored::Entry(e)));
        index += 1;
    }
    store.meta_put(&mut wb, GROUP, tag::APPLIED, &Some(log_id(index - 1)));
    store.write_sync(wb).unwrap();
    index - 1
}

fn op(n: u64) -> OpId {
    OpId::new(ClientId(1), RequestId(n))
}

fn read_all(app: &DataApp, e: ExtentId) -> Vec<u8> {
    let ext = app.partition().extent(e).expect("extent exists");
    match ext.read(0, ext.size()).unwrap() {
        ferrum_datanode::extent::ReadResult::Data(b) => b.to_vec(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn entries_after_the_last_sync_are_reapplied_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let ctx = DataContext::new(dir.path().to_path_buf(), store.clone(), DataMetrics::default(), DataConfig::default());
    // Index 1 creates extent 1; then writes, an overwrite, and a retry of the first write (which must
    // stay a no-op when replayed, as it was when first applied).
    let e = ExtentId(1);
    let w = |n: u64, off: u64, d: &'static [u8]| {
        cmd::encode(&DataCmd::Write { op: op(n), extent: e, offset: off, data: d })
    };
    let cmds = vec![
        cmd::encode(&DataCmd::Create { op: op(1) }),
        w(2, 0, b"hello world"),
        w(3, 6, b"WORLD"),
        w(4, 0, b"HELLO"),
    ];
    let applied = append_applied(&store, &cmds, 1);
    // The raftstore says 4 applied, the partition dir is empty: open re-applies 1..=4.
    let app = DataApp::open(&ctx, GROUP).unwrap();
    assert_eq!(read_all(&app, e), b"HELLO WORLD");
    assert_eq!(app.partition().synced_index(), applied);
    drop(app);

    // Power loss after more entries were applied: the extent file lost its last writes, and SYNCED
    // still says 4. The retry at index 6 of op 2 (first applied at 2) must not be re-applied.
    let more = vec![w(5, 11, b"!!"), w(2, 0, b"hello world")];
    let applied = append_applied(&store, &more, 5);
    let path = dir.path().join("partitions/7/gen-1/extents/1.ext");
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(5).unwrap();
    let app = DataApp::open(&ctx, GROUP).unwrap();
    assert_eq!(app.partition().synced_index(), applied);
    // Without a dedupe record the replay applies index 6 like a first application would. The bytes
    // and their CRC are right again; the partial write at index 5 met a block whose old bytes did
    // not match their record (half the state was lost), so the block waits for a peer to confirm it
    // before it is served.
    let (size, blocks) = app.partition().extent(e).unwrap().stored_blocks(0, 1).unwrap();
    assert_eq!(size, 13);
    assert_eq!(blocks[0].content.as_deref(), Some(&b"hello world!!"[..]), "CRC matches the replayed bytes");
    assert!(blocks[0].entry.is_suspect());
    assert_eq!(blocks[0].entry.index, 6);
}

#[test]
fn a_retry_is_skipped_by_the_replay_as_it_was_by_the_apply() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let ctx = DataContext::new(dir.path().to_path_buf(), store.clone(), DataMetrics::default(), DataConfig::default());
    let e = ExtentId(1);
    let cmds = vec![
        cmd::encode(&DataCmd::Create { op: op(1) }),
        cmd::encode(&DataCmd::Write { op: op(2), extent: e, offset: 0, data: b"old" }),
        cmd::encode(&DataCmd::Write { op: op(3), extent: e, offset: 0, data: b"new" }),
        cmd::encode(&DataCmd::Write { op: op(2), extent: e, offset: 0, data: b"old" }),
    ];
    append_applied(&store, &cmds, 1);
    // The keyspace remembers that op 2 was first applied at index 2 (as `apply` records it).
    let reply = cmd::encode_reply(&Ok(cmd::CmdOk { extent: e, size: 3 }));
    let v = ferrum_datanode::dedupe::op_record(ferrum_datanode::dedupe::Pos::new(2, 0), &reply);
    let key = ferrum_datanode::dedupe::op_key(op(2));
    let mut wb = rocksdb::WriteBatch::default();
    wb.put_cf(store.cf(ferrum_raftstore::store::CF_DATA), ferrum_raftstore::store::data_key(GROUP, &key), v);
    store.write_sync(wb).unwrap();
    let app = DataApp::open(&ctx, GROUP).unwrap();
    assert_eq!(read_all(&app, e), b"new");
}

#[test]
fn a_retry_inside_a_batched_entry_is_applied_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let ctx = DataContext::new(dir.path().to_path_buf(), store.clone(), DataMetrics::default(), DataConfig::default());
    let e = ExtentId(1);
    let w = |n: u64, d: &'static [u8]| cmd::WriteCmd { op: op(n), extent: e, offset: 0, data: d };
    let cmds = vec![
        cmd::encode(&DataCmd::Create { op: op(1) }),
        cmd::encode(&DataCmd::Batch(vec![w(2, b"old"), w(3, b"new"), w(2, b"old")])),
    ];
    append_applied(&store, &cmds, 1);
    let app = DataApp::open(&ctx, GROUP).unwrap();
    assert_eq!(read_all(&app, e), b"new");
}
