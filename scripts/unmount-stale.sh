#!/usr/bin/env bash
# Lazily unmounts the Ferrum FUSE mounts that tests killed at their deadline left behind in the temp dirs
# (scripts/test.sh runs it before and after the suite). A mount is taken only when all of these hold:
#   - it is Ferrum's: source `ferrum:VOLUME` (the client's fsname), type fuse;
#   - it lies under ${TMPDIR:-/tmp} or /tmp, where the tests make their dirs;
#   - its server is gone: the kernel answers "Transport endpoint is not connected".
# So a live mount, e.g. of a test running concurrently or a developer's cluster, is never touched. (A test's
# `ferrum dev` cluster is brought down by its own watchdog when the test process dies; see
# tests/src/harness/dev/watchdog.rs.)
set -uo pipefail
roots=("${TMPDIR:-/tmp}" /tmp)
count=0
while read -r src mnt type _; do
    [[ $src == ferrum:* && $type == fuse* ]] || continue
    mnt=$(printf '%b' "$mnt") # /proc/mounts escapes spaces and such as \040
    under=no
    for r in "${roots[@]}"; do
        [[ $mnt == "${r%/}"/* ]] && under=yes
    done
    [[ $under == yes ]] || continue
    err=$(LC_ALL=C timeout 10 stat -- "$mnt" 2>&1 >/dev/null)
    if [[ $err == *"not connected"* ]]; then
        if fusermount3 -u -z -- "$mnt" 2>/dev/null || umount -l -- "$mnt" 2>/dev/null; then
            echo "unmount-stale: unmounted $mnt (its server was gone)" >&2
            count=$((count + 1))
        else
            echo "unmount-stale: cannot unmount $mnt" >&2
        fi
    fi
done </proc/mounts
[ "$count" -eq 0 ] || echo "unmount-stale: $count stale ferrum mount(s) removed" >&2
exit 0
