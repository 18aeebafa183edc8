"""Per-stage latency samples and their summary (p50/p95/p99 in ms); time since launch."""

import itertools
import os
from collections import defaultdict, deque

import numpy as np


class LatencyLog:
    """Collect seconds per stage per frame; summarise as milliseconds. ``keep``: only the newest
    this many samples a stage are kept (a live run that goes on for days), ``n`` still counts all."""

    def __init__(self, keep: int | None = None):
        self.samples: dict[str, deque] = defaultdict(lambda: deque(maxlen=keep))
        self.counts: dict[str, int] = defaultdict(int)

    def add(self, stage: str, seconds: float) -> None:
        self.samples[stage].append(seconds)
        self.counts[stage] += 1

    def add_all(self, stages: dict[str, float]) -> None:
        for k, v in stages.items():
            self.add(k, v)

    def summary(self) -> dict:
        out = {}
        for stage, vals in self.samples.items():
            ms = np.asarray(vals) * 1000
            out[stage] = {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)),
                          "p99": float(np.percentile(ms, 99)), "mean": float(ms.mean()), "n": self.counts[stage]}
        return out

    def recent(self, stage: str, n: int = 100) -> tuple[float, float]:
        vals = list(itertools.islice(reversed(self.samples.get(stage, ())), n))
        if not vals:
            return 0.0, 0.0
        ms = np.asarray(vals) * 1000
        return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def since_launch() -> float | None:
    """Seconds since this process started (Linux /proc; None elsewhere): the start-up a user waits."""
    try:
        with open("/proc/self/stat") as f:
            started = int(f.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime") as f:
            return float(f.read().split()[0]) - started
    except (OSError, ValueError, IndexError):
        return None
