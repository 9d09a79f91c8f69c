//! pjdfstest (the Rust suite from crates.io, 0.2) against a mount. Missing pjdfstest is a failure with
//! instructions, never a skip. Two unprivileged users stand in for its test users: `nobody:nogroup`
//! and `daemon:daemon` (present on Debian).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Tests skipped for reasons outside the filesystem under test: the suite's read-only remount
/// (`allow_remount`), a second filesystem (`EXDEV`), and `LINK_MAX` (not reported through FUSE).
pub const EXPECTED_SKIPS: usize = 16;

fn binary() -> PathBuf {
    let cargo_bin = std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/bin/pjdfstest"));
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("pjdfstest"))
        .chain(cargo_bin)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("pjdfstest not found: install it with `cargo install pjdfstest --version ^0.2 --locked`")
        })
}

/// A mountpoint with a short path: the suite binds Unix sockets under it, and a socket path is limited
/// to 108 bytes (a test's temp dir path alone is half of that).
pub fn short_mountpoint() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("fpj").tempdir_in("/tmp").expect("temp mountpoint")
}

/// Runs the whole suite in a fresh directory under `mnt`; returns (passed, failed, skipped) and the
/// names of the failures (the suite's output is printed when there are any).
pub fn run(dir: &Path, mnt: &Path) -> (usize, usize, usize, Vec<String>) {
    let config = dir.join("pjdfstest.toml");
    std::fs::write(
        &config,
        "[features]\nposix_fallocate = {}\nrename_ctime = {}\nutime_now = {}\nutimensat = {}\n\
         [settings]\nnaptime = 0.01\nallow_remount = false\n\
         [dummy_auth]\nentries = [[\"nobody\", \"nogroup\"], [\"daemon\", \"daemon\"]]\n",
    )
    .unwrap();
    let work = mnt.join("pjdfstest");
    std::fs::create_dir(&work).unwrap();
    std::fs::set_permissions(&work, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let out = Command::new(binary()).arg("-c").arg(&config).arg("-p").arg(&work).current_dir(&work).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let summary = text.lines().find(|l| l.starts_with("Summary:")).unwrap_or_else(|| panic!("no summary:\n{text}"));
    let count = |what: &str| -> usize {
        summary
            .split(',')
            .find(|p| p.contains(what))
            .and_then(|p| p.split_whitespace().find_map(|w| w.parse().ok()))
            .unwrap_or_else(|| panic!("no {what} count in {summary:?}"))
    };
    let failures: Vec<String> = text
        .lines()
        .filter(|l| l.contains("::") && !l.starts_with(char::is_whitespace))
        .filter(|l| !l.trim_end().ends_with("ok") && !l.trim_end().ends_with("skipped"))
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        .collect();
    eprintln!("pjdfstest on {}: {summary}", mnt.display());
    if !failures.is_empty() {
        eprintln!("{text}");
    }
    (count("passed"), count("failed"), count("skipped"), failures)
}
