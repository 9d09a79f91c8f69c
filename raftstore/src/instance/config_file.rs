//! The optional TOML config file: `[instance]`, `[raft]` and one role-specific section.
//!
//! The role section's name is only known at run time, so the top level cannot be a derived struct; and
//! serde's `flatten` would silently disable `deny_unknown_fields`. Instead a small visitor walks the
//! top-level table and hands each section to its own `deny_unknown_fields` struct, which keeps toml's
//! spans, so every error carries a line number.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::error::ConfigError;
use super::raft_config::RaftConfig;

/// The `[instance]` section; every key is optional because flags may supply it.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct InstanceSection {
    pub listen: Option<SocketAddr>,
    pub advertise: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub metrics_listen: Option<SocketAddr>,
    pub log: Option<String>,
    pub block_cache_mib: Option<u64>,
}

/// Keys of [`InstanceSection`], to hint that a top-level `listen = ...` belongs under `[instance]`.
const INSTANCE_KEYS: &[&str] = &["listen", "advertise", "data_dir", "metrics_listen", "log", "block_cache_mib"];

/// A parsed file; sections left out hold their defaults.
#[derive(Debug, Default)]
pub(crate) struct FileConfig<S> {
    pub instance: InstanceSection,
    pub raft: RaftConfig,
    pub role: S,
}

pub(crate) fn read<S: DeserializeOwned + Default>(path: &Path, section: &str) -> Result<FileConfig<S>, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    parse(&text, path, section)
}

pub(crate) fn parse<S: DeserializeOwned + Default>(
    text: &str,
    path: &Path,
    section: &str,
) -> Result<FileConfig<S>, ConfigError> {
    // Set while a section is being deserialized, so an error can say which section it came from.
    let current = Cell::new(None);
    let invalid = |err: toml::de::Error, section: Option<&str>| ConfigError::Invalid {
        path: path.to_path_buf(),
        line: err.span().map_or(1, |span| line_of(text, span.start)),
        section: section.map(str::to_string),
        // toml's Display is a multi-line snippet with a caret; the bare message keeps our error on one line.
        message: err.message().replace('\n', " "),
    };
    let deserializer = toml::Deserializer::parse(text).map_err(|err| invalid(err, None))?;
    let seed = FileSeed::<S> { section, current: &current, role: PhantomData };
    seed.deserialize(deserializer).map_err(|err| invalid(err, current.get()))
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|b| **b == b'\n').count() + 1
}

struct FileSeed<'c, 's, S> {
    section: &'s str,
    current: &'c Cell<Option<&'s str>>,
    role: PhantomData<S>,
}

impl<'de, S: DeserializeOwned + Default> DeserializeSeed<'de> for FileSeed<'_, '_, S> {
    type Value = FileConfig<S>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, S: DeserializeOwned + Default> Visitor<'de> for FileSeed<'_, '_, S> {
    type Value = FileConfig<S>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "sections [instance], [raft] and [{}]", self.section)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut file = FileConfig::<S>::default();
        while let Some(key) = map.next_key_seed(SectionName { section: self.section })? {
            match key {
                Section::Instance => {
                    self.current.set(Some("instance"));
                    file.instance = map.next_value()?;
                }
                Section::Raft => {
                    self.current.set(Some("raft"));
                    file.raft = map.next_value()?;
                }
                Section::Role => {
                    self.current.set(Some(self.section));
                    file.role = map.next_value()?;
                }
            }
            self.current.set(None);
        }
        Ok(file)
    }
}

enum Section {
    Instance,
    Raft,
    Role,
}

/// Accepts only the three known section names; toml attaches the key's span to the error.
struct SectionName<'a> {
    section: &'a str,
}

impl<'de> DeserializeSeed<'de> for SectionName<'_> {
    type Value = Section;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Section, D::Error> {
        let name = String::deserialize(deserializer)?;
        match name.as_str() {
            "instance" => Ok(Section::Instance),
            "raft" => Ok(Section::Raft),
            other if other == self.section => Ok(Section::Role),
            other if INSTANCE_KEYS.contains(&other) => {
                Err(de::Error::custom(format!("top-level key `{other}` belongs in the [instance] section")))
            }
            other => Err(de::Error::custom(format!(
                "unknown section [{other}], expected [instance], [raft] or [{}]",
                self.section
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Master {
        replicas: u32,
    }

    fn parse_master(text: &str) -> Result<FileConfig<Master>, ConfigError> {
        parse(text, Path::new("/etc/ferrum/master.toml"), "master")
    }

    fn error_of(text: &str) -> String {
        parse_master(text).unwrap_err().to_string()
    }

    #[test]
    fn full_file() {
        let file = parse_master(
            "[instance]\nlisten = \"127.0.0.1:17010\"\ndata_dir = \"/d\"\n\
             [raft]\nheartbeat_ms = 100\n[master]\nreplicas = 3\n",
        )
        .expect("valid file");
        assert_eq!(file.instance.listen, Some("127.0.0.1:17010".parse().expect("addr")));
        assert_eq!(file.instance.data_dir, Some(PathBuf::from("/d")));
        assert_eq!(file.raft.heartbeat_ms, 100);
        assert_eq!(file.raft.election_timeout_min_ms, 750, "unset keys keep defaults");
        assert_eq!(file.role, Master { replicas: 3 });
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let file = parse_master("").expect("empty file");
        assert_eq!(file.raft, RaftConfig::default());
        assert_eq!(file.role, Master::default());
    }

    #[test]
    fn unknown_section_is_named_with_file_and_line() {
        let msg = error_of("[instance]\n\n[metanode]\nx = 1\n");
        assert!(msg.contains("unknown section [metanode]"), "{msg}");
        assert!(msg.contains("/etc/ferrum/master.toml"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
        assert!(!msg.contains('\n'), "one line: {msg}");
    }

    #[test]
    fn top_level_instance_key_gets_a_hint() {
        let msg = error_of("listen = \"127.0.0.1:1\"\n");
        assert!(msg.contains("`listen` belongs in the [instance] section"), "{msg}");
    }

    #[test]
    fn unknown_key_in_each_section_is_named() {
        for (section, text, line) in [
            ("instance", "[instance]\nlisten = \"127.0.0.1:1\"\nlisen = 1\n", 3),
            ("raft", "[raft]\nheartbeat = 100\n", 2),
            ("master", "[master]\n\nreplicas = 3\nreplica = 3\n", 4),
        ] {
            let msg = error_of(text);
            let bad_key = text.lines().last().and_then(|l| l.split(' ').next()).unwrap_or("");
            assert!(msg.contains(&format!("unknown field `{bad_key}`")), "{msg}");
            assert!(msg.contains(&format!("in [{section}]")), "{msg}");
            assert!(msg.contains(&format!("line {line}")), "{msg}");
            assert!(!msg.contains('\n'), "one line: {msg}");
        }
    }

    #[test]
    fn wrong_type_and_syntax_errors_are_one_line() {
        let msg = error_of("[instance]\nlisten = \"not an address\"\n");
        assert!(msg.contains("in [instance]") && msg.contains("line 2"), "{msg}");
        let msg = error_of("[raft\n");
        assert!(msg.contains("line 1") && !msg.contains('\n'), "{msg}");
    }
}
