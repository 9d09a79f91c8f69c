#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs what is missing, builds every binary, runs every
# test. Multi-process tests start the real binaries, so they are built first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# A target dir outside the clone survives fresh clones (CI), so unchanged dependencies are not rebuilt.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/ferrum/target}
export RUST_BACKTRACE=1
# Mounts whose server died with a test killed at its deadline would linger; sweep them now and at the end.
scripts/unmount-stale.sh
trap scripts/unmount-stale.sh EXIT
cargo build --workspace --bins --locked
# cargo-nextest: one process per test, a deadline per test (.config/nextest.toml).
cargo nextest run --workspace --locked --no-tests fail
# nextest does not run doc tests.
cargo test --workspace --locked --doc
