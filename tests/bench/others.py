#!/usr/bin/env python3
"""others.py OUT: every 2 s, appends to OUT the command name of each process that
has a thread running (state R) at that moment; tests/bench/run stops it by pid.
The report counts the names that are not the benchmark's own, to say what else
loaded the machine. Reads /proc only: starts no process."""
import os
import sys
import time


def running(pid):
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            stat = open(f"/proc/{pid}/task/{tid}/stat").read()
            if stat[stat.rindex(")") + 2] == "R":
                return True
    except OSError:
        pass
    return False


with open(sys.argv[1], "a") as out:
    while True:
        time.sleep(2)
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            if running(pid):
                try:
                    out.write(open(f"/proc/{pid}/comm").read().strip() + "\n")
                except OSError:
                    pass
        out.flush()
