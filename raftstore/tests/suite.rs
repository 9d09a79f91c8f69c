//! openraft's storage conformance suite against our RocksDB log store and state machine.
//! (`Suite::test_all` builds its own runtime, so this is a plain `#[test]`.)

use std::sync::Arc;

use ferrum_proto::GroupId;
use ferrum_raftstore::kv::KvApp;
use ferrum_raftstore::log_store::LogStore;
use ferrum_raftstore::state_machine::StateMachine;
use ferrum_raftstore::{Store, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;

/// Entries of at least this many bytes go to segment files (`usize::MAX`: none, 0: all).
struct Builder(usize);

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open rocksdb");
        // Group 7, not 0: the prefixes of other groups must not leak into this one.
        let group = GroupId::from(7);
        let sm = StateMachine::open(group, store.clone(), Arc::new(KvApp))?;
        Ok((dir, LogStore::new(group, store, Arc::new(KvApp)).expect("log store").min_payload(self.0), sm))
    }
}

#[test]
fn openraft_storage_suite() -> Result<(), StorageError<u64>> {
    Suite::test_all(Builder(usize::MAX))
}

/// The same with every entry in segment files (`raftstore::payload_log`).
#[test]
fn openraft_storage_suite_with_entries_in_segments() -> Result<(), StorageError<u64>> {
    Suite::test_all(Builder(0))
}
