//! The dev cluster's state file, `DIR/cluster.json`: what runs where, so that `ps`, `stop`, `start` and
//! `down` work from any later shell.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::layout::InstanceSpec;

pub const FILE: &str = "cluster.json";
const FORMAT: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cluster {
    pub format: u32,
    pub dir: PathBuf,
    pub base_port: u16,
    pub replicas: u8,
    pub volume: String,
    pub mount: Option<PathBuf>,
    pub instances: Vec<Member>,
    /// The FUSE client process serving the mount.
    pub mount_pid: Option<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Member {
    #[serde(flatten)]
    pub spec: InstanceSpec,
    /// Full command line (binary first), so `start` reruns exactly what `up` ran.
    pub argv: Vec<String>,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub pid: Option<u32>,
}

impl Cluster {
    pub fn new(dir: &Path, base_port: u16, replicas: u8, volume: &str) -> Cluster {
        Cluster {
            format: FORMAT,
            dir: dir.to_path_buf(),
            base_port,
            replicas,
            volume: volume.to_string(),
            mount: None,
            instances: Vec::new(),
            mount_pid: None,
        }
    }

    pub fn load(dir: &Path) -> Result<Cluster, String> {
        let path = dir.join(FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!("no dev cluster in {} ({}: {e}); start one with `ferrum dev up`", dir.display(), path.display())
        })?;
        let c: Cluster = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if c.format != FORMAT {
            return Err(format!("{}: format {} is not {FORMAT}", path.display(), c.format));
        }
        Ok(c)
    }

    /// Atomic replace, so a crash mid-write never leaves a half state file.
    pub fn save(&self) -> Result<(), String> {
        let path = self.dir.join(FILE);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn member(&self, name: &str) -> Result<usize, String> {
        self.instances.iter().position(|m| m.spec.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.instances.iter().map(|m| m.spec.name.as_str()).collect();
            format!("no instance {name:?} in {}; instances: {}", self.dir.display(), names.join(", "))
        })
    }

    pub fn master_rpc_addrs(&self) -> Vec<String> {
        self.instances
            .iter()
            .filter(|m| m.spec.role == super::layout::DevRole::Master)
            .map(|m| m.spec.rpc.clone())
            .collect()
    }

    pub fn master_admin_addrs(&self) -> Vec<String> {
        self.instances.iter().filter_map(|m| m.spec.admin.clone()).collect()
    }
}
