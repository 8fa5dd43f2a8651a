#!/usr/bin/env python3
"""report.py RESULTS_DIR: the benchmark's tables, from the files tests/bench/run
wrote (hyperfine JSON exports, peak RSS samples, import, profile, scale). Prints
Markdown (readable as is, pasted into docs/performance.md) and saves it as
RESULTS_DIR/report.md. Targets are those of issue 4; a missed target is printed,
never an error."""

import glob
import json
import os
import statistics
import sys
from collections import Counter

RES = sys.argv[1]
lines = []


def out(s=""):
    lines.append(s)


def load(path):
    try:
        return json.load(open(os.path.join(RES, path)))
    except (OSError, ValueError):
        return None


def info():
    d = {}
    try:
        for line in open(os.path.join(RES, "info.txt")):
            k, _, v = line.rstrip("\n").partition("=")
            d[k] = v
    except OSError:
        pass
    return d


def times(name):
    """All samples (seconds) of one case, merged over the rounds."""
    ts = []
    for path in sorted(glob.glob(os.path.join(RES, "hf", f"{name}.*json"))):
        if os.path.basename(path).split(".")[0] != name:
            continue
        for r in json.load(open(path))["results"]:
            ts += r["times"]
    return ts


def rss(name):
    try:
        vals = [int(x) for x in open(os.path.join(RES, "rss", f"{name}.txt")).read().split()]
    except (OSError, ValueError):
        return None
    return vals or None


def mib(kib):
    return f"{kib / 1024:.2f} MiB"


def verdict(ok):
    return "met" if ok else "**missed**"


I = info()
CASES = ["tupper-none", "tupper-none-nopool", "tupper-none-userns", "tupper-none-spaced",
         "tupper-none-nopool-spaced",
         "tupper-bridge", "crun", "runc", "bwrap", "demo-steps", "busybox-true"]
stats = {}
for n in CASES:
    ts = times(n)
    if ts:
        stats[n] = {
            "median": statistics.median(ts) * 1e3,
            "mean": statistics.fmean(ts) * 1e3,
            "sd": statistics.stdev(ts) * 1e3 if len(ts) > 1 else 0.0,
            "min": min(ts) * 1e3,
            "n": len(ts),
        }
crun = stats.get("crun", {}).get("median")
bwrap = stats.get("bwrap", {}).get("median")
targets = []  # (what, target, measured, ok)

out("## Machine")
out()
for k in ("date", "git", "nproc", "cpu", "kernel", "memory", "store_device", "store_options",
          "load_start", "load_end", "versions", "command"):
    if k in I:
        out(f"- {k}: `{I[k]}`")
others = Counter()
OWN = {"tupper", "crun", "runc", "bwrap", "hyperfine", "busybox", "true", "sleep", "stamp",
       "unshare", "sh", "dash", "bash", "btrfs", "tar", "python3", "strace", "time", "mount",
       "chroot", "pivot_root", "umount", "hostname", "cgroup2ns", "demo-steps", "sync", "ps",
       "awk", "cat", "rustc", "cp", "readelf", "stat", "kworker", "ksoftirqd", "rcu_sched",
       "btrfs-transaction", "btrfs-cleaner", "flock", "env", "sed", "grep", "head", "tr",
       "others.py", "scale.py", "report.py", "profile.py", "find", "losetup", "mkfs.btrfs"}
try:
    for name in open(os.path.join(RES, "others.txt")).read().split("\n"):
        if name and name not in OWN and not name.startswith(
                ("kworker", "runc", "crun", "btrfs", "memfd:", "ksoftirqd", "migration", "rcu_")):
            others[name] += 1
except OSError:
    pass
if others:
    top = ", ".join(f"{n} ({c})" for n, c in others.most_common(10))
    out(f"- other running processes, sampled every 2 s (name (samples)): {top}")
out()

