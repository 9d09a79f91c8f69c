//! Binaries are looked up, never built here: building from inside a test would race the outer cargo for the
//! target-dir lock and hide a stale-binary problem. A missing binary is a loud failure, never a skipped test.

use std::env;
use std::path::{Path, PathBuf};

/// Env override: a directory holding the binaries (e.g. a release build, or binaries installed elsewhere).
pub const BIN_DIR_ENV: &str = "FERRUM_BIN_DIR";

/// Absolute path of the workspace binary `name` (e.g. `"ferrum-master"`).
///
/// Looks in, in order: `$FERRUM_BIN_DIR`; the directory of the test executable's profile (a test runs from
/// `<target>/<profile>/deps/`, binaries sit in `<target>/<profile>/`); `$CARGO_TARGET_DIR/<profile>/`.
/// With `FERRUM_BIN_DIR` set, only that directory is searched, so an override never silently falls back.
///
/// Panics with instructions when the binary is not found.
pub fn binary(name: &str) -> PathBuf {
    let file = format!("{name}{}", env::consts::EXE_SUFFIX);

    if let Some(dir) = env::var_os(BIN_DIR_ENV) {
        let path = Path::new(&dir).join(&file);
        if path.is_file() {
            return path;
        }
        panic!(
            "binary `{name}` not found at {} ({BIN_DIR_ENV} is set to {}); build it, or unset {BIN_DIR_ENV} to use \
             the cargo target dir",
            path.display(),
            Path::new(&dir).display(),
        );
    }

    let candidates = candidate_dirs();
    for dir in &candidates {
        let path = dir.join(&file);
        if path.is_file() {
            return path;
        }
    }
    let searched: Vec<String> = candidates.iter().map(|d| d.display().to_string()).collect();
    panic!(
        "binary `{name}` not found (searched: {}). Run `cargo build --workspace --bins` first (with the same \
         CARGO_TARGET_DIR and profile as the tests), or set {BIN_DIR_ENV} to the directory holding it.",
        if searched.is_empty() { "nothing".to_string() } else { searched.join(", ") },
    );
}

/// Directories that may hold the workspace binaries, most specific first, without duplicates.
fn candidate_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut profile = "debug".to_string();

    if let Ok(exe) = env::current_exe() {
        if let Some(mut dir) = exe.parent().map(Path::to_path_buf) {
            // Integration tests and lib unit tests live in `deps/`; examples in `examples/`.
            if dir.file_name().is_some_and(|n| n == "deps" || n == "examples") {
                dir.pop();
            }
            if let Some(p) = dir.file_name().and_then(|n| n.to_str()) {
                profile = p.to_string();
            }
            dirs.push(dir);
        }
    }

    if let Some(target) = env::var_os("CARGO_TARGET_DIR") {
        let target = PathBuf::from(target);
        // A relative CARGO_TARGET_DIR is relative to where cargo ran; a test runs in its package dir, so also
        // try the workspace root (the parent of this package).
        let mut roots = vec![target.clone()];
        if target.is_relative() {
            roots.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(&target));
        }
        for root in roots {
            let dir = root.join(&profile);
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_dirs_start_with_the_profile_dir_of_the_test_exe() {
        let exe = env::current_exe().unwrap();
        let dirs = candidate_dirs();
        assert_eq!(Some(dirs[0].as_path()), exe.parent().and_then(Path::parent));
    }

    #[test]
    #[should_panic(expected = "cargo build --workspace --bins")]
    fn missing_binary_panics_with_instructions() {
        // Not run under FERRUM_BIN_DIR in CI; if it is set, the message differs and this test says so.
        assert!(env::var_os(BIN_DIR_ENV).is_none(), "unset {BIN_DIR_ENV} to run this test");
        binary("ferrum-no-such-binary");
    }
}
