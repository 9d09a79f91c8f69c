//! A source tree for the untar workload, generated deterministically (no network, no toolchain tarball
//! needed): thousands of small files in nested directories, a few MiB-sized files, symlinks (some dangling),
//! hard links, empty directories, varied modes and fixed mtimes, like an unpacked source release.
//! [`listing`] describes a tree (every entry's path, kind, mode, size, link target, link count) so a copy can
//! be compared with its source entry by entry.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

/// What one generated tree holds (for the test's log).
#[derive(Debug, Default)]
pub struct Shape {
    pub files: usize,
    pub dirs: usize,
    pub symlinks: usize,
    pub hard_links: usize,
    pub bytes: u64,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(len);
        v
    }
}

/// Writes the tree under `root/tree` with `files` regular files (plus `big` files of 1-3 MiB).
pub fn generate(root: &Path, files: usize, big: usize) -> Shape {
    let mut rng = Rng(0x7EE5_EED5);
    let mut shape = Shape::default();
    let top = root.join("tree");
    let mut dirs = vec![top.clone()];
    for a in 0..8 {
        for b in 0..6 {
            for c in 0..3 {
                dirs.push(top.join(format!("mod{a}/sub{b}/leaf{c}")));
            }
        }
    }
    dirs.push(top.join("empty/also-empty"));
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap();
    }
    shape.dirs = walkdir_count(&top);
    let mtime = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut made = Vec::new();
    for i in 0..files + big {
        let dir = &dirs[rng.below(dirs.len() as u64 - 1) as usize + 1];
        let (path, len) = if i < big {
            (dir.join(format!("blob{i}.bin")), (1 << 20) + rng.below(2 << 20) as usize)
        } else {
            // Mostly small, some tens of KiB, a few empty: the spread of a source tree.
            let len = match rng.below(20) {
                0 => 0,
                1..=2 => 16 << 10 | rng.below(48 << 10) as usize,
                _ => rng.below(6 << 10) as usize,
            };
            (dir.join(format!("f{i:05}.{}", ["rs", "c", "h", "txt", "toml"][i % 5])), len)
        };
        let f = std::fs::File::create(&path).unwrap();
        std::io::Write::write_all(&mut &f, &rng.bytes(len)).unwrap();
        f.set_modified(mtime).unwrap();
        let mode = [0o644, 0o755, 0o600, 0o444][rng.below(4) as usize];
        f.set_permissions(std::fs::Permissions::from_mode(mode)).unwrap();
        shape.bytes += len as u64;
        made.push(path);
    }
    shape.files = made.len();
    for i in 0..files / 20 {
        let target = &made[rng.below(made.len() as u64) as usize];
        let dir = &dirs[rng.below(dirs.len() as u64) as usize];
        let rel = relative(dir, target);
        let link = dir.join(format!("link{i:04}"));
        if i % 10 == 0 {
            std::os::unix::fs::symlink(format!("../missing/target{i}"), &link).unwrap();
        } else if i % 10 == 1 {
            std::os::unix::fs::symlink(relative(dir, target.parent().unwrap()), &link).unwrap();
        } else {
            std::os::unix::fs::symlink(rel, &link).unwrap();
        }
        shape.symlinks += 1;
    }
    for i in 0..files / 100 {
        let target = &made[big + rng.below((made.len() - big) as u64) as usize];
        std::fs::hard_link(target, target.with_file_name(format!("hard{i:03}"))).unwrap();
        shape.hard_links += 1;
    }
    shape
}

fn walkdir_count(top: &Path) -> usize {
    let mut n = 1;
    for e in std::fs::read_dir(top).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            n += walkdir_count(&e.path());
        }
    }
    n
}

/// `target` as seen from `dir` (both under the same root): `../../x/y`.
fn relative(dir: &Path, target: &Path) -> String {
    let d: Vec<_> = dir.components().collect();
    let t: Vec<_> = target.components().collect();
    let common = d.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".into(); d.len() - common];
    parts.extend(t[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned()));
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// Every entry under `top` by relative path: kind, permission bits, size (files), target (symlinks), link
/// count (files) and mtime (files). Contents are compared by checksum separately.
pub fn listing(top: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(top, top, &mut out);
    out
}

fn walk(top: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let e = e.unwrap();
        let path = e.path();
        let rel = path.strip_prefix(top).unwrap().display().to_string();
        let m = std::fs::symlink_metadata(&path).unwrap();
        let mode = m.permissions().mode() & 0o7777;
        let desc = if m.file_type().is_symlink() {
            format!("symlink -> {}", std::fs::read_link(&path).unwrap().display())
        } else if m.is_dir() {
            walk(top, &path, out);
            format!("dir {mode:o}")
        } else {
            format!("file {mode:o} {} bytes, {} links, mtime {}", m.len(), m.nlink(), m.mtime())
        };
        out.insert(rel, desc);
    }
}
