#!/usr/bin/env python3
"""The code a start runs, first in the tupper binary's text (issue 4: peak RSS).

    start_path.py trace MAP OUT -- COMMAND...   record the code COMMAND runs
    start_path.py order OUT.ld TRACE...         add the traces' sections to the linker script
    start_path.py cold TRACE...                 list what ran outside .text.hot
    start_path.py rss -- COMMAND...             peak RSS of COMMAND, in KiB
    start_path.py matches MAP BINARY            exit 1 unless MAP is BINARY's link map

Why: a start runs code from all over the binary, and the kernel maps the page
cache's pages in the 64 KiB around each fault (fault-around), so nearly all of
.text ended up resident (1.6 of 1.7 MiB). src/start-path.ld links the input
sections a start runs first, in an output section .text.hot, and the rest of
.text stays unmapped. tests/bench/start-path drives this script.

trace: a breakpoint (int3) on every symbol and input section start of the
binary's .text and .text.hot, read from the link map (lld's -Map, which
src/build.rs has written), so the binary may be stripped; each breakpoint goes
at its first hit. It follows forks and clones and lets go of a process at its
exec (the container's command). OUT gets one line per input section, in the
order they first ran: ROLE, OUTPUT SECTION, INPUT SECTION, tab-separated; ROLE
is "main" for the command's own process, "child" for a process of it that
went on to exec (the container's child, up to its exec), "background" for
the others (the pool refill and the trash, off the measured path: their
memory is not the start's peak RSS, and what they run depends on the
moment, such as whether a helper thread has to wait for another).
"""

import bisect
import ctypes
import os
import re
import signal
import sys

TEXT = (".text", ".text.hot")

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
PTRACE_TRACEME, PTRACE_PEEKUSER, PTRACE_POKEUSER = 0, 3, 6
PTRACE_CONT, PTRACE_DETACH, PTRACE_SETOPTIONS = 7, 17, 0x4200
OPTIONS = 0x2 | 0x4 | 0x8 | 0x10 | 0x100000  # TRACEFORK VFORK CLONE EXEC, EXITKILL
EVENT_EXEC = 4
RIP = 16 * 8  # offsetof(struct user_regs_struct, rip), x86_64
WALL = 0x40000000


def ptrace(request, pid, addr=0, data=0):
    ctypes.set_errno(0)
    value = libc.ptrace(request, pid, addr, data)
    err = ctypes.get_errno()
    if value == -1 and err:
        raise OSError(err, f"ptrace({request}) of {pid}: {os.strerror(err)}")
    return value


def read_map(path):
    """The input sections of the text output sections, and their symbols.

    Returns (sections, points): sections as (start, size, output, input)
    sorted by start, points the addresses to put breakpoints on.
    """
    lines = open(path).read().splitlines()
    if not lines or not lines[0].split()[:3] == ["VMA", "LMA", "Size"]:
        sys.exit(f"{path}: not an lld link map")
    col = lines[0].index("Out")
    sections, points, output = [], set(), None
    for line in lines[1:]:
        fields = line.split(None, 4)
        if len(fields) < 5:
            continue
        name = fields[4]
        at = line.find(name, col)
        start, size = int(fields[0], 16), int(fields[2], 16)
        if at == col:
            output = name if name in TEXT else None
        elif output is None:
            continue
        elif at == col + 8 and size:
            sections.append((start, size, output, name))
            points.add(start)
        elif at == col + 16 and sections:
            s = sections[-1]
            if s[0] <= start < s[0] + s[1]:
                points.add(start)
    sections.sort()
    return sections, sorted(points)


def map_outputs(path):
    """The text output sections of an lld link map: {name: (address, size)}."""
    lines = open(path).read().splitlines()
    col = lines[0].index("Out")
    out = {}
    for line in lines[1:]:
        fields = line.split(None, 4)
        if len(fields) == 5 and line.find(fields[4], col) == col and fields[4] in TEXT:
            out[fields[4]] = (int(fields[0], 16), int(fields[2], 16))
    return out


