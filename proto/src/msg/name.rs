//! A directory entry or extended attribute name.
//!
//! POSIX names are bytes, not UTF-8, so a name is a byte string (cheap to clone, sent as one length-
//! prefixed blob). It is shown lossily as UTF-8 in logs.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Name(Bytes);

impl Name {
    /// NAME_MAX on Linux.
    pub const MAX_LEN: usize = 255;

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether this name may be created in a directory: non-empty, at most [`Name::MAX_LEN`] bytes, no
    /// `/` or NUL, and not `.` or `..`.
    pub fn validate(&self) -> Result<(), ErrorCode> {
        let b = self.as_bytes();
        if b.len() > Name::MAX_LEN {
            return Err(ErrorCode::NameTooLong);
        }
        if b.is_empty() || b == b"." || b == b".." || b.iter().any(|&c| c == b'/' || c == 0) {
            return Err(ErrorCode::InvalidArgument(format!("invalid name {self:?}")));
        }
        Ok(())
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        Name(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<&[u8]> for Name {
    fn from(b: &[u8]) -> Name {
        Name(Bytes::copy_from_slice(b))
    }
}

impl From<Vec<u8>> for Name {
    fn from(b: Vec<u8>) -> Name {
        Name(Bytes::from(b))
    }
}

impl From<Bytes> for Name {
    fn from(b: Bytes) -> Name {
        Name(b)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&String::from_utf8_lossy(&self.0), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        Name::from("file.txt").validate().unwrap();
        Name::from(&[0xFFu8, 0xFE][..]).validate().unwrap();
        Name::from("x".repeat(255).as_str()).validate().unwrap();
        assert_eq!(Name::from("x".repeat(256).as_str()).validate(), Err(ErrorCode::NameTooLong));
        for bad in ["", ".", "..", "a/b", "a\0b"] {
            assert!(matches!(Name::from(bad).validate(), Err(ErrorCode::InvalidArgument(_))), "{bad:?}");
        }
    }

    #[test]
    fn wire_form_is_length_prefixed_bytes() {
        let n = Name::from(&[b'a', 0xFF][..]);
        let wire = postcard::to_allocvec(&n).unwrap();
        assert_eq!(wire, [2, b'a', 0xFF]);
        assert_eq!(postcard::from_bytes::<Name>(&wire).unwrap(), n);
        assert_eq!(format!("{n:?}"), "\"a\u{FFFD}\"");
    }
}
