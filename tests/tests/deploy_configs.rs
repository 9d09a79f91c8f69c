//! The example deployments in `deploy/` are loaded by the same code the services use at start-up, so
//! an example that no longer matches the config schema (a renamed or removed key) fails here.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ferrum_raftstore::instance::{self, InstanceArgs, InstanceConfig};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn args(file: &Path) -> InstanceArgs {
    InstanceArgs { config: Some(file.to_path_buf()), ..Default::default() }
}

fn load(role: &str, file: &Path) -> InstanceConfig {
    let a = args(file);
    let r = match role {
        "master" => instance::load::<ferrum_master::MasterSection>(&a, "master").map(|(c, _)| c),
        "metanode" => instance::load::<ferrum_metanode::MetaConfig>(&a, "metanode").map(|(c, _)| c),
        "datanode" => instance::load::<ferrum_datanode::DataConfig>(&a, "datanode").map(|(c, _)| c),
        other => panic!("unknown role {other}"),
    };
    r.unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

#[test]
fn one_host_layout_loads_and_uses_distinct_ports_and_dirs() {
    let mut ports = HashSet::new();
    let mut dirs = HashSet::new();
    for role in ["master", "metanode", "datanode"] {
        for i in 1..=3 {
            let file = deploy().join(format!("one-host/{role}{i}.toml"));
            let c = load(role, &file);
            assert!(ports.insert(c.listen), "{}: port {} used twice", file.display(), c.listen);
            if let Some(m) = c.metrics_listen {
                assert!(ports.insert(m), "{}: port {m} used twice", file.display());
            }
            assert!(dirs.insert(c.data_dir.clone()), "{}: data dir used twice", file.display());
        }
    }
    assert_eq!(dirs.len(), 9);
}

#[test]
fn three_host_layout_loads() {
    for role in ["master", "metanode", "datanode"] {
        load(role, &deploy().join(format!("three-hosts/{role}.toml")));
    }
}

/// A unit must run a binary the workspace builds, with a config that exists in the examples, and
/// every variable it uses must be set in the shared environment file.
#[test]
fn systemd_units_point_at_real_binaries_and_configs() {
    let env = std::fs::read_to_string(deploy().join("systemd/ferrum.env")).unwrap();
    let defined: HashSet<&str> = env
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
        .collect();
    for role in ["master", "metanode", "datanode"] {
        let unit = std::fs::read_to_string(deploy().join(format!("systemd/ferrum-{role}@.service"))).unwrap();
        for section in ["[Unit]", "[Service]", "[Install]"] {
            assert!(unit.contains(section), "ferrum-{role}@.service lacks {section}");
        }
        let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart");
        let mut words = exec.split_whitespace();
        let bin = words.next().unwrap();
        assert_eq!(bin, format!("/usr/local/bin/ferrum-{role}"));
        assert!(
            ferrum_tests::harness::binary(&format!("ferrum-{role}")).is_file(),
            "the unit runs ferrum-{role}, which the workspace must build"
        );
        let rest: Vec<&str> = words.collect();
        let cfg = rest.windows(2).find(|w| w[0] == "--config").map(|w| w[1]).expect("--config");
        for i in 1..=3 {
            let name = cfg.replace("/etc/ferrum/", "").replace("%i", &i.to_string());
            let file = deploy().join("one-host").join(&name);
            load(role, &file);
        }
        for var in exec.split("${").skip(1).filter_map(|s| s.split_once('}').map(|(v, _)| v)) {
            assert!(defined.contains(var), "ferrum-{role}@.service uses ${{{var}}}, not set in ferrum.env");
        }
        // The flags a unit passes must be flags the binary accepts.
        let help = std::process::Command::new(ferrum_tests::harness::binary(&format!("ferrum-{role}")))
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&help.stdout);
        for flag in rest.iter().filter(|w| w.starts_with("--")) {
            assert!(help.contains(flag), "ferrum-{role} --help does not list {flag}");
        }
    }
}
