//! `ferrum dev ps` output.

use serde::Serialize;

use super::process::alive;
use super::state::Cluster;

#[derive(Serialize)]
pub struct Row {
    pub name: String,
    pub role: String,
    pub pid: Option<u32>,
    pub rpc: String,
    pub metrics: String,
    pub admin: Option<String>,
    pub status: &'static str,
    pub log: String,
}

pub fn rows(c: &Cluster) -> Vec<Row> {
    c.instances
        .iter()
        .map(|m| Row {
            name: m.spec.name.clone(),
            role: format!("{:?}", m.spec.role).to_lowercase(),
            pid: m.pid,
            rpc: m.spec.rpc.clone(),
            metrics: m.spec.metrics.clone(),
            admin: m.spec.admin.clone(),
            status: match m.pid {
                Some(p) if alive(p) => "running",
                _ => "stopped",
            },
            log: m.log.display().to_string(),
        })
        .collect()
}

pub fn print(c: &Cluster) {
    println!("{:<9} {:<9} {:>8}  {:<21} {:<21} {:<21} {}", "NAME", "ROLE", "PID", "RPC", "METRICS", "ADMIN", "STATUS");
    for r in rows(c) {
        println!(
            "{:<9} {:<9} {:>8}  {:<21} {:<21} {:<21} {}",
            r.name,
            r.role,
            r.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            r.rpc,
            r.metrics,
            r.admin.as_deref().unwrap_or("-"),
            r.status
        );
    }
    if let Some(m) = &c.mount {
        let state = match c.mount_pid {
            Some(p) if alive(p) => "mounted",
            _ => "not mounted",
        };
        println!("volume {:?} (replicas {}) at {} [{state}]", c.volume, c.replicas, m.display());
    }
}

pub fn json(c: &Cluster) -> String {
    #[derive(Serialize)]
    struct Out<'a> {
        dir: String,
        volume: &'a str,
        mount: Option<String>,
        mount_pid: Option<u32>,
        instances: Vec<Row>,
    }
    serde_json::to_string_pretty(&Out {
        dir: c.dir.display().to_string(),
        volume: &c.volume,
        mount: c.mount.as_ref().map(|m| m.display().to_string()),
        mount_pid: c.mount_pid,
        instances: rows(c),
    })
    .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
