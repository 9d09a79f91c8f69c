//! `<data dir>/IDENTITY`: who owns a data dir, written once on first start.
//!
//! It stops a datanode from being started on a master's dir by a typo in a script, and gives the
//! instance a stable id (metrics label, logs) that survives restarts and port changes.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::error::InstanceError;
use super::role::Role;

pub const IDENTITY_FILE: &str = "IDENTITY";
const FORMAT_VERSION: u32 = 1;

/// 128 random bits as 32 lowercase hex chars; unique per data dir.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InstanceUuid(String);

impl InstanceUuid {
    fn random() -> std::io::Result<Self> {
        let mut bytes = [0u8; 16];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        Ok(InstanceUuid(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    fn is_well_formed(&self) -> bool {
        self.0.len() == 32 && self.0.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The content of the IDENTITY file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Bumped if the layout of the file or of the data dir changes incompatibly.
    pub format_version: u32,
    pub instance_uuid: InstanceUuid,
    pub role: String,
    pub created_unix: u64,
}

impl Identity {
    /// Reads the identity of `dir`, or creates it on first start; refuses a dir made for another role.
    /// The caller must hold the dir's lock, so no other instance races the creation.
    pub(crate) fn load_or_create(dir: &Path, role: Role) -> Result<Identity, InstanceError> {
        let path = dir.join(IDENTITY_FILE);
        let identity = match std::fs::read_to_string(&path) {
            Ok(text) => parse(&path, &text)?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => create(dir, role)?,
            Err(err) => return Err(InstanceError::io(path, err)),
        };
        if identity.role != role.as_str() {
            return Err(InstanceError::RoleMismatch {
                dir: dir.to_path_buf(),
                found: identity.role,
                wanted: role.as_str().to_string(),
            });
        }
        Ok(identity)
    }
}

fn parse(path: &Path, text: &str) -> Result<Identity, InstanceError> {
    let corrupt = |reason: String| InstanceError::IdentityCorrupt { path: path.to_path_buf(), reason };
    let identity: Identity = toml::from_str(text).map_err(|err| corrupt(err.message().replace('\n', " ")))?;
    if identity.format_version != FORMAT_VERSION {
        return Err(corrupt(format!(
            "format_version {} is not {FORMAT_VERSION}; was it written by another Ferrum version?",
            identity.format_version
        )));
    }
    if !identity.instance_uuid.is_well_formed() {
        return Err(corrupt("instance_uuid is not 32 hex chars".to_string()));
    }
    Ok(identity)
}

fn create(dir: &Path, role: Role) -> Result<Identity, InstanceError> {
    let path = dir.join(IDENTITY_FILE);
    let identity = Identity {
        format_version: FORMAT_VERSION,
        instance_uuid: InstanceUuid::random().map_err(|err| InstanceError::io("/dev/urandom", err))?,
        role: role.as_str().to_string(),
        created_unix: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
    };
    let text = toml::to_string(&identity).map_err(|err| InstanceError::IdentityCorrupt {
        path: path.clone(),
        reason: format!("cannot encode: {err}"),
    })?;
    write_atomically(dir, &path, text.as_bytes())?;
    Ok(identity)
}

/// Write to a temp file, fsync, rename over, fsync the dir: a crash leaves either no IDENTITY (and
/// the next start creates one) or a complete one, never a torn file that would block every restart.
fn write_atomically(dir: &Path, path: &Path, content: &[u8]) -> Result<(), InstanceError> {
    let tmp: PathBuf = path.with_extension("tmp");
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |err| InstanceError::io(p, err)
    };
    let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(content).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_then_read_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = Identity::load_or_create(dir.path(), Role::Datanode).expect("create");
        assert!(first.instance_uuid.is_well_formed(), "{}", first.instance_uuid);
        assert_eq!(first.role, "datanode");
        let again = Identity::load_or_create(dir.path(), Role::Datanode).expect("read");
        assert_eq!(first, again);
        assert!(!dir.path().join("IDENTITY.tmp").exists());
    }

    #[test]
    fn uuids_differ() {
        let a = InstanceUuid::random().expect("urandom");
        let b = InstanceUuid::random().expect("urandom");
        assert_ne!(a, b);
    }

    #[test]
    fn corrupt_file_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(IDENTITY_FILE), "role = 3\n").expect("write");
        let msg = Identity::load_or_create(dir.path(), Role::Master).unwrap_err().to_string();
        assert!(msg.contains("IDENTITY") && msg.contains("corrupt"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
}
