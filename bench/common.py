"""Small shared helpers: CPU and RSS from /proc, percentiles, limits, ports."""
from __future__ import annotations

import math
import os
import resource
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
# A step of an open-loop ladder holds when every message arrived with p99 ≤ this.
P99_LIMIT_MS = 250.0


def raise_nofile() -> int:
    """Raise the soft open-files limit to the hard one; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads), in seconds; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    # after the ")": state is field 3, utime field 14, stime field 15 → indexes 11, 12
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def descendants(pid: int) -> list[int]:
    """The process's children, theirs, and so on (the server's media worker processes)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        return None
    return None


def pids_named(*names: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() in names:
                        found.append(int(entry))
            except OSError:
                pass
    return found


def box_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores; idle and iowait excluded)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    total = sum(fields[:8])   # user nice system idle iowait irq softirq steal
    return (total - fields[3] - fields[4]) / CLK_TCK


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class CpuMeter:
    """CPU used by groups of processes over a window, in cores (1.0 = one core busy).

    ``groups`` maps a role (server, db, generator) to pids; ``include_self`` adds this process
    and its reaped children (wrk) to the generator."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = {k: list(v) for k, v in groups.items()}
        self.start_vals: dict[str, dict[int, float]] = {}
        self.t0 = 0.0
        self.self0 = 0.0

    def _self(self) -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime + children_cpu()

    def start(self) -> "CpuMeter":
        self.t0 = time.monotonic()
        self.box0 = box_busy_seconds()
        self.self0 = self._self()
        self.start_vals = {role: {pid: cpu_seconds(pid) or 0.0 for pid in pids}
                           for role, pids in self.groups.items()}
        return self

    def stop(self) -> dict[str, float]:
        elapsed = max(time.monotonic() - self.t0, 1e-6)
        out = {}
        for role, starts in self.start_vals.items():
            used = 0.0
            for pid, v0 in starts.items():
                v1 = cpu_seconds(pid)
                if v1 is not None:
                    used += v1 - v0
            out[role] = used
        out["generator"] = out.get("generator", 0.0) + (self._self() - self.self0)
        box = box_busy_seconds() - self.box0
        # "other": everything else busy on the box in the window (other users' processes,
        # kernel softirq work not charged to a process): the benchmark's noise floor.
        out["other"] = max(0.0, box - sum(out.values()))
        result = {role: round(used / elapsed, 2) for role, used in out.items()}
        result["window_s"] = round(elapsed, 1)
        return result


def percentile(sorted_values, q: float) -> float | None:
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    if lo == hi:
        return sorted_values[int(k)]
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def latency_summary(values_s) -> dict:
    """p50/p90/p99/max in milliseconds."""
    v = sorted(values_s)
    def ms(x):
        return None if x is None else round(x * 1000, 2)
    return {"n": len(v), "p50_ms": ms(percentile(v, 0.5)), "p90_ms": ms(percentile(v, 0.9)),
            "p99_ms": ms(percentile(v, 0.99)), "max_ms": ms(v[-1] if v else None)}
