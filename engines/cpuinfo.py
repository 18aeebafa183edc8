"""This CPU as /proc/cpuinfo tells it: its model name and feature flags (Linux; elsewhere what
``platform`` knows and no flags). Read once."""

import functools
import platform


@functools.cache
def _cpuinfo() -> tuple[str | None, frozenset[str]]:
    name, flags = None, frozenset()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and name is None:
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return name, flags


def cpu_name() -> str:
    # (platform.processor() runs `uname -p`: a fork; only where /proc/cpuinfo says nothing)
    return _cpuinfo()[0] or platform.processor() or platform.machine()


def cpu_flags() -> frozenset[str]:
    return _cpuinfo()[1]


def cpu_has_fast_bf16() -> bool:
    """Native bf16 instructions (AVX-512 BF16 or AMX): where bf16 may run faster than fp32 (the
    backends' probes time it: without AMX it can be slower)."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
