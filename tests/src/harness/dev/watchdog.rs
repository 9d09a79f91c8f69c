//! A dev cluster's processes are not the test's children (`ferrum dev up` starts them in their own process
//! groups, and they outlive it), so a test killed outright (nextest's deadline, ^C) would leave a cluster
//! running and its volume mounted. The watchdog is a tiny shell loop, in its own process group so the signal
//! that kills the test does not reach it, that runs `ferrum dev down` once the test process is gone. A test
//! that ends normally brings its cluster down itself and then stops the watchdog.

use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct Watchdog {
    child: Child,
}

impl Watchdog {
    pub fn start(ferrum: &Path, dir: &Path, log: &Path) -> Watchdog {
        use std::os::unix::process::CommandExt;
        let script = r#"while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec "$2" dev down --dir "$3""#;
        let log = std::fs::File::create(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let child = Command::new("/bin/sh")
            .args(["-c", script, "ferrum-dev-watchdog"])
            .arg(std::process::id().to_string())
            .arg(ferrum)
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log fd"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start the dev-cluster watchdog (/bin/sh)");
        Watchdog { child }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
