#!/usr/bin/env bash
# Installs what building and testing Ferrum needs on Debian/Ubuntu, only when it is missing:
#   librocksdb-dev  the RocksDB C++ library the `rocksdb` crate links against (see README "Build")
#   libclang-dev    bindgen (rocksdb's -sys crate) needs libclang
#   fuse3           fusermount3, which the FUSE client uses to mount without libfuse
#   fio             the fio verify tests on the mount
#   sqlite3, git    the real-workload tests on the mount (tests/tests/fuse_workloads.rs)
# and pjdfstest from crates.io.
set -euo pipefail
PKGS=(librocksdb-dev libclang-dev fuse3 fio sqlite3 git)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust (rustup) first" >&2; exit 1; }
# cargo-nextest (the test runner) and pjdfstest (the POSIX conformance suite the FUSE tests run), from crates.io.
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "setup: installing cargo-nextest" >&2
    cargo install cargo-nextest --locked --quiet
fi
if ! command -v pjdfstest >/dev/null; then
    echo "setup: installing pjdfstest" >&2
    cargo install pjdfstest --version '^0.2' --locked --quiet
fi
