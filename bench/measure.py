#!/usr/bin/env python3
"""Runs one reader of the benchmark and prints its figures as one JSON line.

    measure.py --name NAME --watch PATH [--count-lines] -- COMMAND ARGS...

Figures, all of the command's own process (the server's decoding is nobody's):
  wall_s          start to exit
  user_s, sys_s   CPU time (a JVM's threads are in its process)
  peak_rss_kib    its peak resident set
The three come from /usr/bin/time, a small program whose child starts small: a child forked
from Python would count Python's resident set as its own peak.
  first_output_s  start to the first byte under PATH (a file, or any file in a directory)
  events          lines written under PATH when --count-lines (heartbeat topics left out), else
                  null

The command's output goes to PATH; its stdout and stderr to NAME.out and NAME.err beside this
run's other files (the current directory). A command that fails stops the benchmark with its
stderr tail.
"""
import argparse
import json
import os
import subprocess
import sys
import time


def written(path):
    """Bytes written under path so far."""
    if os.path.isdir(path):
        total = 0
        for entry in os.scandir(path):
            try:
                if entry.is_file():
                    total += entry.stat().st_size
            except FileNotFoundError:
                pass  # a file the reader removed meanwhile (a sink's probe file)
        return total
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def count_lines(path):
    if os.path.isdir(path):
        files = [e.path for e in os.scandir(path)
                 if e.is_file() and not e.name.startswith("__debezium-heartbeat")]
    else:
        files = [path]
    lines = 0
    for f in files:
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                lines += block.count(b"\n")
    return lines


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--watch", required=True)
    p.add_argument("--count-lines", action="store_true")
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args()
    command = a.command[1:] if a.command and a.command[0] == "--" else a.command

    with open(a.name + ".out", "wb") as out, open(a.name + ".err", "wb") as err:
        start = time.monotonic()
        child = subprocess.Popen(["/usr/bin/time", "-f", "%U %S %M", "-o", a.name + ".time"] + command,
                                 stdout=out, stderr=err)
        first = None
        while True:
            pid, status = os.waitpid(child.pid, os.WNOHANG)
            now = time.monotonic()
            if first is None and written(a.watch) > 0:
                first = now - start
            if pid != 0:
                break
            # Fine-grained while waiting for the first output, then at ease.
            time.sleep(0.002 if first is None else 0.05)
    wall = now - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        with open(a.name + ".err", "rb") as fh:
            tail = fh.read()[-3000:].decode(errors="replace")
        sys.exit(f"{a.name}: {' '.join(command)} exited {code}:\n{tail}")
    with open(a.name + ".time") as fh:
        user, sys_, rss = fh.read().split()[-3:]
    print(json.dumps({
        "wall_s": round(wall, 3),
        "user_s": float(user),
        "sys_s": float(sys_),
        "peak_rss_kib": int(rss),
        "first_output_s": None if first is None else round(first, 3),
        "events": count_lines(a.watch) if a.count_lines else None,
    }))


if __name__ == "__main__":
    main()
