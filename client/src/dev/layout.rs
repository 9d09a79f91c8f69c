//! Which instances a dev cluster has and which ports they use.
//!
//! Every instance gets a block of [`PORTS_PER_INSTANCE`] consecutive ports from `--base-port` on: RPC/Raft
//! first, then metrics, then (masters) the admin API. Blocks never overlap, so two clusters with
//! different base ports (and dirs) run side by side.

use std::net::{SocketAddr, TcpListener};

use serde::{Deserialize, Serialize};

pub const PORTS_PER_INSTANCE: u16 = 4;
pub const HOST: &str = "127.0.0.1";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DevRole {
    Master,
    Metanode,
    Datanode,
}

impl DevRole {
    pub fn binary(self) -> &'static str {
        match self {
            DevRole::Master => "ferrum-master",
            DevRole::Metanode => "ferrum-metanode",
            DevRole::Datanode => "ferrum-datanode",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            DevRole::Master => "master",
            DevRole::Metanode => "meta",
            DevRole::Datanode => "data",
        }
    }
}

/// One instance of the dev cluster, as recorded in the state file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceSpec {
    /// e.g. `master1`, `meta2`, `data3`: what `ferrum dev stop|start` take.
    pub name: String,
    pub role: DevRole,
    pub rpc: String,
    pub metrics: String,
    /// Masters only: the admin HTTP API.
    pub admin: Option<String>,
}

#[derive(Clone, Copy, Debug)]
pub struct Counts {
    pub masters: u16,
    pub metanodes: u16,
    pub datanodes: u16,
}

pub fn plan(counts: Counts, base_port: u16) -> Result<Vec<InstanceSpec>, String> {
    let total = counts.masters as u32 + counts.metanodes as u32 + counts.datanodes as u32;
    let last = base_port as u32 + total * PORTS_PER_INSTANCE as u32;
    if last > u16::MAX as u32 {
        return Err(format!("--base-port {base_port} leaves no room for {total} instances ({last} > 65535)"));
    }
    let mut out = Vec::new();
    let mut block = 0u16;
    for (role, n) in [
        (DevRole::Master, counts.masters),
        (DevRole::Metanode, counts.metanodes),
        (DevRole::Datanode, counts.datanodes),
    ] {
        for i in 1..=n {
            let p = base_port + block * PORTS_PER_INSTANCE;
            out.push(InstanceSpec {
                name: format!("{}{i}", role.prefix()),
                role,
                rpc: format!("{HOST}:{p}"),
                metrics: format!("{HOST}:{}", p + 1),
                admin: (role == DevRole::Master).then(|| format!("{HOST}:{}", p + 2)),
            });
            block += 1;
        }
    }
    Ok(out)
}

/// Fails naming the first port that something else already listens on.
pub fn check_ports_free(specs: &[InstanceSpec]) -> Result<(), String> {
    for s in specs {
        for (what, addr) in [("rpc", Some(&s.rpc)), ("metrics", Some(&s.metrics)), ("admin", s.admin.as_ref())] {
            let Some(addr) = addr else { continue };
            let sa: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
            if let Err(e) = TcpListener::bind(sa) {
                return Err(format!("port {addr} ({} {what}) is not free: {e}; choose another --base-port", s.name));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_do_not_overlap_and_names_are_stable() {
        let specs = plan(Counts { masters: 3, metanodes: 3, datanodes: 3 }, 26000).unwrap();
        assert_eq!(specs.len(), 9);
        assert_eq!(specs[0].name, "master1");
        assert_eq!(specs[0].rpc, "127.0.0.1:26000");
        assert_eq!(specs[0].admin.as_deref(), Some("127.0.0.1:26002"));
        assert_eq!(specs[3].name, "meta1");
        assert_eq!(specs[3].rpc, "127.0.0.1:26012");
        assert_eq!(specs[8].name, "data3");
        let mut ports: Vec<String> = specs.iter().flat_map(|s| [s.rpc.clone(), s.metrics.clone()]).collect();
        ports.extend(specs.iter().filter_map(|s| s.admin.clone()));
        let n = ports.len();
        ports.sort();
        ports.dedup();
        assert_eq!(ports.len(), n, "no port is used twice");
        assert!(plan(Counts { masters: 3, metanodes: 3, datanodes: 3 }, 65530).is_err());
    }

    #[test]
    fn a_taken_port_is_named() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let specs = plan(Counts { masters: 1, metanodes: 0, datanodes: 0 }, port).unwrap();
        let err = check_ports_free(&specs).unwrap_err();
        assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    }
}
