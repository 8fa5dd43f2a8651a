#!/usr/bin/env python3
"""Where one `tupper run --rm` spends its time, from `strace -f -ttt -T` logs.

    profile.py OUT.json LOG...

Each LOG is one run (`strace -f -ttt -T -o LOG tupper run --rm ... /bin/true`). For
each run: the wall time from tupper's execve to its exit_group, the time inside
the snapshot and destroy ioctls, the rename that takes a spare snapshot from the
pool, clone3, the parent's wait for the child's setup and execve (the read on the
exec pipe), the wait for the command (ppoll), the child's own setup (its first
syscall to its execve), and, off the critical path, the forked pool refiller's
lifetime and snapshot ioctls. Saves the medians (a row missing from a run counts
as 0 there; runs_with says in how many runs it appeared).
strace slows every syscall, so the shares matter more than the absolute numbers.
"""

import json
import re
import statistics
import sys

LINE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(.*)$")
DUR = re.compile(r"<(\d+\.\d+)>\s*$")


def parse(path):
    calls = []  # (pid, start, name, args, dur)
    pending = {}
    for raw in open(path, errors="replace"):
        m = LINE.match(raw.rstrip("\n"))
        if not m:
            continue
        pid, ts, rest = int(m.group(1)), float(m.group(2)), m.group(3)
        if rest.endswith("<unfinished ...>"):
            name = rest.split("(", 1)[0]
            pending[(pid, name)] = (ts, rest)
            continue
        r = re.match(r"<\.\.\. (\w+) resumed>(.*)", rest)
        if r:
            name = r.group(1)
            start, head = pending.pop((pid, name), (ts, ""))
            rest = head + r.group(2)
        else:
            name, start = rest.split("(", 1)[0], ts
        d = DUR.search(rest)
        calls.append((pid, start, name, rest, float(d.group(1)) if d else 0.0, ts))
    return calls


def returned_pid(call):
    m = re.search(r"= (\d+) <", call[3])
    return int(m.group(1)) if m else None


def one_run(path):
    calls = parse(path)
    parent = calls[0][0]
    p = [c for c in calls if c[0] == parent]
    container = [returned_pid(c) for c in p if c[2] == "clone3"]
    # The refill runs in a grandchild (fork, fork, the middle exits): every
    # descendant of a plain fork of tupper is off the critical path.
    kids = {}
    for c in calls:
        if c[2] in ("clone", "fork", "vfork", "clone3"):
            kids.setdefault(c[0], []).append(returned_pid(c))
    bg_pids, todo = set(), [returned_pid(c) for c in p if c[2] in ("clone", "fork", "vfork")]
    while todo:
        q = todo.pop()
        if q is not None and q not in bg_pids:
            bg_pids.add(q)
            todo += kids.get(q, [])
    child = [c for c in calls if container and c[0] == container[0]]
    bg = [c for c in calls if c[0] in bg_pids]
    start = p[0][1]
    end = max(c[5] for c in p)
    cat = {}

    def add(key, v):
        cat[key] = cat.get(key, 0.0) + v

    for pid, st, name, rest, dur, _ in p:
        if name == "ioctl" and "SNAP_CREATE" in rest:
            add("snapshot ioctl (BTRFS_IOC_SNAP_CREATE_V2)", dur)
        elif name == "ioctl" and "SNAP_DESTROY" in rest:
            add("destroy ioctl (BTRFS_IOC_SNAP_DESTROY_V2)", dur)
        elif name == "renameat" and not ".json" in rest:
            add("take a spare (renameat pool -> containers)", dur)
        elif name == "clone3":
            add("clone3 (new namespaces)", dur)
        elif name in ("clone", "fork", "vfork", "wait4"):
            add("fork the pool refiller (and reap the middle process)", dur)
        elif name == "read" and '""' in rest and dur > 0:
            add("parent waits: child setup + execve", dur)
        elif name in ("ppoll", "waitid"):
            add("parent waits: the command runs and exits", dur)
        elif name == "execve":
            add("execve of tupper", dur)
        else:
            add("other parent syscalls", dur)
    out = {"wall_ms": (end - start) * 1e3}
    out.update({k: v * 1e3 for k, v in cat.items()})
    out["parent: between syscalls (user space, strace)"] = (end - start - sum(cat.values())) * 1e3
    if child:
        c0 = child[0][1]
        ex = [c for c in child if c[2] == "execve"]
        if ex:
            out["child: first syscall to execve start"] = (ex[0][1] - c0) * 1e3
            out["child: execve of the command"] = ex[0][4] * 1e3
        out["child: mount/pivot_root/umount2 calls"] = 1e3 * sum(
            c[4] for c in child if c[2] in ("mount", "pivot_root", "umount2")
        )
    if bg:
        snaps = [c[4] for c in bg if c[2] == "ioctl" and "SNAP_CREATE" in c[3]]
        out["off the path: refiller lifetime"] = (max(c[5] for c in bg) - bg[0][1]) * 1e3
        out["off the path: refiller snapshot ioctls (sum)"] = sum(snaps) * 1e3
        out["off the path: refiller snapshot ioctls (count)"] = float(len(snaps))
    return out


def main():
    dest, logs = sys.argv[1], sys.argv[2:]
    runs = [one_run(p) for p in logs]
    keys = []
    for r in runs:
        keys += [k for k in r if k not in keys]
    med = {k: statistics.median(r.get(k, 0.0) for r in runs) for k in keys}
    # Rows that only some runs have (a pool hit has no snapshot ioctl): how many.
    seen = {k: sum(1 for r in runs if k in r) for k in keys}
    json.dump({"runs": len(runs), "median_ms": med, "runs_with": seen}, open(dest, "w"), indent=1)


if __name__ == "__main__":
    main()
