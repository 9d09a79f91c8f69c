//! Real workloads on a volume of a cluster started by `ferrum dev up` (3 masters, 3 metanodes, 3
//! datanodes, 3 replicas), through the kernel: unpacking a large tarball and checking every file against
//! its source, a git repository built over several commits and checked by `git fsck --full`, and SQLite
//! databases in WAL and rollback-journal modes checked by `PRAGMA integrity_check`, also after a remount.
//! A missing tool (tar, sha256sum, git, sqlite3) is a failure: scripts/setup.sh installs them.

mod fuse_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use ferrum_tests::harness::{DevCluster, TestDir};
use fuse_support::tree;

/// Runs `program args` in `dir`, feeding it `stdin`; returns stdout, panics with both streams on failure.
fn run(dir: &Path, program: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(dir).stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}); scripts/setup.sh installs it"));
    if let Some(input) = stdin {
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "`{program} {}` in {} failed ({}):\n{stdout}\n{stderr}",
        args.join(" "),
        dir.display(),
        out.status
    );
    stdout.into_owned()
}

/// Small files in the tarball (plus 6 of 1-3 MiB, symlinks and hard links): each costs a create, a write
/// and a close (data acknowledged by a majority), a chown, a chmod and a utimes through Raft, ~30 ms in a
/// debug build on 2 cores; 1200 keep the test under a minute there.
const FILES: usize = 1200;

#[test]
fn untar_a_large_tarball_and_compare_every_file() {
    let dir = TestDir::new();
    let src = dir.sub("src");
    let t = Instant::now();
    let shape = tree::generate(&src, FILES, 6);
    run(&src, "tar", &["--sort=name", "-cf", "../tree.tar", "tree"], None);
    let manifest = run(&src, "sh", &["-c", "find tree -type f -print0 | sort -z | xargs -0 sha256sum"], None);
    let tar_len = std::fs::metadata(dir.join("tree.tar")).unwrap().len();
    eprintln!("generated {shape:?}: a {} MiB tarball in {:?}", tar_len >> 20, t.elapsed());

    let c = DevCluster::up(dir.path());
    let t = Instant::now();
    run(c.mnt(), "tar", &["-xf", &dir.join("tree.tar").display().to_string()], None);
    eprintln!("untar on the mount: {:?}", t.elapsed());
    let check = |what: &str| {
        let t = Instant::now();
        std::fs::write(dir.join("manifest"), &manifest).unwrap();
        // Every file's content (sha256), then what tar itself recorded: modes, mtimes, sizes, link targets.
        run(c.mnt(), "sha256sum", &["--quiet", "--strict", "-c", &dir.join("manifest").display().to_string()], None);
        run(c.mnt(), "tar", &["--compare", "-f", &dir.join("tree.tar").display().to_string()], None);
        // And nothing more or less than the source: every entry, its kind, mode, size, target, link count.
        let (want, got) = (tree::listing(&src.join("tree")), tree::listing(&c.mnt().join("tree")));
        assert_eq!(want.len(), got.len(), "{what}: entry count");
        for (path, desc) in &want {
            assert_eq!(got.get(path), Some(desc), "{what}: {path}");
        }
        eprintln!("{what}: {} entries, {} files checked in {:?}", want.len(), manifest.lines().count(), t.elapsed());
    };
    check("after untar");
    c.remount();
    check("after remount");
    c.down();
}

#[test]
fn git_repository_with_several_commits_passes_fsck() {
    let dir = TestDir::new();
    let c = DevCluster::up(dir.path());
    let repo = c.mnt().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let git = |args: &[&str]| {
        let mut all = vec!["-c", "user.name=Ferrum Test", "-c", "user.email=test@ferrum.invalid"];
        all.extend_from_slice(args);
        run(&repo, "git", &all, None)
    };
    let t = Instant::now();
    git(&["init", "-q", "-b", "main"]);
    let (commits, per_commit) = (4, 50);
    for round in 0..commits {
        // New files every round in nested dirs; some earlier ones edited, renamed or deleted.
        for i in 0..per_commit {
            let d = repo.join(format!("src/m{}/s{}", i % 5, (i + round) % 4));
            std::fs::create_dir_all(&d).unwrap();
            let body: String =
                (0..(i * 7 + round) % 40 + 1).map(|l| format!("// round {round} file {i} line {l}\n")).collect();
            std::fs::write(d.join(format!("r{round}_f{i}.rs")), body).unwrap();
        }
        if round > 0 {
            let prev = round - 1;
            std::fs::write(repo.join(format!("src/m0/s{}/r{prev}_f0.rs", prev % 4)), format!("edited in {round}\n"))
                .unwrap();
            git(&["mv", &format!("src/m1/s{}/r{prev}_f1.rs", (1 + prev) % 4), &format!("renamed_{prev}.rs")]);
            git(&["rm", "-q", &format!("src/m2/s{}/r{prev}_f2.rs", (2 + prev) % 4)]);
        }
        git(&["add", "-A"]);
        git(&["commit", "-q", "-m", &format!("round {round}")]);
    }
    // Packs, rewrites and deletes the loose objects: rename, unlink, fsync and mmap'd reads on the mount.
    git(&["gc", "-q"]);
    git(&["fsck", "--full", "--strict", "--no-progress"]);
    assert_eq!(git(&["rev-list", "--count", "HEAD"]).trim(), commits.to_string());
    let files = git(&["ls-files"]).lines().count();
    assert_eq!(files, per_commit * commits - (commits - 1), "tracked files (one deleted per round after the first)");
    assert_eq!(git(&["status", "--porcelain"]), "", "the work tree matches HEAD");
    eprintln!("git: {commits} commits, {files} files, gc and fsck in {:?}", t.elapsed());

    // A new client sees the same repository; a clone from it to local disk is complete.
    c.remount();
    git(&["fsck", "--full", "--strict", "--no-progress"]);
    let head = git(&["rev-parse", "HEAD"]);
    run(dir.path(), "git", &["clone", "-q", "--no-hardlinks", &repo.display().to_string(), "clone"], None);
    assert_eq!(run(&dir.join("clone"), "git", &["rev-parse", "HEAD"], None), head);
    assert_eq!(run(&dir.join("clone"), "git", &["ls-files"], None).lines().count(), files);
    c.down();
}

