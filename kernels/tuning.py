"""Per-shape choice of kernel block sizes: timed once on CUDA, remembered on disk.

``tuned(key, configs, run, device)`` calls ``run(config)`` with the best of ``configs`` for
``key`` (a tuple naming the kernel and the shape). On CUDA the first call for a key times every
config with ``triton.testing.do_bench`` and stores the winner in
``$STREAMGAN_CACHE/kernels/tuning.json`` (default ``~/.cache/streamgan``), keyed also by the GPU
and the Triton version, so later processes skip the timing. Off CUDA (the Triton interpreter)
the first config is used: timings there mean nothing.

Timing runs every config on the caller's real tensors; configs must compute the same result
(they differ in blocking only), and the winner runs last, so the caller's output is the
winner's.
"""

import json
import os
from pathlib import Path

import torch

_memory: dict[str, int] = {}


def _store() -> Path:
    root = os.environ.get("STREAMGAN_CACHE") or Path.home() / ".cache" / "streamgan"
    return Path(root) / "kernels" / "tuning.json"


def _load() -> dict:
    try:
        return json.loads(_store().read_text())
    except (OSError, ValueError):
        return {}


def _save(entries: dict) -> None:
    path = _store()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(entries, indent=1, sort_keys=True))
        tmp.replace(path)
    except OSError:  # a read-only cache only costs the timing again next time
        pass


def _full_key(key: tuple, device: torch.device) -> str:
    import triton
    return "|".join(map(str, (*key, torch.cuda.get_device_name(device), triton.__version__)))


def tuned(key: tuple, configs: list[dict], run, device: torch.device):
    """Run ``run(best config for key)`` and return its result (see the module docstring)."""
    if device.type != "cuda" or os.environ.get("TRITON_INTERPRET") == "1":
        return run(configs[0])
    full = _full_key(key, device)
    if torch.cuda.is_current_stream_capturing():  # no timing inside a CUDA graph capture
        return run(configs[_memory.get(full, 0)])
    if full not in _memory:
        disk = _load()
        if full in disk and disk[full] < len(configs):
            _memory[full] = disk[full]
        else:
            from triton.testing import do_bench
            times = []
            for cfg in configs:
                try:
                    times.append(do_bench(lambda: run(cfg), warmup=5, rep=20))
                except Exception:  # a config the compiler refuses (resources) is never chosen  # noqa: BLE001
                    times.append(float("inf"))
            _memory[full] = min(range(len(configs)), key=times.__getitem__)
            disk = _load()
            disk[full] = _memory[full]
            _save(disk)
    return run(configs[_memory[full]])
