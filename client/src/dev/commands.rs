//! The `ferrum dev` subcommands.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::layout::{self, Counts, DevRole, InstanceSpec};
use super::process;
use super::state::{Cluster, Member};
use super::{cluster_api, table, DevCmd, UpArgs};
use crate::fuse::is_fuse_mount;

const STOP_GRACE: Duration = Duration::from_secs(10);

pub fn run(cmd: DevCmd) -> Result<(), String> {
    match cmd {
        DevCmd::Up(args) => up(args),
        DevCmd::Ps { dir, json } => {
            let c = Cluster::load(&dir)?;
            if json {
                println!("{}", table::json(&c));
            } else {
                table::print(&c);
            }
            Ok(())
        }
        DevCmd::Stop { dir, name, kill } => {
            let mut c = Cluster::load(&dir)?;
            let i = c.member(&name)?;
            match c.instances[i].pid {
                Some(pid) if process::alive(pid) => {
                    let killed = process::stop(pid, kill, STOP_GRACE);
                    println!("{name}: stopped (pid {pid}{})", if killed { ", killed" } else { "" });
                }
                _ => println!("{name}: not running"),
            }
            c.instances[i].pid = None;
            c.save()
        }
        DevCmd::Start { dir, name } => {
            let mut c = Cluster::load(&dir)?;
            let i = c.member(&name)?;
            if let Some(pid) = c.instances[i].pid.filter(|p| process::alive(*p)) {
                return Err(format!("{name} is already running (pid {pid})"));
            }
            let m = &c.instances[i];
            let pid = process::spawn(&m.argv, &m.log, &m.data_dir)?;
            c.instances[i].pid = Some(pid);
            c.save()?;
            println!("{name}: started (pid {pid}), log {}", c.instances[i].log.display());
            Ok(())
        }
        DevCmd::Down { dir, purge } => down(&dir, purge),
    }
}

fn sibling_binary(name: &str) -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find the ferrum binary: {e}"))?;
    let path = me.parent().map(|d| d.join(name)).unwrap_or_else(|| PathBuf::from(name));
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("{name} not found next to {} (build all binaries: cargo build --release --bins)", me.display()))
    }
}

fn argv(spec: &InstanceSpec, data_dir: &Path, masters: &[InstanceSpec]) -> Result<Vec<String>, String> {
    let bin = sibling_binary(spec.role.binary())?;
    let mut a = vec![
        bin.display().to_string(),
        "--listen".into(),
        spec.rpc.clone(),
        "--data-dir".into(),
        data_dir.display().to_string(),
        "--metrics-listen".into(),
        spec.metrics.clone(),
    ];
    let master_rpcs: Vec<String> = masters.iter().map(|m| m.rpc.clone()).collect();
    match spec.role {
        DevRole::Master => {
            a.extend(["--admin-listen".into(), spec.admin.clone().unwrap_or_default()]);
            a.extend(["--peers".into(), master_rpcs.join(",")]);
        }
        DevRole::Metanode | DevRole::Datanode => a.extend(["--master".into(), master_rpcs.join(",")]),
    }
    Ok(a)
}

