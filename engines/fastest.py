"""A measured choice between backends: the fastest on the first batch it sees (or on one
image-like probe for every batch shape), remembered.

The first call times every candidate on that batch or probe (one warm-up, then the best of two
runs; one when that is already clearly slower than the best so far), keeps the winner and closes
the others. The verdict is stored under ``$STREAMGAN_CACHE/choices/fastest.json``, keyed by the
model, the batch shape (or "probe"), this CPU and the library versions, so later runs open only
the winner.
"""

import dataclasses
import json
import os
import platform
import time
from collections.abc import Callable

import numpy as np

from .base import Engine, cache_dir, write_json
from .lazy import torch  # imported on first use (engines/lazy.py)


def machine_tag() -> str:
    """This CPU (model name, threads available) for cache keys of measured choices."""
    name = None
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    name = name or platform.processor() or platform.machine()  # (processor() runs `uname -p`: a fork)
    return f"{name} x{len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()}"


_CLEARLY_SLOWER = 1.5  # a candidate whose first timed run is this much slower than the best is out


def _time(engine: Engine, x, repeats: int = 2, best_so_far: float = float("inf")) -> float:
    """Best of ``repeats`` runs on ``x`` after one warm-up (numpy x: a host engine's own path);
    the repeats stop once a run is clearly slower than ``best_so_far`` (another candidate's)."""
    if isinstance(x, np.ndarray):
        if engine.host:
            def run():
                engine.run_host(x)
            sync = None
        else:
            return _time(engine, torch.from_numpy(x), repeats, best_so_far)
    else:
        x = x.to(engine.device, engine.dtype)

        def run():
            engine._run(x, None, 0.0)
        sync = (lambda: torch.cuda.synchronize(engine.device)) if engine.device.type == "cuda" else None
    run()
    best = float("inf")
    for _ in range(repeats):
        sync and sync()
        t = time.perf_counter()
        run()
        sync and sync()  # GPU work is asynchronous: time it finished, not launched
        best = min(best, time.perf_counter() - t)
        if best > _CLEARLY_SLOWER * best_so_far:
            break
    return best


def _store():
    return cache_dir("choices") / "fastest.json"


def _known() -> dict:
    store = _store()
    return json.loads(store.read_text()) if store.exists() else {}


def remembered_choices(prefix: str) -> dict[str, str]:
    """Choices made for keys starting with ``prefix`` (a model's path): '<key tail>' -> 'winner
    (measured a X ms, b Y ms)', for ``streamgan info``."""
    known = _known()
    return {k[len(prefix):].lstrip(":|"): f"{v['backend']} (measured " +
            ", ".join(f"{name} {ms:.1f} ms" for name, ms in v["ms"].items()) +
            (f" on a {'x'.join(map(str, v['probe']))} probe" if "probe" in v else "") + ")"
            for k, v in known.items() if k.startswith(prefix)}