out("## Start: run /bin/true in a fresh isolated root (hyperfine -N)")
out()
out("| name | median ms | mean ms | σ ms | min ms | runs | × crun (median) | peak RSS max (median) | issue-4 target |")
out("|---|---:|---:|---:|---:|---:|---:|---:|---|")
for n in CASES:
    if n not in stats:
        continue
    s = stats[n]
    ratio = s["median"] / crun if crun else None
    r = rss(n)
    rss_s = f"{mib(max(r))} ({mib(statistics.median(r))})" if r else "-"
    tgt = ""
    if n == "tupper-none" and ratio is not None:
        ok = ratio <= 0.5 and (bwrap is None or s["median"] < bwrap)
        tgt = f"≤ 0.50× crun and < bwrap: {verdict(ok)}"
        targets.append(("run --rm --net none", "≤ 0.50× crun, < bwrap",
                        f"{ratio:.2f}× crun, {s['median'] / bwrap:.2f}× bwrap" if bwrap else f"{ratio:.2f}×", ok))
    if n == "tupper-bridge" and ratio is not None:
        ok = ratio <= 0.6
        tgt = f"≤ 0.60× crun: {verdict(ok)}"
        targets.append(("run --rm --net bridge", "≤ 0.60× crun", f"{ratio:.2f}×", ok))
    if n.startswith("tupper") and r:
        ok = max(r) <= 2048
        tgt += ("; " if tgt else "") + f"RSS ≤ 2 MiB: {verdict(ok)}"
        if n in ("tupper-none", "tupper-bridge"):
            targets.append((f"peak RSS ({n})", "≤ 2 MiB", mib(max(r)), ok))
    out(f"| {n} | {s['median']:.2f} | {s['mean']:.2f} | {s['sd']:.2f} | {s['min']:.2f} | {s['n']} | "
        f"{ratio:.2f} | {rss_s} | {tgt} |" if ratio is not None else
        f"| {n} | {s['median']:.2f} | {s['mean']:.2f} | {s['sd']:.2f} | {s['min']:.2f} | {s['n']} | - | {rss_s} | {tgt} |")
if "binary_bytes" in I:
    b = int(I["binary_bytes"])
    ok = b <= 4 << 20
    out()
    out(f"tupper binary: {b} bytes ({mib(b / 1024)}), static: {I.get('binary_static')}; target ≤ 4 MiB: {verdict(ok)}")
    targets.append(("static binary size", "≤ 4 MiB", mib(b / 1024), ok))
out()
out("Peak RSS is GNU time's `%M` (ru_maxrss of the command it waits for: the largest of that "
    "process and the children it waited for, so tupper's row includes the container's /bin/true).")
out()

def import_times():
    """Samples (seconds) per command over the import rounds (import.rN.json;
    import.json from runs before the rounds)."""
    ts = {}
    for path in sorted(glob.glob(os.path.join(RES, "import*.json"))):
        for r in json.load(open(path))["results"]:
            ts.setdefault(r["command"], []).extend(r["times"])
    return ts


imp = import_times()
if imp:
    out("## Import")
    out()
    size = int(I.get("import_tar_bytes", "0"))
    out(f"Tarball: {size} bytes ({size / 1e6:.0f} MB), {I.get('import_tar_entries', '?')} entries, plain tar, warm.")
    out()
    out("| name | median s | mean s | runs | MB/s (median) |")
    out("|---|---:|---:|---:|---:|")
    med = {}
    for command, samples in imp.items():
        m = statistics.median(samples)
        med[command] = m
        out(f"| {command} | {m:.3f} | {statistics.mean(samples):.3f} | {len(samples)} | {size / 1e6 / m:.0f} |")
    if "tupper-import" in med and "tar-x" in med:
        speed = med["tar-x"] / med["tupper-import"]
        out()
        out(f"tupper import speed = {speed:.3f}× tar -x; target ≥ 0.8×: {verdict(speed >= 0.8)}")
        targets.append(("import speed", "≥ 0.8× tar -x", f"{speed:.3f}×", speed >= 0.8))
    out()

