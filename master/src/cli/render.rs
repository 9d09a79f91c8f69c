//! What each command prints: tables for people, the API's JSON with `--json`.

use ferrum_proto::msg::master::{
    ClusterStatus, NodeInfo, NodeState, PartitionInfo, RemoveMasterResp, VolumeCreated, VolumeInfo, VolumeState,
};
use ferrum_proto::msg::repair::{Health, RepairInfo, RepairReason};
use ferrum_proto::msg::topology::PartitionKind;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::client::CliError;
use super::format::{bytes, table};

fn typed<T: DeserializeOwned>(v: &Value) -> Result<T, CliError> {
    serde_json::from_value(v.clone())
        .map_err(|e| CliError::Protocol { addr: "the master".into(), detail: e.to_string() })
}

fn json(v: &Value) -> String {
    format!("{}\n", serde_json::to_string_pretty(v).expect("JSON encodes"))
}

fn state(s: NodeState) -> &'static str {
    match s {
        NodeState::Alive => "alive",
        NodeState::Suspect => "suspect",
        NodeState::Dead => "dead",
    }
}

fn volume_state(s: VolumeState) -> &'static str {
    match s {
        VolumeState::Creating => "creating",
        VolumeState::Ready => "ready",
        VolumeState::Deleting => "deleting",
    }
}

pub fn removed_master(id: u64, v: &Value, as_json: bool) -> Result<String, CliError> {
    if as_json {
        return Ok(json(v));
    }
    let r: RemoveMasterResp = typed(v)?;
    Ok(if r.removed {
        format!("removed master {id} from the master group; stop it now\n")
    } else {
        format!("master {id} is not a member of the master group (already removed?)\n")
    })
}

pub fn status(v: &Value, as_json: bool) -> Result<String, CliError> {
    if as_json {
        return Ok(json(v));
    }
    let s: ClusterStatus = typed(v)?;
    let leader = match &s.leader {
        Some(l) => format!("master {} at {} (term {})", l.node, l.addr, s.term),
        None => "none".into(),
    };
    let features = if s.features.is_empty() { "none".to_string() } else { s.features.join(", ") };
    let health = match s.health {
        Health::Ok => "OK",
        Health::Degraded => "DEGRADED",
        Health::Unavailable => "UNAVAILABLE",
    };
    let mut out = format!("health:      {health}\n");
    for r in &s.reasons {
        out.push_str(&format!("             - {r}\n"));
    }
    out.push_str(&format!(
        "leader:      {leader}\nnodes:       {} alive, {} suspect, {} dead\nvolumes:     {}\n\
         partitions:  {} meta, {} data, {} under-replicated, {} without a leader\nrebuilt:     {}\n\
         features:    {features}\n\n",
        s.nodes_alive,
        s.nodes_suspect,
        s.nodes_dead,
        s.volumes,
        s.meta_partitions,
        s.data_partitions,
        s.under_replicated_partitions,
        s.partitions_without_leader,
        bytes(s.bytes_rebuilt),
    ));
    if !s.repairs.is_empty() {
        out.push_str(&repairs_text(&s.repairs));
        out.push('\n');
    }
    let rows: Vec<Vec<String>> = s
        .masters
        .iter()
        .map(|m| {
            let role = if m.leader {
                "leader"
            } else if m.voter {
                "follower"
            } else {
                "learner"
            };
            let (version, cores, mem, free) = match &m.resources {
                Some(r) => (r.version.clone(), r.cores.to_string(), bytes(r.mem_total), bytes(r.disk_free)),
                None => ("?".into(), "?".into(), "?".into(), "?".into()),
            };
            vec![m.id.to_string(), m.addr.clone(), role.into(), version, cores, mem, free]
        })
        .collect();
    out.push_str(&table(&["MASTER", "ADDRESS", "ROLE", "VERSION", "CORES", "MEMORY", "DISK FREE"], &rows));
    Ok(out)
}

/// Replica moves with a progress bar each (log entries the new replica has of the leader's).
fn repairs_text(repairs: &[RepairInfo]) -> String {
    const WIDTH: u64 = 24;
    let rows: Vec<Vec<String>> = repairs
        .iter()
        .map(|r| {
            let kind = match r.kind {
                PartitionKind::Meta => "meta",
                PartitionKind::Data => "data",
            };
            let why = match r.reason {
                RepairReason::DeadNode => "dead node",
                RepairReason::Decommission => "decommission",
            };
            let done = r.matched.min(r.last);
            let filled = (done * WIDTH).checked_div(r.last).unwrap_or(0);
            let bar = format!(
                "[{}{}] {}%",
                "#".repeat(filled as usize),
                ".".repeat((WIDTH - filled) as usize),
                (done * 100).checked_div(r.last).unwrap_or(0)
            );
            vec![r.partition.to_string(), kind.into(), format!("{} -> {}", r.remove, r.add), why.into(), bar]
        })
        .collect();
    format!("replica moves in flight:\n{}", table(&["PARTITION", "KIND", "MOVE", "WHY", "PROGRESS"], &rows))
}