class FastestEngine(Engine):
    """Delegates to whichever of ``candidates`` (name -> factory) is measured fastest.

    The first factory is opened at once and gives the metadata (all candidates run the same
    model, so input/output ranges and statistics layout agree); ``meta.backend`` and
    ``meta.precision`` become the winner's once it is chosen.
    """

    def __init__(self, candidates: dict[str, Callable[[], Engine]], key: str, host: bool = False,
                 probe_side: int = 0):
        self.candidates = candidates
        self.probe_side = probe_side  # > 0 (host candidates): timed once on a probe this size, for every shape
        self.all_host = host  # every candidate is a host engine
        self.chosen: Engine | None = None
        self.key = f"{key}|{machine_tag()}"
        first = next(iter(candidates))
        self.opened: dict[str, Engine] = {first: candidates[first]()}
        self.meta = dataclasses.replace(self.opened[first].meta)
        self.meta.backend = f"auto({'|'.join(candidates)})"
        self._device = None  # a host engine's is the CPU (reading it would load torch)
        if not self.opened[first].host:
            self._device = self.opened[first].device
            if self.device.type == "cuda":
                self.key += f"|{torch.cuda.get_device_name(self.device)}"
        self.choice: dict = {}

    def candidate(self, name: str) -> Engine:
        """Candidate ``name``, opened now if it is not yet (closed with the others that lose)."""
        if name not in self.opened:
            self.opened[name] = self.candidates[name]()
        return self.opened[name]

    def _shape_key(self, shape) -> str:
        return f"{self.key}|probe" if self.probe_side else f"{self.key}|{'x'.join(map(str, shape))}"

    def _probe(self) -> np.ndarray:
        """What host candidates are timed on when ``probe_side`` is set: an image-like input in the
        model's range, at the graph's fixed size, else ``probe_side`` rounded up to its size
        multiple (OpenVINO's precision probe is this input: its compiled request is reused).
        Timing a 128 px probe instead of a first 640x360 frame saves most of a cold start's
        measuring, and the order agrees (multistyle26, 2-core EPYC: OpenVINO 2.8x ONNX Runtime at
        128 px, 2.5x at 256, 2.1x at 640x360)."""
        from .metrics import probe_image
        m = self.meta
        side = m.shapes["max"][-1] if m.shapes else -(-self.probe_side // m.size_multiple) * m.size_multiple
        lo, hi = m.input_range
        x = (probe_image(m.in_channels, side, side) + 1) / 2 * (hi - lo) + lo
        return np.repeat(x, m.max_batch or 1, axis=0)

    def choose(self, x) -> Engine:
        """Pick (or recall) the fastest candidate for batches shaped like ``x`` (a tensor, or a
        numpy array for host candidates)."""
        if self.recall(x.shape):
            return self.chosen
        ms: dict[str, float] = {}
        timed = self._probe() if self.probe_side else x
        for name in self.candidates:
            best = min(ms.values(), default=float("inf")) / 1000
            ms[name] = 1000 * _time(self.candidate(name), timed, best_so_far=best)
        choice = {"backend": min(ms, key=ms.get), "ms": ms}
        if self.probe_side:
            choice["probe"] = list(timed.shape[-2:])
        known = _known()
        known[self._shape_key(x.shape)] = choice
        write_json(_store(), known)
        return self._keep({**choice, "cached": False})

    def recall(self, shape) -> bool:
        """Open the winner remembered for batches of ``shape`` now, if there is one: nothing is
        measured and no other candidate is opened (so a host winner needs no torch)."""
        if self.chosen is None:
            known = _known().get(self._shape_key(shape))
            if known and known["backend"] in self.candidates:
                self._keep({**known, "cached": True})
        return self.chosen is not None

    def _keep(self, choice: dict) -> Engine:
        self.choice = choice
        self.chosen = self.candidate(choice["backend"])
        for name in [n for n in self.opened if n != choice["backend"]]:
            self.opened.pop(name).close()
        self.meta.backend, self.meta.precision = self.chosen.meta.backend, self.chosen.meta.precision
        return self.chosen

    @property
    def plain_module(self):
        """The torch candidate's module (exact tiles run it layer by layer), None without one."""
        name = next((n for n in self.candidates if n.startswith("torch")), None)
        return getattr(self.candidate(name), "plain_module", None) if name else None

    def _run(self, x, stats, mix, collect=False):
        engine = self.chosen or self.choose(x)
        return engine._run(x.to(engine.device, engine.dtype), stats, mix, collect)

    def run_host(self, x: np.ndarray) -> np.ndarray:
        return (self.chosen or self.choose(x)).run_host(x)

    def start_host(self, x: np.ndarray):
        return (self.chosen or self.choose(x)).start_host(x)

    @property
    def host(self) -> bool:
        """Whole frames go in as numpy: all candidates take them, or the chosen one does."""
        return self.chosen.host if self.chosen is not None else self.all_host

    @property
    def device(self):
        if self.chosen is not None:
            return self.chosen.device
        return self._device if self._device is not None else torch.device("cpu")

    @property
    def device_type(self) -> str:
        return self.device.type if self.chosen is not None or self._device is not None else "cpu"

    @property
    def inflight(self) -> int:
        return self.chosen.inflight if self.chosen is not None else 1

    def describe(self) -> str:
        if self.chosen is None:
            return f"{self.meta.backend} (not yet measured)"
        probe = "x".join(map(str, self.choice.get("probe", ())))
        how = "cached choice" if self.choice.get("cached") else \
            "measured " + ", ".join(f"{k} {v:.1f} ms" for k, v in self.choice["ms"].items()) + \
            (f" on a {probe} probe" if probe else "")
        return f"{self.chosen.describe()} (fastest: {how})"

    def close(self) -> None:
        for engine in self.opened.values():
            engine.close()
        self.opened.clear()
