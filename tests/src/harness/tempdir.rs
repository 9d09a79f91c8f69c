//! A failed multi-process test is debugged from what it left on disk (logs, data dirs), so the temp dir is kept
//! when the test panics and removed when it passes. Declare it before the `Proc`s that use it: locals drop in
//! reverse order, so the processes are killed (and their logs dumped) before the dir goes away.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// A per-test temp dir under `$TMPDIR`, named after the test.
pub struct TestDir {
    dir: Option<TempDir>,
}

impl TestDir {
    /// A dir named after the current test. libtest names each test's thread after the test, so this works from
    /// the test body (also inside `#[tokio::test]`, whose body runs on the test thread).
    pub fn new() -> TestDir {
        let thread = std::thread::current();
        TestDir::named(thread.name().unwrap_or("test"))
    }

    /// A dir whose name starts with `ferrum-<name>-` (non-filename characters replaced).
    pub fn named(name: &str) -> TestDir {
        let clean: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
        let dir = tempfile::Builder::new()
            .prefix(&format!("ferrum-{clean}-"))
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temp dir for {name}: {e}"));
        TestDir { dir: Some(dir) }
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("TestDir is live until dropped").path()
    }

    /// `<dir>/<name>`, not created: for files (configs) and for paths a server must create itself.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }

    /// `<dir>/<name>` as a directory, created (with parents) if missing: one per instance, e.g. `sub("meta1")`.
    pub fn sub(&self, name: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        path
    }
}

impl Default for TestDir {
    fn default() -> Self {
        TestDir::new()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        if std::thread::panicking() {
            eprintln!("[harness] test failed: keeping {}", dir.keep().display());
        }
        // Otherwise `dir` drops here and removes the tree; a removal error is not worth failing a passed test.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_when_the_test_passes() {
        let dir = TestDir::new();
        let sub = dir.sub("a/b");
        assert!(sub.is_dir());
        assert!(dir.path().file_name().unwrap().to_str().unwrap().contains("removed_when_the_test_passes"));
        let path = dir.path().to_path_buf();
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn kept_when_the_test_panics() {
        let (tx, rx) = std::sync::mpsc::channel();
        let r = std::thread::spawn(move || {
            let dir = TestDir::named("kept");
            tx.send(dir.path().to_path_buf()).unwrap();
            panic!("boom");
        })
        .join();
        assert!(r.is_err());
        let path = rx.recv().unwrap();
        assert!(path.is_dir());
        std::fs::remove_dir_all(path).unwrap();
    }
}
