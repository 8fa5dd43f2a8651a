#!/usr/bin/env python3
"""The scale part of the benchmark (tests/bench/run --scale).

    scale.py TUPPER STORE IMAGE N OUT.json WORKDIR [NET]

NET is tupper's --net (none, the default here, or bridge: then run this in a
network namespace of its own, as tests/bench/run does, so that the bridge and its
NAT are made there and not on the host).

IMAGE must hold /stamp (tests/bench/stamp.rs): it prints the wall clock in ns
and execs its arguments. Each container runs `/stamp /bin/sleep 3600`; the start
latency of a container is (the time /stamp printed) - (the time just before this
script spawned its `tupper run`). Both are CLOCK_REALTIME.

Two phases, each ending with every container stopped and removed:
- "sequential": container k is started once k-1 are running (its stamp arrived),
  so the k-th latency shows what k-1 running containers cost a new start when
  starts come back to back (the pools of spares drained, the CPUs busy with the
  previous starts' background work); then `tupper ps` is timed with N running
  (hyperfine), then `tupper rm -f` of all.
  At the 1st, middle and last start it also measures the start "at rest": with
  k-1 running, it waits until the store is quiet (no background work, the
  snapshot pool full, the trash empty), then times SCALE_PROBES (default 21)
  probe starts `tupper run --rm --net NET IMAGE /stamp /bin/true`, each after a
  quiet moment again: what a start costs with k-1 others running, the pools
  being as full as they were for the 1st start.
- "burst": N `tupper run` spawned at once; latency of each, and the time until
  the last one runs.

SCALE_PHASES (default "sequential burst") picks the phases.

Never leaves a process or container behind: on any error every container left
in the store is removed with `tupper rm -f` and every `tupper run` we spawned is
waited for (SIGKILLed by pid if it does not end).
"""

import json
import os
import selectors
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quiesce import quiesce as quiesce_store  # noqa: E402

TUPPER, STORE, IMAGE, N, OUT, WORK = sys.argv[1:7]
NET = sys.argv[7] if len(sys.argv) > 7 else "none"
N = int(N)
T = [TUPPER, "--root", STORE]


def spawn(errf):
    """Starts one `tupper run --rm`; returns (Popen, t0 in ns)."""
    cmd = T + ["run", "--rm", "--net", NET, IMAGE, "/stamp", "/bin/sleep", "3600"]
    t0 = time.time_ns()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errf)
    return p, t0


PROBES = int(os.environ.get("SCALE_PROBES", "21"))


def quiesce():
    """Waits until the store is at rest (quiesce.py), but not for btrfs's
    cleaner, which can take up to 30 s after each probe's `--rm`."""
    quiesce_store(STORE, cleaner=False)


def probe_at_rest():
    """Latencies (ms) of PROBES `run --rm ... /stamp /bin/true`, each after quiesce()."""
    lat = []
    for _ in range(PROBES):
        quiesce()
        cmd = T + ["run", "--rm", "--net", NET, IMAGE, "/stamp", "/bin/true"]
        t0 = time.time_ns()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
        stamp = read_stamp(p)
        if p.wait() != 0 or stamp is None:
            raise RuntimeError(f"a probe start failed (exit {p.returncode})")
        lat.append((stamp - t0) / 1e6)
    return lat


def read_stamp(p, timeout=120):
    """The stamp line of one container, or None when tupper ended or hung."""
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    ready = sel.select(timeout)
    sel.close()
    line = p.stdout.readline() if ready else b""
    p.stdout.close()
    try:
        return int(line)
    except ValueError:
        return None


def running_ids():
    out = subprocess.run(T + ["ps", "-a", "--json"], capture_output=True, check=True).stdout
    return [r["id"] for r in json.loads(out or b"[]")]


def count_running():
    out = subprocess.run(T + ["ps", "--json"], capture_output=True, check=True).stdout
    return len(json.loads(out or b"[]"))