def elf_outputs(path):
    """The text sections of an ELF64 binary's section headers: {name: (address, size)}."""
    data = open(path, "rb").read()
    num = lambda at, n: int.from_bytes(data[at : at + n], "little")
    shoff, shentsize, shnum, shstrndx = num(0x28, 8), num(0x3A, 2), num(0x3C, 2), num(0x3E, 2)
    header = lambda i: shoff + i * shentsize
    names = num(header(shstrndx) + 0x18, 8)
    out = {}
    for i in range(shnum):
        h = header(i)
        start = names + num(h, 4)
        name = data[start : data.index(b"\0", start)].decode()
        if name in TEXT:
            out[name] = (num(h + 0x10, 8), num(h + 0x20, 8))
    return out


def matches(map_path, exe):
    """Whether the map is the binary's: the same text sections, at the same
    addresses, of the same sizes. Cargo links the binary's unit-test harness
    with the binary's link arguments, so a `cargo test` rewrites the map
    without relinking the binary."""
    return map_outputs(map_path) == elf_outputs(exe) != {}


def load_base(pid, exe):
    for line in open(f"/proc/{pid}/maps"):
        f = line.split()
        if len(f) >= 6 and f[5] == exe and int(f[2], 16) == 0:
            return int(f[0].split("-")[0], 16)
    sys.exit(f"no mapping of {exe} in process {pid}")


def trace(map_path, out, argv):
    sections, points = read_map(map_path)
    starts = [s[0] for s in sections]
    exe = os.path.realpath(argv[0])
    pid = os.fork()
    if pid == 0:
        try:
            ptrace(PTRACE_TRACEME, 0)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    if not os.WIFSTOPPED(status):
        sys.exit(f"{argv[0]}: did not stop at its exec")
    ptrace(PTRACE_SETOPTIONS, pid, 0, OPTIONS)
    base = load_base(pid, exe)
    original = {}
    with open(f"/proc/{pid}/mem", "r+b", buffering=0) as mem:
        for a in points:
            mem.seek(base + a)
            original[a] = mem.read(1)
            mem.seek(base + a)
            mem.write(b"\xcc")
    mems, live, ran, execd, main_status = {}, {pid}, [], set(), None
    ptrace(PTRACE_CONT, pid)
    while live:
        try:
            p, status = os.waitpid(-1, WALL)
        except ChildProcessError:
            break
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            live.discard(p)
            if p in mems:
                mems.pop(p).close()
            if p == pid:
                main_status = status
            continue
        live.add(p)
        sig, event = os.WSTOPSIG(status), status >> 16
        if event == EVENT_EXEC and p != pid:
            execd.add(p)
            ptrace(PTRACE_DETACH, p)
            live.discard(p)
            continue
        if event:
            ptrace(PTRACE_CONT, p)
            continue
        if sig == signal.SIGTRAP:
            a = (ptrace(PTRACE_PEEKUSER, p, RIP) & (2**64 - 1)) - 1 - base
            if a in original:
                if p not in mems:
                    mems[p] = open(f"/proc/{p}/mem", "r+b", buffering=0)
                mem = mems[p]
                mem.seek(base + a)
                # Processes that share memory (CLONE_VM) see one removal.
                if mem.read(1) == b"\xcc":
                    mem.seek(base + a)
                    mem.write(original[a])
                    ran.append((p, sections[bisect.bisect_right(starts, a) - 1]))
                ptrace(PTRACE_POKEUSER, p, RIP, base + a)
                ptrace(PTRACE_CONT, p)
                continue
        ptrace(PTRACE_CONT, p, 0, 0 if sig == signal.SIGSTOP else sig)
    seen, lines = set(), []
    for p, s in ran:
        role = "main" if p == pid else "child" if p in execd else "background"
        if (role, s[3]) not in seen:
            seen.add((role, s[3]))
            lines.append(f"{role}\t{s[2]}\t{s[3]}\n")
    with open(out, "w") as f:
        f.write("".join(lines))
    code = os.waitstatus_to_exitcode(main_status) if main_status is not None else 255
    if code != 0:
        sys.exit(f"{' '.join(argv)}: exit status {code} under the trace")