sc = load("scale.json")
if sc:
    out(f"## Scale: {sc['n']} containers at once (--net {sc.get('net', 'none')})")
    out()
    for phase in ("sequential", "burst"):
        p = sc.get(phase)
        if not p:
            continue
        out(f"**{phase}**" + (" (container k starts once k-1 run)" if phase == "sequential"
                              else " (all spawned at once)"))
        out()
        if "error" in p:
            out(f"- ERROR: {p['error']}")
        if p.get("marks"):
            m = p["marks"]
            out("| start | latency ms | median of ±5 around it, ms |")
            out("|---|---:|---:|")
            for k in ("first", "middle", "last"):
                out(f"| {m[k]['n']} | {m[k]['ms']:.1f} | {m[k]['window_median_ms']:.1f} |")
            s = p["summary"]
            out()
            out(f"- all starts: median {s['median_ms']:.1f} ms, mean {s['mean_ms']:.1f}, "
                f"p90 {s['p90_ms']:.1f}, max {s['max_ms']:.1f}")
            if phase == "sequential":
                r = m["last"]["window_median_ms"] / m["first"]["window_median_ms"]
                out(f"- back to back, last / first (medians of ±5 around each): {r:.2f}× "
                    "(the 1st start finds full pools and idle CPUs, the last drained pools and "
                    "CPUs busy with the previous starts' background work)")
                targets.append((f"{m['last']['n']}th start vs 1st, back to back", "(reported)",
                                f"{r:.2f}×", None))
                lat = p.get("latency") or []
                if len(lat) >= 200:
                    hundreds = [statistics.median(lat[i:i + 100]) for i in range(0, len(lat), 100)]
                    out("- median per hundred starts, ms: " + ", ".join(f"{h:.1f}" for h in hundreds)
                        + f" (last / first hundred: {hundreds[-1] / hundreds[0]:.2f}×)")
            ar = p.get("at_rest") or {}
            if phase == "sequential" and all(k in ar for k in ("first", "middle", "last")):
                out()
                out(f"At rest: with k-1 running and the store quiet (no background work, pools full), "
                    f"{len(ar['first']['probes_ms'])} probe starts `run --rm /stamp /bin/true`, each "
                    "after a quiet moment:")
                out()
                out("| start | running | median ms | min ms | max ms |")
                out("|---|---:|---:|---:|---:|")
                for k in ("first", "middle", "last"):
                    a = ar[k]
                    out(f"| {a['n']} | {a['running']} | {a['median_ms']:.1f} | "
                        f"{min(a['probes_ms']):.1f} | {max(a['probes_ms']):.1f} |")
                r = ar["last"]["median_ms"] / ar["first"]["median_ms"]
                out()
                out(f"- at rest, {ar['last']['n']}th / 1st: {r:.2f}×; target ≤ 1.5×: {verdict(r <= 1.5)}")
                targets.append((f"{ar['last']['n']}th start vs 1st, at rest", "≤ 1.5×", f"{r:.2f}×", r <= 1.5))
        if "running_at_once" in p:
            out(f"- running at once (tupper ps): {p['running_at_once']}")
        if "all_running_s" in p:
            out(f"- spawning all took {p['spawn_all_s']:.2f} s; the last one ran after {p['all_running_s']:.2f} s")
        for k, label in (("ps", "tupper ps"), ("ps_json", "tupper ps --json")):
            if k in p:
                ms = p[k]["median_ms"]
                out(f"- `{label}` with {p.get('running_at_once')} running: median {ms:.1f} ms (mean {p[k]['mean_ms']:.1f})"
                    + (f"; target < 50 ms: {verdict(ms < 50)}" if k == "ps" else ""))
                if k == "ps":
                    targets.append((f"ps with {p.get('running_at_once')} running", "< 50 ms", f"{ms:.1f} ms", ms < 50))
        st = p.get("stop")
        if st:
            out(f"- stop and remove all {st['containers']} (`tupper rm -f` of every id, one call): rm returned after "
                f"{st['rm_returned_s']:.2f} s, every `tupper run` ended after {st['all_ended_s']:.2f} s (rm exit {st['rm_exit']})"
                + ("; **the one `rm -f` call failed, the rest was removed with one `tupper rm -f ID` per container "
                   "(included in the time)**" if st.get("per_id_fallback") else ""))
        out(f"- left behind: {p.get('leftover_records')} records, {p.get('leftover_subvolumes')} subvolumes")
        out()

