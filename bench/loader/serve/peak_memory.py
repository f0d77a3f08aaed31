#!/usr/bin/python3
"""Runs a command and reports the peak memory of its whole process tree (DESIGN.md R7).

    peak_memory.py [--interval S] -- COMMAND [ARG ...]

Every --interval seconds (default 0.01) it sums, over the command and all its descendants (a
DataLoader's worker processes included), the proportional set size (Pss in
/proc/PID/smaps_rollup: a page shared by k of the processes counts 1/k in each, so the sum is the
memory the tree really holds) and the resident set size (Rss: shared pages counted once per
process). Prints one JSON object to stderr's last line:
    {"peak_pss_mb": ..., "peak_rss_sum_mb": ..., "max_processes": ..., "returncode": ...}
The command's own stdout and stderr pass through. Linux only.
"""
import json
import os
import subprocess
import sys
import time


def children_of():
    """Maps each pid to its child pids, from /proc/*/stat."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces: the ppid follows the last ')'.
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(name))
    return children


def tree(root):
    kids = children_of()
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(kids.get(pid, []))
    return pids


def memory_kb(pid):
    """(Pss, Rss) of one process in KiB; (0, 0) when it has gone."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


def main():
    args = sys.argv[1:]
    interval = 0.01
    if args[:1] == ["--interval"]:
        interval = float(args[1])
        args = args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        sys.exit("usage: peak_memory.py [--interval S] -- COMMAND [ARG ...]")
    process = subprocess.Popen(args)
    peak_pss = peak_rss = most = 0
    while process.poll() is None:
        pids = tree(process.pid)
        pss = rss = 0
        for pid in pids:
            p, r = memory_kb(pid)
            pss += p
            rss += r
        peak_pss, peak_rss, most = max(peak_pss, pss), max(peak_rss, rss), max(most, len(pids))
        time.sleep(interval)
    print(json.dumps({"peak_pss_mb": round(peak_pss / 1024, 1), "peak_rss_sum_mb": round(peak_rss / 1024, 1),
                      "max_processes": most, "returncode": process.returncode}), file=sys.stderr)
    sys.exit(process.returncode)


if __name__ == "__main__":
    main()
