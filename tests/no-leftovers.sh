#!/usr/bin/env bash
# Checks, after the test suite, that nothing of the tests remains: no test store
# directory, loop device, mount, container process, detached tupper process
# or container cgroup.
# The harness (tests/common/mod.rs) names everything it makes
# $TMPDIR/tupper-test-PID-N; containers are recognised by their root mount, a
# btrfs snapshot under /containers/ on a loop device backed by such a file.
# Usage: tests/no-leftovers.sh   (exit 1 and a list when something is left)
set -uo pipefail
tmp=${TMPDIR:-/tmp}
pattern="$tmp/tupper-test-"
left=()

for d in "$tmp"/tupper-test-*; do
    [ -e "$d" ] && left+=("directory $d")
done

while read -r line; do
    [ -n "$line" ] && left+=("loop device $line")
done < <(losetup -a 2>/dev/null | grep -F "$pattern")

while read -r line; do
    [ -n "$line" ] && left+=("mount $line")
done < <(grep -F "$pattern" /proc/self/mountinfo)

# Is /dev/loopN backed by a test file?
test_loop() {
    local dev=${1#/dev/}
    local f="/sys/block/$dev/loop/backing_file"
    [ -r "$f" ] && grep -qF "$pattern" "$f"
}

for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$pid" = $$ ] && continue
    # The root mount of the process's mount namespace.
    root_line=$(awk '$5 == "/" { print; exit }' "$p/mountinfo" 2>/dev/null) || continue
    case "$root_line" in
    *" - btrfs /dev/loop"*"subvol=/containers/"*)
        dev=$(sed -E 's/.* - btrfs (\/dev\/loop[0-9]+) .*/\1/' <<<"$root_line")
        if test_loop "$dev"; then
            left+=("container process $pid ($(cat "$p/comm" 2>/dev/null))")
        fi
        ;;
    esac
    # Detached tupper processes (pool refills) still holding a test store open.
    if [ "$(cat "$p/comm" 2>/dev/null)" = tupper ]; then
        if ls -l "$p/fd" 2>/dev/null | grep -qF "$pattern"; then
            left+=("tupper process $pid with a test store open")
        fi
    fi
done

# tests/bench/start-path check (run by tests/run-tests) keeps its store in
# ${BENCH_DIR:-/var/tmp}/tupper-start-path.*.
for d in "${BENCH_DIR:-/var/tmp}"/tupper-start-path.*; do
    [ -e "$d" ] && left+=("directory $d")
done
while read -r line; do
    [ -n "$line" ] && left+=("loop device $line")
done < <(losetup -a 2>/dev/null | grep -F "/tupper-start-path.")

# Containers' cgroups: the default parent, tupper/, goes with its last
# container; tests with --cgroup-parent name theirs tupper-test-* and
# remove them.
for d in /sys/fs/cgroup/*/tupper /sys/fs/cgroup/tupper /sys/fs/cgroup/*/tupper-test-* /sys/fs/cgroup/tupper-test-*; do
    [ -d "$d" ] && left+=("cgroup $d")
done

if [ ${#left[@]} -gt 0 ]; then
    echo "tests/no-leftovers.sh: the tests left:" >&2
    printf '  %s\n' "${left[@]}" >&2
    exit 1
fi
echo "no leftovers: no test store, loop device, mount, process or cgroup remains"
