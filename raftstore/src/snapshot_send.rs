//! External state (a data partition's extents) enters a snapshot when the snapshot is sent, not when it
//! is built.
//!
//! Every replica builds a snapshot every few thousand entries so that it can purge its log; a replica
//! needs one sent only when it lost its log (a new replica, or one down past a purge). Copying every
//! extent into each build made writes pay for the whole partition: 4 KiB random writes to a few GiB of
//! files copied (and compressed) all of it after 5,000 entries, half of the machine for seconds. A
//! build of a group whose app [`App::has_external`] therefore writes a marker pair first and the
//! keyspace after it; [`Completer::complete`] turns such a file into a full one just before openraft
//! streams it: the keyspace pairs, then `App::dump_external`'s pairs (not compressed), in an unlinked
//! temporary file (nothing to clean up after a crash). The extents dumped then hold effects of entries after the
//! snapshot's index, which the receiver re-applies: sound because `dump_external` requires that
//! re-applying them is idempotent (it was already the case for a dump running beside `apply`).

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use crate::app::App;
use crate::snapshot::{SnapshotReader, SnapshotWriter};
use crate::state_machine::unique;
use crate::types::Snapshot;

/// First byte of every key in a snapshot file: the group's keyspace, an app's external state, or the
/// marker "external state goes in when sent" (the first pair of a built file).
pub const SECTION_KEYSPACE: u8 = 0;
pub const SECTION_EXTERNAL: u8 = 1;
pub const SECTION_EXTERNAL_AT_SEND: u8 = 2;

pub fn section_key(section: u8, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(section);
    k.extend_from_slice(key);
    k
}

/// Completes a group's snapshots with its app's external state before they are sent.
#[derive(Clone)]
pub struct Completer {
    app: Arc<dyn App>,
    /// Where the temporary full file is created (the group's snapshot dir: same filesystem as the rest).
    dir: PathBuf,
}

impl Completer {
    pub fn new(app: Arc<dyn App>, dir: PathBuf) -> Self {
        Completer { app, dir }
    }

    /// `snapshot` itself when it carries no marker, else a full copy with the external state dumped now.
    pub async fn complete(&self, snapshot: Snapshot) -> io::Result<Snapshot> {
        let Snapshot { meta, snapshot } = snapshot;
        let file = snapshot.into_std().await;
        let this = self.clone();
        let file =
            tokio::task::spawn_blocking(move || this.complete_blocking(file)).await.map_err(io::Error::other)??;
        Ok(Snapshot { meta, snapshot: Box::new(tokio::fs::File::from_std(file)) })
    }

    fn complete_blocking(&self, mut built: File) -> io::Result<File> {
        built.seek(SeekFrom::Start(0))?;
        let mut reader = SnapshotReader::new(BufReader::new(&mut built))?;
        let first = reader.next_pair()?;
        if first.as_ref().and_then(|(k, _)| k.first()) != Some(&SECTION_EXTERNAL_AT_SEND) {
            drop(reader);
            built.seek(SeekFrom::Start(0))?;
            return Ok(built);
        }
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(format!("send-{}.part", unique()));
        let full = OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
        // Unlinked at once: the open handle keeps it until the transfer ends, a crash leaves nothing.
        std::fs::remove_file(&path)?;
        let mut w = SnapshotWriter::new(BufWriter::new(full))?;
        while let Some((k, v)) = reader.next_pair()? {
            w.put(&k, &v)?;
        }
        self.app.dump_external(&mut |k, v| w.put_stored(&section_key(SECTION_EXTERNAL, k), v))?;
        let (buf, _) = w.finish()?;
        let mut full = buf.into_inner().map_err(|e| e.into_error())?;
        full.seek(SeekFrom::Start(0))?;
        Ok(full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{GroupBatch, GroupView};
    use bytes::Bytes;

    /// External state of two pairs, counting its dumps.
    struct Ext(std::sync::atomic::AtomicU64);

    impl App for Ext {
        fn apply(&self, _: &GroupView<'_>, _: &mut GroupBatch<'_>, _: u64, _: &[u8]) -> Bytes {
            Bytes::new()
        }
        fn has_external(&self) -> bool {
            true
        }
        fn dump_external(&self, sink: &mut dyn FnMut(&[u8], &[u8]) -> io::Result<()>) -> io::Result<()> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            sink(b"x1", b"one")?;
            sink(b"x2", b"two")
        }
    }

    fn file_of(pairs: &[(Vec<u8>, Vec<u8>)]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        let mut w = SnapshotWriter::new(&mut f).unwrap();
        for (k, v) in pairs {
            w.put(k, v).unwrap();
        }
        w.finish().unwrap();
        f
    }

    fn pairs_of(f: File) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut r = SnapshotReader::new(BufReader::new(f)).unwrap();
        std::iter::from_fn(|| r.next_pair().unwrap()).collect()
    }

    #[test]
    fn a_marked_file_gets_the_external_state_dumped_at_send_and_an_unmarked_one_is_sent_as_is() {
        let dir = tempfile::tempdir().unwrap();
        let app = Arc::new(Ext(Default::default()));
        let c = Completer::new(app.clone(), dir.path().join("snap"));
        let keys = vec![(section_key(SECTION_KEYSPACE, b"k1"), b"v1".to_vec())];
        let mut marked = vec![(vec![SECTION_EXTERNAL_AT_SEND], vec![])];
        marked.extend(keys.clone());

        let full = pairs_of(c.complete_blocking(file_of(&marked)).unwrap());
        let mut want = keys.clone();
        want.push((section_key(SECTION_EXTERNAL, b"x1"), b"one".to_vec()));
        want.push((section_key(SECTION_EXTERNAL, b"x2"), b"two".to_vec()));
        assert_eq!(full, want);
        assert_eq!(app.0.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(std::fs::read_dir(dir.path().join("snap")).unwrap().count(), 0, "temporary file not unlinked");

        // A received full snapshot (no marker) is served unchanged, without another dump.
        assert_eq!(pairs_of(c.complete_blocking(file_of(&want)).unwrap()), want);
        assert_eq!(app.0.load(std::sync::atomic::Ordering::Relaxed), 1);
    }
}
