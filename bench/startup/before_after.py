#!/usr/bin/env python3
"""Start-up of two medload builds side by side: `medload --version` and `medload scan --help`
of BEFORE and AFTER (and AFTER's medload-torch --version), each run RUNS times, interleaved so
that all commands see the same machine load. Wall time from posix_spawn to wait4, and the child's
CPU time (user + sys) from wait4's rusage, which other work on the machine inflates less.

Usage: bench/startup/before_after.py BEFORE/bin/medload AFTER/bin/medload [--runs 21]
(build BEFORE from an older commit: git archive COMMIT | tar -x -C DIR, then build medload_cli).
"""
import argparse
import os
import statistics
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    torch_tool = os.path.join(os.path.dirname(args.after), "medload-torch")
    commands = {
        "before: medload --version": [args.before, "--version"],
        "before: medload scan --help": [args.before, "scan", "--help"],
        "after: medload --version": [args.after, "--version"],
        "after: medload scan --help": [args.after, "scan", "--help"],
        "after: medload-torch --version": [torch_tool, "--version"],
    }
    wall = {name: [] for name in commands}
    cpu = {name: [] for name in commands}
    devnull = os.open(os.devnull, os.O_WRONLY)
    quiet = [(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
    load_before = " ".join(open("/proc/loadavg").read().split()[:3])
    for _ in range(args.runs):
        for name, argv in commands.items():
            start = time.perf_counter()
            pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=quiet)
            _, status, usage = os.wait4(pid, 0)
            wall[name].append((time.perf_counter() - start) * 1000)
            cpu[name].append((usage.ru_utime + usage.ru_stime) * 1000)
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"{' '.join(argv)} exited {os.waitstatus_to_exitcode(status)}")
    load_after = " ".join(open("/proc/loadavg").read().split()[:3])
    print(f"{args.runs} interleaved runs each; load average before {load_before}, after {load_after}")
    print(f"{'command':<32} {'wall median':>12} {'wall min':>10} {'CPU median':>11}")
    for name in commands:
        print(f"{name:<32} {statistics.median(wall[name]):9.1f} ms {min(wall[name]):7.1f} ms"
              f" {statistics.median(cpu[name]):8.1f} ms")


if __name__ == "__main__":
    main()
