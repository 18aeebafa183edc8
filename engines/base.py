"""The Engine interface every backend implements, and its metadata."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .lazy import torch  # imported on first use (engines/lazy.py)


@dataclass
class EngineMeta:
    """What a caller needs to feed an engine and read its output.

    ``stats_width`` > 0 means the engine takes packed normalisation statistics (see
    ``engines.normstats``) and can collect them, so tiles can share one frame's statistics.
    ``max_batch`` > 0: the graph's batch dimension is fixed at that size (tiles go in that many
    at a time); 0: any batch.
    """

    arch: str = "unknown"
    input_range: tuple[float, float] = (-1.0, 1.0)
    output_range: tuple[float, float] = (-1.0, 1.0)
    in_channels: int = 3
    out_channels: int = 3
    size_multiple: int = 1
    precision: str = "fp32"
    stats_width: int = 0
    receptive_radius: int = 0
    max_batch: int = 0
    source_hash: str = ""
    backend: str = ""
    shapes: dict = field(default_factory=dict)
    consts: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "EngineMeta":
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        for k in ("input_range", "output_range"):
            if k in kw:
                kw[k] = tuple(float(v) for v in kw[k])
        return cls(**kw)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path) -> str:
    """sha256 of a file's bytes, read once per process while the file is unchanged (the caches of
    graphs, metadata, geometry and compiled models are all keyed by the same few files)."""
    st = os.stat(path)
    return _file_sha256(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=32)
def _file_sha256(path: str, mtime_ns: int, size: int) -> str:
    return sha256(Path(path).read_bytes())


class _Default:
    """A class-level default made on first read (``torch.device("cpu")``, ``torch.float32``), so
    defining an engine class does not load torch; an instance's own assignment overrides it."""

    def __init__(self, make):
        self.make = make

    def __get__(self, obj, owner=None):
        return self.make()


class Engine:
    """A compiled generator: ``infer(x)`` maps (N, C, H, W) float in input_range to output_range.

    Subclasses implement ``_run(x, stats, mix)`` returning (output, own_stats or None). Use as a
    context manager; ``close()`` frees the backend's resources.

    ``host`` engines (ONNX Runtime and OpenVINO on the CPU) also run numpy arrays in and out with
    ``run_host``, so whole frames reach them without torch.
    """

    meta: EngineMeta
    device = _Default(lambda: torch.device("cpu"))
    dtype = _Default(lambda: torch.float32)
    host: bool = False

    inflight: int = 1  # host batches that can be started before the oldest must be collected
    precision_probe: dict | None = None  # how "auto" chose (engines.precision.probe_verdict), where it did

    def run_host(self, x: np.ndarray) -> np.ndarray:
        """A float32 (N, C, H, W) numpy batch through the model with its own statistics (host engines)."""
        raise NotImplementedError

    def start_host(self, x: np.ndarray):
        """Start ``x`` like ``run_host``; returns a function that waits for its output. At most
        ``inflight`` may be outstanding, collected oldest first. Synchronous here; OpenVINO
        overlaps them on its throughput streams."""
        y = self.run_host(x)
        return lambda: y

    def _run(self, x: torch.Tensor, stats: torch.Tensor | None, mix: float,
             collect: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(output, own statistics if ``collect`` and the backend can give them)."""
        raise NotImplementedError

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as this engine's runtime takes it: on its device, in its dtype and dense in its
        memory layout. Callers may pass any strides (the pipeline's frames are channel-permuted
        views of HWC pixels, tiles are crops): compiled runtimes read raw buffers."""
        fmt = getattr(self, "memory_format", None) or torch.contiguous_format
        return x.to(self.device, self.dtype).contiguous(memory_format=fmt)

    def infer(self, x: torch.Tensor, norm_stats: torch.Tensor | None = None) -> torch.Tensor:
        """Translate a batch of any strides; ``norm_stats`` (1 or N, stats_width) replaces
        per-sample statistics."""
        x = self._input(x)
        if norm_stats is not None:
            if not self.meta.stats_width:
                raise ValueError("this engine takes no normalisation statistics")
            norm_stats = norm_stats.to(self.device, torch.float32).expand(x.shape[0], -1).contiguous()
            return self._run(x, norm_stats, 1.0)[0]
        return self._run(x, None, 0.0)[0]

    def collect_stats(self, x: torch.Tensor) -> torch.Tensor:
        """Per-sample normalisation statistics of ``x``, packed (N, stats_width), fp32."""
        if not self.meta.stats_width:
            raise ValueError("this engine has no normalisation statistics to collect")
        return self._run(self._input(x), None, 0.0, collect=True)[1].float()

    def precisions(self) -> tuple[str, ...]:
        """The precisions ``set_precision`` can switch this engine between: its own only, unless
        it was opened to choose (``engines.precision.Switchable``)."""
        return (self.meta.precision,)

    def set_precision(self, precision: str) -> None:
        if precision != self.meta.precision:
            from .errors import EngineError
            raise EngineError(f"this engine runs at {self.meta.precision} only, not {precision}")

    def close(self) -> None:
        pass

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def describe(self) -> str:
        return f"{self.meta.backend} {self.meta.precision} on {'cpu' if self.host else self.device}"


def on_cuda(engine: Engine) -> bool:
    """Whether ``engine`` runs on a CUDA device (asked without loading torch for host engines and
    for a choice among them that may still fall on torch on the CPU)."""
    return not engine.host and (getattr(engine, "device_type", None) or engine.device.type) == "cuda"
