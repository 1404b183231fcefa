"""Measured runs of a command, shared by the benchmark scripts: wall time,
CPU time (user + system) and peak RSS of the process (from wait4), and its
stdout. A failed command ends the benchmark, showing its stderr."""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass


@dataclass
class Run:
    wall: float
    cpu: float
    peak_mib: float
    stdout: str


def measure(argv, env=None):
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, env=env)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.stdout.close()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{err.read().decode()}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.decode())


@dataclass
class Summary:
    """Median wall and CPU time and the largest peak RSS of repeated runs."""
    wall: float
    cpu: float
    peak_mib: float
    runs: list


def repeat(argv, repeats, prepare=None):
    """`repeats` measured runs of `argv` in fresh processes; `prepare` is
    called before each (to empty an output folder, say)."""
    runs = []
    for _ in range(repeats):
        if prepare:
            prepare()
        runs.append(measure(argv))
    return summarize(runs)


def summarize(runs):
    """The Summary of measured `runs` of one command."""
    return Summary(statistics.median(r.wall for r in runs), statistics.median(r.cpu for r in runs),
                   max(r.peak_mib for r in runs), runs)


def alternate(cases, repeats):
    """`repeats` rounds of `cases` (name, argv, prepare) run in turn, each in a
    fresh process (so a drift in the machine's speed hits every case alike):
    a Summary per name."""
    runs = {name: [] for name, _, _ in cases}
    for _ in range(repeats):
        for name, argv, prepare in cases:
            if prepare:
                prepare()
            runs[name].append(measure(argv))
    return {name: summarize(r) for name, r in runs.items()}
