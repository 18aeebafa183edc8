"""Shared helpers for the benchmark scripts (run directly, never by pytest)."""

import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def device_label() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"{platform.machine()} CPU, {torch.get_num_threads()} threads"


def resnet9(ngf: int = 64, blocks: int = 9, norm: str = "instance", seed: int = 0):
    """A ResNet generator with the official layout and random (N(0, 0.02)) weights, as loaded."""
    from engines.normstats import convert_norms
    from streamgan.checkpoints import GeneratorInfo
    from streamgan.train.trainer import init_weights
    info = GeneratorInfo("resnet", f"resnet_{blocks}blocks", 3, 3, ngf, blocks, norm, False, norm == "instance")
    torch.manual_seed(seed)
    raw = info.build()
    init_weights(raw)
    model = convert_norms(info.build(), "batch")
    model.load_state_dict(raw.state_dict())
    model.info = info
    return raw.eval(), model.eval()


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timeit(fn, iters: int = 20, warmup: int = 3) -> float:
    """Median seconds per call, synchronised before every timestamp."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def save(results: dict, name: str, out_dir: str | None) -> Path:
    from streamgan.bench import versions
    results = {"device": device_label(), "date": time.strftime("%Y-%m-%d"), "versions": versions(), **results}
    d = Path(out_dir or Path(__file__).parent / "results")
    d.mkdir(parents=True, exist_ok=True)
    tag = device_label().replace(" ", "_").replace(",", "")[:40]
    path = d / f"{name}_{tag}_{results['date']}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"wrote {path}")
    return path