pub fn nodes(v: &Value, as_json: bool) -> Result<String, CliError> {
    if as_json {
        return Ok(json(v));
    }
    let nodes: Vec<NodeInfo> = typed(v)?;
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| {
            let role = match n.role {
                ferrum_proto::msg::master::NodeRole::Meta => "metanode",
                ferrum_proto::msg::master::NodeRole::Data => "datanode",
            };
            let seen = n.last_heartbeat_ms.map_or("-".to_string(), |ms| format!("{:.1}s ago", ms as f64 / 1000.0));
            vec![
                n.id.to_string(),
                role.into(),
                n.advertise.clone(),
                n.host.clone(),
                if n.decommissioning {
                    format!("{}, decommissioning ({} left)", state(n.state), n.meta_partitions + n.data_partitions)
                } else {
                    state(n.state).into()
                },
                n.meta_partitions.to_string(),
                n.data_partitions.to_string(),
                n.leaders.to_string(),
                bytes(n.disk_free),
                bytes(n.disk_total),
                seen,
            ]
        })
        .collect();
    Ok(table(
        &["ID", "ROLE", "ADDRESS", "HOST", "STATUS", "META", "DATA", "LEADS", "DISK FREE", "DISK TOTAL", "HEARTBEAT"],
        &rows,
    ))
}

fn capacity(c: u64) -> String {
    if c == 0 {
        "unlimited".into()
    } else {
        bytes(c)
    }
}

pub fn volumes(v: &Value, as_json: bool) -> Result<String, CliError> {
    if as_json {
        return Ok(json(v));
    }
    let vols: Vec<VolumeInfo> = typed(v)?;
    let rows: Vec<Vec<String>> = vols
        .iter()
        .map(|v| {
            vec![
                v.id.to_string(),
                v.name.clone(),
                volume_state(v.state).into(),
                v.replicas.to_string(),
                capacity(v.capacity),
                v.owner.clone(),
                v.meta_partitions.to_string(),
                v.data_partitions.to_string(),
            ]
        })
        .collect();
    Ok(table(&["ID", "NAME", "STATE", "REPLICAS", "CAPACITY", "OWNER", "META", "DATA"], &rows))
}

fn volume_text(v: &VolumeInfo) -> String {
    format!(
        "name:        {}\nid:          {}\nstate:       {}\nreplicas:    {}\ncapacity:    {}\nowner:       {}\n\
         partitions:  {} meta, {} data\nview:        version {}\n",
        v.name,
        v.id,
        volume_state(v.state),
        v.replicas,
        capacity(v.capacity),
        v.owner,
        v.meta_partitions,
        v.data_partitions,
        v.view_version
    )
}

pub fn volume(v: &Value, as_json: bool) -> Result<String, CliError> {
    if as_json {
        return Ok(json(v));
    }
    Ok(volume_text(&typed(v)?))
}

pub fn created(v: &Value, as_json: bool) -> Result<String, CliError> {
    if as_json {
        return Ok(json(v));
    }
    let c: VolumeCreated = typed(v)?;
    let mut out = format!("created volume {:?}\n{}", c.volume.name, volume_text(&c.volume));
    for w in &c.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    Ok(out)
}

pub fn partitions(v: &Value, as_json: bool) -> Result<String, CliError> {
    if as_json {
        return Ok(json(v));
    }
    let parts: Vec<PartitionInfo> = typed(v)?;
    let rows: Vec<Vec<String>> = parts
        .iter()
        .map(|p| {
            let (kind, range) = match (p.kind, p.inodes) {
                (PartitionKind::Meta, Some(r)) if r.end.get() == u64::MAX => ("meta", format!("inodes {}..", r.start)),
                (PartitionKind::Meta, Some(r)) => ("meta", format!("inodes {}..{}", r.start, r.end)),
                (PartitionKind::Meta, None) => ("meta", "?".into()),
                (PartitionKind::Data, _) => {
                    ("data", if p.writable { "writable".into() } else { "read-only (full)".into() })
                }
            };
            let replicas: Vec<String> = p.replicas.iter().map(|r| format!("{}@{}", r.node, r.addr)).collect();
            vec![
                p.partition.to_string(),
                p.volume_name.clone(),
                kind.into(),
                replicas.join(","),
                p.leader.map_or("-".into(), |l| l.to_string()),
                format!("{}/{}", p.live_replicas, p.replicas.len()),
                range,
                if p.ready { "ready".into() } else { "creating".into() },
                bytes(p.used_bytes),
                p.items.to_string(),
            ]
        })
        .collect();
    Ok(table(&["ID", "VOLUME", "KIND", "REPLICAS", "LEADER", "LIVE", "RANGE", "STATE", "USED", "ITEMS"], &rows))
}