fn up(args: UpArgs) -> Result<(), String> {
    if args.masters == 0 || args.metanodes == 0 || args.datanodes == 0 {
        return Err("a cluster needs at least one master, one metanode and one datanode".into());
    }
    if args.replicas == 0 || args.replicas as u16 > args.metanodes.min(args.datanodes) {
        return Err(format!(
            "--replicas {} needs at least that many metanodes and datanodes ({} and {})",
            args.replicas, args.metanodes, args.datanodes
        ));
    }
    std::fs::create_dir_all(&args.dir).map_err(|e| format!("{}: {e}", args.dir.display()))?;
    let dir = args.dir.canonicalize().map_err(|e| format!("{}: {e}", args.dir.display()))?;
    if let Ok(old) = Cluster::load(&dir) {
        let running: Vec<&str> =
            old.instances.iter().filter(|m| m.pid.is_some_and(process::alive)).map(|m| m.spec.name.as_str()).collect();
        if !running.is_empty() {
            return Err(format!(
                "a cluster is already running in {} ({}); stop it with `ferrum dev down --dir {}`",
                dir.display(),
                running.join(", "),
                dir.display()
            ));
        }
        return Err(format!(
            "{} holds a stopped cluster; restart its instances with `ferrum dev start`, or remove it with `ferrum dev down --purge --dir {}`",
            dir.display(),
            dir.display()
        ));
    }
    let counts = Counts { masters: args.masters, metanodes: args.metanodes, datanodes: args.datanodes };
    let specs = layout::plan(counts, args.base_port)?;
    layout::check_ports_free(&specs)?;
    let masters: Vec<InstanceSpec> = specs.iter().filter(|s| s.role == DevRole::Master).cloned().collect();

    let mut c = Cluster::new(&dir, args.base_port, args.replicas, &args.volume);
    for spec in &specs {
        let home = dir.join(&spec.name);
        let data_dir = home.join("data");
        std::fs::create_dir_all(&data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
        let log = home.join(format!("{}.log", spec.name));
        let argv = argv(spec, &data_dir, &masters)?;
        c.instances.push(Member { spec: spec.clone(), argv, data_dir, log, pid: None });
    }
    c.save()?;
    let result = start_all(&mut c, &args);
    if let Err(e) = result {
        let tails = failing_logs(&c);
        let _ = down(&dir, false);
        return Err(format!("{e}\n{tails}cluster stopped; its logs are under {}", dir.display()));
    }
    table::print(&c);
    Ok(())
}

fn start_all(c: &mut Cluster, args: &UpArgs) -> Result<(), String> {
    for i in 0..c.instances.len() {
        let m = &c.instances[i];
        let pid = process::spawn(&m.argv, &m.log, &m.data_dir)?;
        c.instances[i].pid = Some(pid);
        c.save()?;
    }
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    cluster_api::wait_ready(c, args.metanodes as usize, args.datanodes as usize, deadline)?;
    cluster_api::create_volume(c, &args.volume, args.replicas, deadline)?;
    if let Some(mnt) = &args.mount {
        mount(c, mnt, args.op_timeout, deadline)?;
    }
    Ok(())
}

fn mount(c: &mut Cluster, mnt: &Path, op_timeout: Option<f64>, deadline: Instant) -> Result<(), String> {
    std::fs::create_dir_all(mnt).map_err(|e| format!("mountpoint {}: {e}", mnt.display()))?;
    let mnt = mnt.canonicalize().map_err(|e| format!("mountpoint {}: {e}", mnt.display()))?;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut argv = vec![
        me.display().to_string(),
        "mount".into(),
        "--master".into(),
        c.master_rpc_addrs().join(","),
        "--volume".into(),
        c.volume.clone(),
        "--foreground".into(),
    ];
    if let Some(secs) = op_timeout {
        argv.extend(["--op-timeout".into(), secs.to_string()]);
    }
    argv.push(mnt.display().to_string());
    let log = c.dir.join("client.log");
    let pid = process::spawn(&argv, &log, &c.dir)?;
    c.mount = Some(mnt.clone());
    c.mount_pid = Some(pid);
    c.save()?;
    while !is_fuse_mount(&mnt) {
        if !process::alive(pid) {
            return Err(format!("the FUSE client exited before mounting; see {}", log.display()));
        }
        if Instant::now() > deadline {
            return Err(format!("{} was not mounted in time; see {}", mnt.display(), log.display()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn down(dir: &Path, purge: bool) -> Result<(), String> {
    let mut c = Cluster::load(dir)?;
    if let Some(mnt) = c.mount.clone() {
        if is_fuse_mount(&mnt) {
            let ok = std::process::Command::new("fusermount3").arg("-u").arg(&mnt).status().is_ok_and(|s| s.success());
            if !ok {
                // Busy (a shell inside it?): detach lazily so the client can still exit.
                let _ = std::process::Command::new("fusermount3").arg("-u").arg("-z").arg(&mnt).status();
            }
        }
        if let Some(pid) = c.mount_pid.take() {
            process::stop(pid, false, STOP_GRACE);
        }
    }
    // Clients of the masters first, masters last, so nothing spends its shutdown looking for a master.
    for role in [DevRole::Datanode, DevRole::Metanode, DevRole::Master] {
        let pids: Vec<u32> = c.instances.iter().filter(|m| m.spec.role == role).filter_map(|m| m.pid).collect();
        for &p in &pids {
            if process::alive(p) {
                process::signal(p, libc::SIGTERM);
            }
        }
        for &p in &pids {
            if !process::wait_gone(p, STOP_GRACE) {
                process::stop(p, true, STOP_GRACE);
            }
        }
        for m in c.instances.iter_mut().filter(|m| m.spec.role == role) {
            m.pid = None;
        }
    }
    c.save()?;
    if purge {
        std::fs::remove_dir_all(dir).map_err(|e| format!("removing {}: {e}", dir.display()))?;
        println!("stopped and removed {}", dir.display());
    } else {
        println!("stopped; data kept in {}", dir.display());
    }
    Ok(())
}

/// The last lines of the logs of instances that died, for the error message of a failed `up`.
fn failing_logs(c: &Cluster) -> String {
    let mut out = String::new();
    for m in &c.instances {
        if m.pid.is_some_and(|p| !process::alive(p)) {
            let text = std::fs::read_to_string(&m.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            out.push_str(&format!("{} exited; last lines of {}:\n", m.spec.name, m.log.display()));
            for l in tail.into_iter().rev() {
                out.push_str(&format!("  {l}\n"));
            }
        }
    }
    out
}
