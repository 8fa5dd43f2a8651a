#!/usr/bin/env python3
"""Waits until a tupper store is at rest (tests/bench/run and scale.py use it).

    quiesce.py STORE [LIMIT_S] [--no-cleaner]

At rest means: no background process of `tupper run` at work (a refill holds
an flock on pool/KEY.lock, the network namespace pools on netns.lock and
netns/*.lock while they work: each is taken and released twice in a row), every
snapshot pool full (POOL_SIZE spares, `TUPPER_POOL` or 128: a forked refill may
not have taken its lock yet), the trash empty, and btrfs's cleaner done with the
subvolumes destroyed so far (`btrfs subvolume sync`, an oracle the harness may
use). So each measurement starts from the same state; it gives up after LIMIT_S
(default 30) seconds and never fails. --no-cleaner: not waiting for the
cleaner (see quiesce()).
"""

import fcntl
import glob
import os
import subprocess
import sys
import time

POOL_SIZE = int(os.environ.get("TUPPER_POOL", "128"))


def locks_free(store):
    """Takes and releases every lock of the store's background work, in turn."""
    locks = (glob.glob(os.path.join(store, "pool", "*.lock"))
             + glob.glob(os.path.join(store, "netns.lock"))
             + glob.glob(os.path.join(store, "netns", "*.lock")))
    for lock in locks:
        try:
            fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        finally:
            os.close(fd)


def spares(pool):
    """The number of spares in pool directory `pool` (0 if it went away)."""
    try:
        return sum(1 for e in os.listdir(pool) if len(e) == 12)
    except OSError:
        return 0


def pools_full_trash_empty(store):
    pools = [d for d in glob.glob(os.path.join(store, "pool", "*")) if os.path.isdir(d)]
    full = all(spares(d) >= POOL_SIZE for d in pools)
    try:
        empty = not os.listdir(os.path.join(store, "trash"))
    except FileNotFoundError:
        empty = True
    return full and empty


def quiesce(store, limit_s=30, cleaner=True):
    """Waits (at most limit_s) until `store` is at rest, as the module says.
    With cleaner=False it does not wait for btrfs's cleaner: a destroyed
    subvolume can wait for the next periodic commit (up to 30 s) before the
    cleaner takes it, which made every at-rest probe of scale.py ~20 s
    longer."""
    end = time.monotonic() + limit_s
    calm = 0
    while calm < 2 and time.monotonic() < end:
        locks_free(store)
        calm = calm + 1 if pools_full_trash_empty(store) else 0
        time.sleep(0.1)
    if cleaner:
        subprocess.run(["btrfs", "subvolume", "sync", store],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    for _ in range(2):
        locks_free(store)
        time.sleep(0.1)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--no-cleaner"]
    try:
        quiesce(args[0], float(args[1]) if len(args) > 1 else 30,
                cleaner="--no-cleaner" not in sys.argv)
    except Exception as e:  # a measurement after a failed wait is still a measurement
        print(f"quiesce: {e!r}", file=sys.stderr)
