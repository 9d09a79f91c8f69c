#!/usr/bin/env bash
# The project's main command (README): from a fresh clone to a mounted, 3-way replicated volume on this
# host. Installs what is missing, builds release binaries, then runs `ferrum dev up`: 3 masters,
# 3 metanodes and 3 datanodes, each its own process on its own ports, and a volume mounted at $FERRUM_MOUNT.
# Extra arguments go to `ferrum dev up` (e.g. --base-port 28000 --volume data).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --bins
BIN=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release
DIR=${FERRUM_DEV_DIR:-$HOME/.local/share/ferrum/dev}
MNT=${FERRUM_MOUNT:-/mnt/ferrum}
"$BIN/ferrum" dev up --dir "$DIR" --mount "$MNT" "$@"
cat <<MSG

Ferrum is mounted at $MNT. Next:
  $BIN/ferrum dev ps --dir $DIR                 # what runs where
  $BIN/ferrum cluster status --admin 127.0.0.1:27002
  $BIN/ferrum dev down --dir $DIR [--purge]     # unmount and stop (--purge deletes the data)
MSG