def pattern(section):
    """A linker script input section description that matches SECTION in later builds.

    Rust's symbols carry hashes that change with the crate's metadata (its
    version, its dependencies): legacy 17h<hash>E, v0 crate disambiguators
    Cs<hash>_, and LLVM's .N suffixes of local copies become wildcards. C
    archive members keep their member name; versioned archives (libm-2.36.a)
    and cargo's hashed rlibs lose the version.
    """
    m = re.match(r"(.*):\((.*)\)$", section)
    path, name = m.group(1), m.group(2)
    if path.endswith(".rcgu.o"):
        name = re.sub(r"17h[0-9a-f]{16}E", "17h*E", name)
        name = re.sub(r"Cs[0-9A-Za-z]+_", "Cs*_", name)
        name = re.sub(r"(\.llvm)?\.[0-9]+$", "*", name)
        return f"*({name})"
    member = re.match(r".*/([^/(]+)\(([^)]+)\)$", path)
    if member:
        archive = re.sub(r"-[0-9.]+\.a$", "*.a", member.group(1))
        archive = re.sub(r"-[0-9a-f]{16}\.rlib$", "-*.rlib", archive)
        return f"*{archive}:{member.group(2)}({name})"
    return f"*{os.path.basename(path)}({name})"


def read_traces(paths):
    for path in paths:
        for line in open(path):
            role, output, section = line.rstrip("\n").split("\t")
            yield path, role, output, section


def existing_patterns(path):
    """The input section patterns of the linker script at path (none if absent)."""
    try:
        lines = open(path).read().splitlines()
    except FileNotFoundError:
        return []
    return [l.strip() for l in lines if l.startswith("    *")]


def order(out, traces):
    """The main process's sections first (its RSS is the peak), then the others'.

    The patterns already in out are kept (after the main process's new ones):
    what a start runs varies a little from run to run (the background
    process makes spares, on a helper thread, only when they are missing), so
    a section one trace saw and the next did not stays hot. A pattern whose
    function is gone matches nothing; delete out to start afresh."""
    patterns, seen = [], set()

    def add(p):
        if p not in seen:
            seen.add(p)
            patterns.append(p)

    for _, role, _, section in read_traces(traces):
        if role == "main":
            add(pattern(section))
    for p in existing_patterns(out):
        add(p)
    for _, role, _, section in read_traces(traces):
        if role != "main":
            add(pattern(section))
    with open(out, "w") as f:
        f.write("/* The code a start runs, first in tupper's text: generated by\n"
                "   `tests/bench/start-path order` (docs/performance.md); do not edit.\n"
                "   src/build.rs links the tupper binary with it. */\n")
        f.write("SECTIONS\n{\n  .text.hot :\n  {\n")
        f.writelines(f"    {p}\n" for p in patterns)
        f.write("  }\n}\nINSERT BEFORE .text;\n")
    print(f"{out}: {len(patterns)} input section patterns")


def cold(traces):
    """What ran outside .text.hot; counts the main process's and the child's,
    and only lists the background processes' (see the module doc)."""
    found = 0
    for path, role, output, section in read_traces(traces):
        if output != ".text.hot":
            counted = role != "background"
            found += counted
            note = "" if counted else " (background: listed, not counted)"
            print(f"{os.path.basename(path)}: {role}: {section}{note}")
    return found


def rss(argv):
    pid = os.fork()
    if pid == 0:
        try:
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(argv)}: exit status {os.waitstatus_to_exitcode(status)}")
    print(usage.ru_maxrss)


def main():
    args = sys.argv[1:]
    if args[:1] == ["trace"] and len(args) > 4 and args[3] == "--":
        trace(args[1], args[2], args[4:])
    elif args[:1] == ["order"] and len(args) > 2:
        order(args[1], args[2:])
    elif args[:1] == ["cold"] and len(args) > 1:
        sys.exit(1 if cold(args[1:]) else 0)
    elif args[:1] == ["rss"] and len(args) > 2 and args[1] == "--":
        rss(args[2:])
    elif args[:1] == ["matches"] and len(args) == 3:
        sys.exit(0 if matches(args[1], args[2]) else 1)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
