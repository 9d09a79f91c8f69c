//! `ferrum dev ps --json`, parsed: what the tests know about a dev cluster comes from the tool itself.

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
pub struct Ps {
    pub dir: String,
    pub volume: String,
    pub mount: Option<String>,
    pub mount_pid: Option<u32>,
    pub instances: Vec<DevInstance>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct DevInstance {
    /// `master1`, `meta2`, `data3`, ...: what `ferrum dev stop|start` take.
    pub name: String,
    /// `master`, `metanode` or `datanode`.
    pub role: String,
    pub pid: Option<u32>,
    pub rpc: String,
    pub metrics: String,
    pub admin: Option<String>,
    /// `running` or `stopped`.
    pub status: String,
    pub log: String,
}

impl DevInstance {
    pub fn running(&self) -> bool {
        self.status == "running"
    }
}

impl Ps {
    pub fn get(&self, name: &str) -> &DevInstance {
        self.instances.iter().find(|i| i.name == name).unwrap_or_else(|| panic!("no instance {name} in {self:?}"))
    }

    pub fn of_role<'a>(&'a self, role: &'a str) -> impl Iterator<Item = &'a DevInstance> + 'a {
        self.instances.iter().filter(move |i| i.role == role)
    }

    pub fn running(&self) -> usize {
        self.instances.iter().filter(|i| i.running()).count()
    }
}