def rm_each(ids):
    """`tupper rm -f ID` one id at a time; a container that ended meanwhile is fine."""
    for i in ids:
        subprocess.run(T + ["rm", "-f", i], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_all(procs, seconds):
    deadline = time.monotonic() + seconds
    for p in procs:
        try:
            p.wait(timeout=max(0.01, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    return all(p.poll() is not None for p in procs)


def stop_all(procs):
    """`tupper rm -f` of every container (one call), then wait for every `tupper run`.
    When that one call fails, the containers left are removed one `rm -f` each.
    Returns (seconds until rm returned, seconds until all ended, rm exit code of the
    one call, whether the per-id fallback was needed)."""
    t0 = time.perf_counter()
    ids = running_ids()
    rc = subprocess.run(T + ["rm", "-f"] + ids, stdout=subprocess.DEVNULL).returncode if ids else 0
    fallback = False
    if rc != 0:
        fallback = True
        rm_each(running_ids())
    t1 = time.perf_counter()
    done = wait_all(procs, 60)
    t2 = time.perf_counter()
    # Runs still starting when the store was listed: catch them too.
    for _ in range(3):
        if done and not running_ids():
            break
        rm_each(running_ids())
        done = wait_all(procs, 20)
    # Last resort: SIGKILL our own `tupper run` children by pid (their containers
    # die with them: PR_SET_PDEATHSIG), then remove what they left.
    stuck = [p for p in procs if p.poll() is None]
    for p in stuck:
        p.kill()
        p.wait()
    if stuck:
        rc = rc or 1
        rm_each(running_ids())
    return t1 - t0, t2 - t0, rc, fallback


def leftovers():
    subvols = os.listdir(os.path.join(STORE, "containers"))
    return len(running_ids()), len(subvols)


def window(xs, i, k=5):
    """Median of xs around index i (k on each side, clipped): smooths one noisy sample."""
    lo, hi = max(0, i - k), min(len(xs), i + k + 1)
    return statistics.median(xs[lo:hi])


def marks(lat):
    """Latencies (ms) of the 1st, middle and last start, raw and smoothed."""
    n = len(lat)
    idx = {"first": 0, "middle": n // 2 - 1 if n > 1 else 0, "last": n - 1}
    return {
        name: {"n": i + 1, "ms": lat[i], "window_median_ms": window(lat, i)}
        for name, i in idx.items()
    }


def summary(lat):
    s = sorted(lat)
    return {
        "median_ms": statistics.median(s),
        "mean_ms": statistics.fmean(s),
        "p90_ms": s[int(0.9 * (len(s) - 1))],
        "max_ms": s[-1],
    }


def sequential(res, errf):
    procs, lat = [], []
    at_rest = {}
    res["at_rest"] = at_rest
    probe_marks = {0: "first", (N // 2 - 1 if N > 1 else 0): "middle", N - 1: "last"}
    try:
        for i in range(N):
            if i in probe_marks:
                probes = probe_at_rest()
                at_rest[probe_marks[i]] = {"n": i + 1, "running": i, "probes_ms": probes,
                                           "median_ms": statistics.median(probes)}
            p, t0 = spawn(errf)
            procs.append(p)
            stamp = read_stamp(p)
            if stamp is None:
                res["error"] = f"sequential: container {i + 1} did not start"
                return False
            lat.append((stamp - t0) / 1e6)
        running = count_running()
        res["running_at_once"] = running
        for args in (["ps"], ["ps", "--json"]):
            name = "ps" if len(args) == 1 else "ps_json"
            out = os.path.join(WORK, f"scale-{name}.json")
            cmd = " ".join(T + args)
            subprocess.run(
                ["hyperfine", "-N", "--style", "none", "--warmup", "3", "--runs", "20",
                 "--export-json", out, cmd],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            r = json.load(open(out))["results"][0]
            res[name] = {"median_ms": statistics.median(r["times"]) * 1e3,
                         "mean_ms": r["mean"] * 1e3}
    finally:
        rm_s, all_s, rc, fallback = stop_all(procs)
        res["latency"] = lat
        res["marks"] = marks(lat) if lat else {}
        res["summary"] = summary(lat) if lat else {}
        res["stop"] = {"rm_returned_s": rm_s, "all_ended_s": all_s, "rm_exit": rc,
                       "per_id_fallback": fallback, "containers": len(procs)}
        res["leftover_records"], res["leftover_subvolumes"] = leftovers()
    return True


def burst(res, errf):
    procs, t0s = [], []
    try:
        start = time.time_ns()
        for _ in range(N):
            p, t0 = spawn(errf)
            procs.append(p)
            t0s.append(t0)
        sel = selectors.DefaultSelector()
        for i, p in enumerate(procs):
            sel.register(p.stdout, selectors.EVENT_READ, i)
        stamps = [None] * N
        pending = N
        while pending:
            ready = sel.select(120)
            if not ready:
                res["error"] = f"burst: {pending} containers did not start within 120 s"
                return False
            for key, _ in ready:
                i = key.data
                sel.unregister(key.fileobj)
                line = key.fileobj.readline()
                key.fileobj.close()
                pending -= 1
                try:
                    stamps[i] = int(line)
                except ValueError:
                    res["error"] = f"burst: container {i + 1} did not start"
        sel.close()
        if "error" in res:
            return False
        lat = [(s - t) / 1e6 for s, t in zip(stamps, t0s)]
        res["latency"] = lat
        res["marks"] = marks(lat)
        res["summary"] = summary(lat)
        res["spawn_all_s"] = (t0s[-1] - start) / 1e9
        res["all_running_s"] = (max(stamps) - start) / 1e9
        res["running_at_once"] = count_running()
    finally:
        rm_s, all_s, rc, fallback = stop_all(procs)
        res["stop"] = {"rm_returned_s": rm_s, "all_ended_s": all_s, "rm_exit": rc,
                       "per_id_fallback": fallback, "containers": len(procs)}
        res["leftover_records"], res["leftover_subvolumes"] = leftovers()
    return True


def main():
    out = {"n": N, "net": NET}
    ok = True
    with open(os.path.join(WORK, "scale-stderr.txt"), "ab") as errf:
        phases = os.environ.get("SCALE_PHASES", "sequential burst").split()
        for name, phase in (("sequential", sequential), ("burst", burst)):
            if name not in phases:
                continue
            res = {}
            out[name] = res
            try:
                ok = phase(res, errf) and ok
            except Exception as e:  # keep measuring the other phase; report it
                res["error"] = f"{name}: {e!r}"
                ok = False
            print(f"scale: {name} done", file=sys.stderr)
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
