//! openraft type configuration shared by every group of every service.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A command proposed to a group: opaque to Raft, interpreted by the group's [`crate::App`].
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cmd(pub Bytes);

thread_local! {
    /// The buffer [`decode_shared`] is decoding: commands found inside it are slices of it.
    static SOURCE: std::cell::RefCell<Option<Bytes>> = const { std::cell::RefCell::new(None) };
}

/// Commands at least this long are shared with the buffer they were decoded from; shorter ones are
/// copied, so that a small entry kept in the log store's memory does not pin a whole receive buffer.
const SHARE_MIN: usize = 16 << 10;

/// `postcard::from_bytes` of `src`, with every [`Cmd`] of at least [`SHARE_MIN`] bytes a slice of `src`
/// instead of a copy: a follower's AppendEntries carries MiB commands of file data, which would
/// otherwise be copied once more.
pub fn decode_shared<T: serde::de::DeserializeOwned>(src: &Bytes) -> Result<T, postcard::Error> {
    SOURCE.with(|s| *s.borrow_mut() = Some(src.clone()));
    let out = postcard::from_bytes(src);
    SOURCE.with(|s| *s.borrow_mut() = None);
    out
}

impl<'de> Deserialize<'de> for Cmd {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Cmd, D::Error> {
        d.deserialize_newtype_struct("Cmd", NewTypeVisitor)
    }
}

struct NewTypeVisitor;

impl<'de> serde::de::Visitor<'de> for NewTypeVisitor {
    type Value = Cmd;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a command")
    }

    fn visit_newtype_struct<D: serde::Deserializer<'de>>(self, d: D) -> Result<Cmd, D::Error> {
        d.deserialize_bytes(BytesVisitor)
    }
}

struct BytesVisitor;

impl<'de> serde::de::Visitor<'de> for BytesVisitor {
    type Value = Cmd;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a command's bytes")
    }

    fn visit_borrowed_bytes<E: serde::de::Error>(self, v: &'de [u8]) -> Result<Cmd, E> {
        let shared = SOURCE.with(|s| {
            let s = s.borrow();
            let src = s.as_ref()?;
            let r = src.as_ptr_range();
            let inside = v.len() >= SHARE_MIN && r.start <= v.as_ptr() && v.as_ptr_range().end <= r.end;
            inside.then(|| src.slice_ref(v))
        });
        Ok(Cmd(shared.unwrap_or_else(|| Bytes::copy_from_slice(v))))
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Cmd, E> {
        Ok(Cmd(Bytes::copy_from_slice(v)))
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Cmd, E> {
        Ok(Cmd(Bytes::from(v)))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Cmd, A::Error> {
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element::<u8>()? {
            v.push(b);
        }
        Ok(Cmd(Bytes::from(v)))
    }
}

/// What applying a [`Cmd`] returned; travels back to the proposer.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply(pub Bytes);

// Commands may carry MiBs of file data: print sizes, not contents.
impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cmd({} bytes)", self.0.len())
    }
}
impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reply({} bytes)", self.0.len())
    }
}
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

openraft::declare_raft_types!(
    /// Raft node ids are Ferrum [`ferrum_proto::NodeId`] values; a peer is reached at `BasicNode::addr`
    /// (its own `host:port`, never a shared port convention). Snapshots are files, so a large partition
    /// never has to fit in memory.
    pub TypeConfig:
        D = Cmd,
        R = Reply,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type LogId = openraft::LogId<u64>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type Vote = openraft::Vote<u64>;
pub type StoredMembership = openraft::StoredMembership<u64, openraft::BasicNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<u64, openraft::BasicNode>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
pub type StorageError = openraft::StorageError<u64>;

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload};

    fn entry(index: u64, cmd: Bytes) -> Entry {
        Entry { log_id: LogId::new(CommittedLeaderId::new(1, 1), index), payload: EntryPayload::Normal(Cmd(cmd)) }
    }

    #[test]
    fn shared_decoding_slices_commands_out_of_the_source() {
        let big = Bytes::from((0..100_000u32).map(|i| i as u8).collect::<Vec<u8>>());
        let entries = vec![entry(1, big.clone()), entry(2, Bytes::from_static(b"small")), entry(3, Bytes::new())];
        let src = Bytes::from(postcard::to_stdvec(&entries).unwrap());
        let got: Vec<Entry> = decode_shared(&src).unwrap();
        assert_eq!(got, entries);
        let inside = src.as_ptr_range();
        let ptr = |e: &Entry| match &e.payload {
            EntryPayload::Normal(Cmd(b)) => b.as_ptr(),
            other => panic!("{other:?}"),
        };
        assert!(inside.contains(&ptr(&got[0])), "a large command is a slice of the source, not a copy");
        assert!(!inside.contains(&ptr(&got[1])), "a small one is copied: it must not pin the source");
        // Plain decoding still copies, and a decode after `decode_shared` does not see its source.
        let copied: Vec<Entry> = postcard::from_bytes(&src).unwrap();
        assert_eq!(copied, entries);
        assert!(!inside.contains(&ptr(&copied[0])));
    }

    #[test]
    fn shared_decoding_of_malformed_bytes_is_an_error() {
        let src = Bytes::from(postcard::to_stdvec(&vec![entry(1, Bytes::from(vec![7u8; 1000]))]).unwrap());
        assert!(decode_shared::<Vec<Entry>>(&src.slice(..src.len() - 10)).is_err());
    }
}