/// `transactions` transactions on a fresh database in `journal_mode`, each inserting 10 rows, updating and
/// deleting some, plus one rolled back; returns the SQL and the expected `count(*)|sum(n)`.
fn sqlite_script(journal_mode: &str, transactions: usize) -> (String, String) {
    let mut sql = format!(
        ".bail on\nPRAGMA journal_mode={journal_mode};\nPRAGMA synchronous=FULL;\n\
         CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER NOT NULL, body TEXT NOT NULL);\nCREATE INDEX t_n ON t(n);\n"
    );
    let (mut rows, mut sum) = (std::collections::BTreeMap::<u64, u64>::new(), 0u64);
    let mut next = 1u64;
    for tx in 0..transactions {
        sql.push_str("BEGIN;\n");
        for _ in 0..10 {
            let n = (next * 7919) % 1000;
            sql.push_str(&format!("INSERT INTO t VALUES({next}, {n}, printf('%.*c', {}, 'x'));\n", 50 + n % 400));
            rows.insert(next, n);
            next += 1;
        }
        // Touch older rows too, so pages all over the file change.
        let old = 1 + (tx as u64 * 13) % next;
        if let Some(n) = rows.get_mut(&old) {
            *n += 1;
            sql.push_str(&format!("UPDATE t SET n = n + 1 WHERE id = {old};\n"));
        }
        if tx % 3 == 0 {
            let gone = 1 + (tx as u64 * 31) % next;
            rows.remove(&gone);
            sql.push_str(&format!("DELETE FROM t WHERE id = {gone};\n"));
        }
        sql.push_str("COMMIT;\n");
        if tx == transactions / 2 {
            sql.push_str("BEGIN;\nDELETE FROM t;\nINSERT INTO t VALUES(-1, 0, 'never');\nROLLBACK;\n");
        }
    }
    for n in rows.values() {
        sum += n;
    }
    sql.push_str("PRAGMA integrity_check;\nSELECT count(*) || '|' || sum(n) FROM t;\n");
    (sql, format!("{}|{sum}", rows.len()))
}

/// Each commit is an fsync of the database (and of the journal, in rollback mode) through Raft.
const TRANSACTIONS: usize = 150;

#[test]
fn sqlite_in_wal_and_rollback_journal_modes_passes_integrity_check() {
    let dir = TestDir::new();
    let c = DevCluster::up(dir.path());
    let db = c.mnt().join("db");
    std::fs::create_dir(&db).unwrap();
    let check = |name: &str, want: &str| {
        let out =
            run(&db, "sqlite3", &[name], Some("PRAGMA integrity_check;\nSELECT count(*) || '|' || sum(n) FROM t;\n"));
        assert_eq!(out, format!("ok\n{want}\n"), "{name}");
    };
    let mut expected = Vec::new();
    for (name, mode) in [("wal.db", "WAL"), ("journal.db", "DELETE")] {
        let t = Instant::now();
        let (sql, want) = sqlite_script(mode, TRANSACTIONS);
        let out = run(&db, "sqlite3", &[name], Some(&sql));
        assert_eq!(out, format!("{}\nok\n{want}\n", mode.to_lowercase()), "{name}: journal mode, integrity, contents");
        check(name, &want);
        eprintln!("sqlite {mode}: {TRANSACTIONS} transactions, integrity ok, {want} (rows|sum) in {:?}", t.elapsed());
        expected.push((name, want));
    }
    // A new client (nothing cached in it or in the kernel's page cache for this mount) reads both again.
    c.remount();
    for (name, want) in &expected {
        check(name, want);
    }
    c.down();
}