PROFILES = [("pool", "pool (default)"), ("nopool", "TUPPER_POOL=0"), ("bridge", "--net bridge, pool"),
            ("pool-nobarrier", "pool, nobarrier"), ("nopool-nobarrier", "TUPPER_POOL=0, nobarrier")]
profs = [(label, load(f"profile-{name}.json")) for name, label in PROFILES]
profs = [(label, p) for label, p in profs if p]
if profs:
    out("## Where one `tupper run --rm --net none busybox /bin/true` spends its time")
    out()
    out("(The `--net bridge` column runs `--net bridge` instead, in the benchmark's own network namespace.)")
    out()
    out(f"`strace -f -ttt -T`, medians over {profs[0][1]['runs']} runs each, ms (strace slows every "
        "syscall: read the shares, not the absolute numbers; strace also waits for the refiller, so "
        "every profiled run starts with a full pool). \"nobarrier\": the same store remounted with "
        "`-o nobarrier`, not a target configuration. A row absent from some runs counts as 0 there "
        "(n/N: in how many runs it appeared).")
    out()
    out("| part | " + " | ".join(label for label, _ in profs) + " |")
    out("|---|" + "---:|" * len(profs))
    keys = []
    for _, p in profs:
        keys += [k for k in p["median_ms"] if k not in keys]
    for k in keys:
        cells = []
        for _, p in profs:
            if k not in p["median_ms"]:
                cells.append("-")
                continue
            v, wall = p["median_ms"][k], p["median_ms"]["wall_ms"]
            seen = p.get("runs_with", {}).get(k, p["runs"])
            part = f"{v:.0f}" if "(count)" in k else f"{v:.2f}"
            if k != "wall_ms" and not k.startswith("off the path"):
                part += f" ({100 * v / wall:.0f}%)"
            if seen != p["runs"]:
                part += f" [{seen}/{p['runs']}]"
            cells.append(part)
        out(f"| {k} | " + " | ".join(cells) + " |")
    out()
    for n, label in (("tupper-none", "pool"), ("tupper-none-nopool", "TUPPER_POOL=0")):
        nbt = times(f"{n}-nobarrier")
        if nbt and n in stats:
            out(f"- without strace, {label}: median {stats[n]['median']:.2f} ms with the default mount "
                f"options, {statistics.median(nbt) * 1e3:.2f} ms remounted `nobarrier` ({len(nbt)} runs)")
    for name, label in (("pool", "pool on"), ("nopool", "TUPPER_POOL=0")):
        try:
            c = open(os.path.join(RES, f"strace-c-{name}.txt")).read().splitlines()
        except OSError:
            continue
        out()
        out(f"`strace -c -f` of one run, {label}" + (" (includes the forked refiller)" if name == "pool" else "") + ":")
        out()
        out("```")
        out("\n".join(c[:24]))
        out("```")
    out()

if targets:
    out("## Issue-4 targets")
    out()
    out("| target | wanted | measured | |")
    out("|---|---|---|---|")
    for what, want, got, ok in targets:
        out(f"| {what} | {want} | {got} | {'-' if ok is None else verdict(ok)} |")
    out()

for fname, title in (("notes.txt", "Notes"), ("failed.txt", "Could not measure")):
    try:
        body = [l for l in open(os.path.join(RES, fname)).read().splitlines() if l]
    except OSError:
        body = []
    if body:
        out(f"## {title}")
        out()
        for l in body:
            out(f"- {l}")
        out()

text = "\n".join(lines)
print(text)
open(os.path.join(RES, "report.md"), "w").write(text + "\n")
