//! Extended attributes, passed through to the metanode, with one cache.
//!
//! Before every write the kernel asks for `security.capability` (to know whether the write must drop
//! file capabilities): without a cache that is one metanode round trip per write. `security.*` answers
//! (a value or "none") are kept for the attribute TTL; this client's own changes update the cache.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrum_proto::msg::name::Name;
use ferrum_proto::{ErrorCode, InodeId};

use super::{Cred, Vfs};
use crate::backend::{DataBackend, MetaBackend};
use crate::error::Result;

const CAPACITY: usize = 16_384;

/// What the kernel asks for before every write.
const CAPABILITY: &str = "security.capability";

/// A cached answer: the value, or `None` for "no such attribute", and when it was seen.
type Seen = (Option<Bytes>, Instant);

/// `security.*` attributes seen recently.
pub struct XattrCache {
    ttl: Duration,
    map: Mutex<HashMap<(InodeId, Name), Seen>>,
}

fn cached(name: &Name) -> bool {
    name.as_bytes().starts_with(b"security.")
}

impl XattrCache {
    pub fn new(ttl: Duration) -> XattrCache {
        XattrCache { ttl, map: Mutex::new(HashMap::new()) }
    }

    fn get(&self, ino: InodeId, name: &Name) -> Option<Option<Bytes>> {
        let map = self.map.lock().expect("xattr cache lock");
        let (v, at) = map.get(&(ino, name.clone()))?;
        (at.elapsed() < self.ttl).then(|| v.clone())
    }

    fn put(&self, ino: InodeId, name: &Name, value: Option<Bytes>) {
        if self.ttl.is_zero() || !cached(name) {
            return;
        }
        let mut map = self.map.lock().expect("xattr cache lock");
        if map.len() >= CAPACITY {
            map.retain(|_, (_, at)| at.elapsed() < self.ttl);
            if map.len() >= CAPACITY {
                map.clear();
            }
        }
        map.insert((ino, name.clone()), (value, Instant::now()));
    }

    /// `ino` was just created by this client: it has no file capabilities, so its first write need not
    /// ask the metanode (one round trip per small-file create).
    pub(super) fn created(&self, ino: InodeId) {
        self.put(ino, &Name::from(CAPABILITY), None);
    }

    fn forget(&self, ino: InodeId, name: &Name) {
        self.map.lock().expect("xattr cache lock").remove(&(ino, name.clone()));
    }
}

impl<M: MetaBackend, D: DataBackend> Vfs<M, D> {
    pub async fn getxattr(&self, ino: InodeId, name: &Name, cred: &Cred) -> Result<Bytes> {
        if cached(name) {
            if let Some(hit) = self.inner.xattrs.get(ino, name) {
                return hit.ok_or_else(|| ErrorCode::NoXattr.into());
            }
        }
        match self.inner.meta.get_xattr(ino, name, cred).await {
            Ok(v) => {
                self.inner.xattrs.put(ino, name, Some(v.clone()));
                Ok(v)
            }
            Err(ErrorCode::NoXattr) => {
                self.inner.xattrs.put(ino, name, None);
                Err(ErrorCode::NoXattr.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `flags`: `XATTR_CREATE` / `XATTR_REPLACE` (the same bits as `SetXattr::CREATE`/`REPLACE`).
    pub async fn setxattr(&self, ino: InodeId, name: &Name, value: Bytes, flags: u32, cred: &Cred) -> Result<()> {
        self.inner.xattrs.forget(ino, name);
        self.inner.meta.set_xattr(ino, name, &value, flags, cred).await?;
        self.inner.attrs.invalidate(ino);
        Ok(())
    }

    pub async fn listxattr(&self, ino: InodeId, cred: &Cred) -> Result<Vec<Name>> {
        Ok(self.inner.meta.list_xattr(ino, cred).await?)
    }

    pub async fn removexattr(&self, ino: InodeId, name: &Name, cred: &Cred) -> Result<()> {
        self.inner.xattrs.forget(ino, name);
        self.inner.meta.remove_xattr(ino, name, cred).await?;
        self.inner.attrs.invalidate(ino);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_security_names_are_cached() {
        let c = XattrCache::new(Duration::from_secs(60));
        c.put(InodeId(1), &Name::from("user.a"), None);
        assert!(c.get(InodeId(1), &Name::from("user.a")).is_none());
        c.put(InodeId(1), &Name::from("security.capability"), None);
        assert_eq!(c.get(InodeId(1), &Name::from("security.capability")), Some(None));
        c.forget(InodeId(1), &Name::from("security.capability"));
        assert!(c.get(InodeId(1), &Name::from("security.capability")).is_none());
    }
}
