"""A measured choice between backends: the fastest on the first batch it sees (or on one
image-like probe, and then on an image-like batch of the frame's shape when the probe leaves
several), remembered.

Candidates are timed (one warm-up, then one run; the best of two where candidates come within
30% of each other; the best of three on the probe); the winner is kept and the others closed.
The verdict is stored under ``$STREAMGAN_CACHE/choices/fastest.json``, keyed by the model, the
batch shape (or "probe"), this CPU and the library versions, so later runs open only the winner.
Runs started together on one cache measure once, under a lock, and all run the winner.
"""

import dataclasses
import os
import time
from collections.abc import Callable

import numpy as np

from .base import Engine, sha256
from .cache import cache_dir, locked, read_json, update_json
from .cpuinfo import cpu_name
from .errors import EngineError
from .lazy import torch  # imported on first use (engines/lazy.py)
from .precision import REDUCED_DB


def machine_tag() -> str:
    """This CPU (model name, threads available) for cache keys of measured choices."""
    return f"{cpu_name()} x{len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()}"


_CLOSE = 1.3  # candidates within this factor of the fastest's single run are timed once more
# On a probe that does not decide, a candidate this much slower than the fastest is not timed on the
# batch. The ratio holds across sizes: ResNet-6 ngf32, torch bf16 / OpenVINO bf16 on a 2-core EPYC,
# 1.55 at 128 px, 1.38 at 192, 1.41 at 256, 1.57 at 640x360.
_RULED_OUT = 1.3


def _timer(engine: Engine, x) -> tuple[Callable[[], float], object]:
    """Runs ``engine`` once on ``x`` now (the warm-up) and returns a function that times one more
    run in seconds (numpy x: a host engine's own path; on CUDA until the work has finished), and
    the warm-up's output (for the fidelity check)."""
    if isinstance(x, np.ndarray):
        if not engine.host:
            return _timer(engine, torch.from_numpy(x))

        def run():
            return engine.run_host(x)
        sync = None
    else:
        x = engine._input(x)

        def run():
            return engine._run(x, None, 0.0)
        sync = (lambda: torch.cuda.synchronize(engine.device)) if engine.device.type == "cuda" else None
    out = run()

    def timed() -> float:
        sync and sync()
        t = time.perf_counter()
        run()
        sync and sync()  # GPU work is asynchronous: time it finished, not launched
        return time.perf_counter() - t
    return timed, out


# A candidate's output on the check input against the fp32 reference: reduced precision must stay
# >= 40 dB, an fp32 path >= 50 dB (rounding alone gives > 100); below, it is dropped however fast.
FIDELITY_DB = {"fp32": 50.0}


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0][:160]}" if text else exc.__class__.__name__


def _store():
    return cache_dir("choices") / "fastest.json"


def _known() -> dict:
    return read_json(_store(), {})


def _figures(choice: dict) -> str:
    """'a X ms, b Y ms' of a choice, and where it was measured when that was a probe."""
    text = ", ".join(f"{name} {ms:.1f} ms" + (f" {choice['db'][name]:.0f} dB" if name in choice.get("db", {})
                                                else "") for name, ms in choice["ms"].items())
    if "probe" in choice:
        text += f" on a {'x'.join(map(str, choice['probe']))} probe"
    if choice.get("ruled_out"):
        text += "; ruled out on a probe: " + ", ".join(f"{n} {ms:.1f} ms" for n, ms in choice["ruled_out"].items())
    if choice.get("dropped"):
        text += "; dropped: " + ", ".join(f"{n} ({why})" for n, why in choice["dropped"].items())
    return text


def remembered(key: str, shape: str = "probe") -> bool:
    """Whether a FastestEngine of ``key`` on this CPU has a choice for ``shape`` ("NxCxHxW", or
    "probe" where the probe decides) and will open only its winner."""
    return f"{key}|{machine_tag()}|{shape}" in _known()


def remembered_choices(prefix: str) -> dict[str, str]:
    """Choices made for keys starting with ``prefix`` (a model's path): '<key tail>' -> 'winner
    (measured a X ms, b Y ms)', for ``streamgan info``."""
    return {k[len(prefix):].lstrip(":|"): f"{v['backend']} (measured {_figures(v)})"
            for k, v in _known().items() if k.startswith(prefix)}


def _as_float(y) -> np.ndarray:
    if isinstance(y, tuple):  # (output, statistics)
        y = y[0]
    if isinstance(y, np.ndarray):
        return y.astype(np.float32, copy=False)
    return y.detach().float().cpu().numpy()


class FastestEngine(Engine):
    """Delegates to whichever of ``candidates`` (name -> factory) is measured fastest.

    The first factory is opened at once and gives the metadata (all candidates run the same
    model, so input/output ranges and statistics layout agree); ``meta.backend`` and
    ``meta.precision`` become the winner's once it is chosen.
    """

    def __init__(self, candidates: dict[str, Callable[[], Engine]], key: str, host: bool = False,
                 probe_side: int = 0, probe_decides: bool = True, reference: Callable | None = None):
        self.candidates = candidates
        # the fp32 picture each candidate's output is checked against (x -> output; None: the
        # output of an fp32 candidate, when there is one); failing or raising candidates are dropped
        self.reference = reference
        self.dropped: dict[str, str] = {}
        self.fidelity: dict[str, float] = {}
        # probe_side > 0: candidates are timed on a probe this size first; it decides for every
        # batch shape (probe_decides), or rules out those _RULED_OUT times slower than the best
        # and the rest are timed on the batch (one measured, the choice kept per batch shape)
        self.probe_side, self.probe_decides = probe_side, probe_decides
        self.all_host = host  # every candidate is a host engine
        self.chosen: Engine | None = None
        self.key = f"{key}|{machine_tag()}"
        self.opened: dict[str, Engine] = {}
        first = None
        for name in candidates:  # the first that opens gives the metadata; one that cannot is dropped
            try:
                self.opened[name] = candidates[name]()
                first = name
                break
            except Exception as exc:
                self.dropped[name] = f"failed to open: {_why(exc)}"
        if first is None:
            raise EngineError("no backend could open this model: " + "; ".join(
                f"{n} {why}" for n, why in self.dropped.items()))
        self.meta = dataclasses.replace(self.opened[first].meta)
        self.meta.backend = f"auto({'|'.join(candidates)})"
        self._device = None  # a host engine's is the CPU (reading it would load torch)
        if not self.opened[first].host:
            self._device = self.opened[first].device
            if self.device.type == "cuda":
                self.key += f"|{torch.cuda.get_device_name(self.device)}"
        self.choice: dict = {}
        self._probed: tuple[list[str], dict] | None = None  # (candidates left, choice) once the probe ran

    def candidate(self, name: str) -> Engine:
        """Candidate ``name``, opened now if it is not yet (closed with the others that lose)."""
        if name not in self.opened:
            self.opened[name] = self.candidates[name]()
        return self.opened[name]

    def _shape_key(self, shape) -> str:
        if self.probe_side and self.probe_decides:
            return f"{self.key}|probe"
        return f"{self.key}|{'x'.join(map(str, shape))}"

    def _probe(self) -> np.ndarray:
        """What candidates are timed on first when ``probe_side`` is set: an image-like input in the
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

    def _measure(self, x, names: list[str], runs: int = 1) -> dict[str, float]:
        """Milliseconds of each of ``names`` on ``x``: the best of ``runs`` after a warm-up; close
        calls (within _CLOSE of the fastest) get one run more. A candidate that raises (opening,
        compiling, capturing, running) or whose picture is not the fp32 reference's (FIDELITY_DB)
        is dropped, with why, and is not timed again."""
        timers, seconds, outputs = {}, {}, {}
        for name in names:  # each timed right after its own warm-up (another's threads may still spin)
            if name in self.dropped:
                continue
            try:
                timers[name], outputs[name] = _timer(self.candidate(name), x)
                seconds[name] = min(timers[name]() for _ in range(runs))
            except Exception as exc:  # one candidate's failure is a verdict, not the run's end
                self._drop(name, f"failed: {_why(exc)}")
                timers.pop(name, None)
                outputs.pop(name, None)
        for name in self._unfaithful(x, outputs):
            seconds.pop(name)
        if not seconds:
            raise EngineError("every backend failed on this model: " + "; ".join(
                f"{n} {why}" for n, why in self.dropped.items()))
        close = [name for name, s in seconds.items() if s <= _CLOSE * min(seconds.values())]
        for name in close if len(close) > 1 else ():
            seconds[name] = min(seconds[name], timers[name]())
        return {name: 1000 * s for name, s in seconds.items()}

    def _drop(self, name: str, why: str) -> None:
        self.dropped[name] = why
        engine = self.opened.pop(name, None)
        if engine is not None:
            try:
                engine.close()
            except Exception:
                pass

    def _unfaithful(self, x, outputs: dict) -> list[str]:
        """Candidates whose output on ``x`` is below their floor against the fp32 reference (dropped)."""
        from .metrics import psnr
        if self.reference is not None:
            ref = self.reference(x)
        else:
            ref = next((outputs[n] for n in outputs if self.opened[n].meta.precision == "fp32"), None)
        if ref is None:
            return []
        lo, hi = self.meta.output_range
        bad = []
        for name, out in outputs.items():
            db = psnr(_as_float(out), _as_float(ref), hi - lo)
            self.fidelity[name] = round(db, 1) if db != float("inf") else 999.0
            floor = FIDELITY_DB.get(self.opened[name].meta.precision, REDUCED_DB)
            if not db >= floor:
                self._drop(name, f"{db:.1f} dB to fp32, below {floor:g}")
                bad.append(name)
        return bad

    def _on_probe(self) -> tuple[list[str], dict]:
        """The candidates the probe leaves (all when it decides) and its choice."""
        probe = self._probe()
        ms = self._measure(probe, list(self.candidates), runs=3)  # (runs of a few ms: noise matters more)
        left = [name for name in ms if self.probe_decides or ms[name] <= _RULED_OUT * min(ms.values())]
        return left, {"backend": min(ms, key=ms.get), "ms": ms, "probe": list(probe.shape[-2:]),
                      "ruled_out": {name: t for name, t in ms.items() if name not in left}, **self._verdicts()}

    def _verdicts(self) -> dict:
        """The fidelity figures and the dropped candidates with why, for the choice remembered."""
        return {**({"db": dict(self.fidelity)} if self.fidelity else {}),
                **({"dropped": dict(self.dropped)} if self.dropped else {})}

    def decide(self, shape) -> bool:
        """Recall the choice for batches of ``shape``, or make it now, before any batch: on the
        probe where it decides or leaves one candidate, else on an image-like batch of ``shape``
        (the time a model takes does not depend on the picture). A host winner then gets numpy
        frames from the first. Whether a candidate is chosen (always, with a probe)."""
        if self.recall(shape) or not self.probe_side:
            return self.chosen is not None
        with self._measuring(shape):
            if self.recall(shape):  # another process measured it meanwhile
                return True
            if self._probed is None:
                self._probed = self._on_probe()
            left, choice = self._probed
            if self.probe_decides or len(left) == 1:
                self._remember(shape, {k: v for k, v in choice.items() if k != "ruled_out"})
            else:
                self._time_on(self._image_like(shape), left, choice.get("ruled_out"))
        return True

    def _image_like(self, shape) -> np.ndarray:
        """An image-like batch of ``shape`` (N, C, H, W) in the model's input range."""
        from .metrics import probe_image
        n, c, h, w = shape
        lo, hi = self.meta.input_range
        return np.repeat((probe_image(c, h, w) + 1) / 2 * (hi - lo) + lo, n, axis=0)

    def _time_on(self, x, names: list[str], ruled_out: dict | None) -> Engine:
        """Times ``names`` on ``x`` (one run each, two for close calls) and keeps the fastest."""
        ms = self._measure(x, names)
        return self._remember(x.shape, {"backend": min(ms, key=ms.get), "ms": ms,
                                        **({"ruled_out": ruled_out} if ruled_out else {}), **self._verdicts()})

    def _measuring(self, shape):
        """The lock of this model's choice for ``shape``: runs started together measure once (the
        others wait for the verdict, then open only its winner) and so run the same backend."""
        return locked(cache_dir("choices") / sha256(self._shape_key(shape).encode())[:24])

    def choose(self, x) -> Engine:
        """Pick (or recall) the fastest candidate for batches shaped like ``x`` (a tensor, or a
        numpy array for host candidates)."""
        if self.decide(x.shape):
            return self.chosen
        with self._measuring(x.shape):
            if self.recall(x.shape):
                return self.chosen
            return self._time_on(x, list(self.candidates), None)

    def _remember(self, shape, choice: dict) -> Engine:
        update_json(_store(), lambda known: known.update({self._shape_key(shape): choice}))
        return self._keep({**choice, "cached": False})

    def recall(self, shape) -> bool:
        """Open the winner remembered for batches of ``shape`` now, if there is one: nothing is
        measured and no other candidate is opened (so a host winner needs no torch)."""
        if self.chosen is None:
            known = _known().get(self._shape_key(shape))
            if known and known["backend"] in self.candidates and known["backend"] not in self.dropped:
                self._keep({**known, "cached": True})
        return self.chosen is not None

    def _keep(self, choice: dict) -> Engine:
        self.choice = choice
        self.chosen = self.candidate(choice["backend"])
        for name in [n for n in self.opened if n != choice["backend"]]:
            self.opened.pop(name).close()
        self.meta.backend, self.meta.precision = self.chosen.meta.backend, self.chosen.meta.precision
        return self.chosen

    def precisions(self) -> tuple[str, ...]:
        return self.chosen.precisions() if self.chosen is not None else (self.meta.precision,)

    def set_precision(self, precision: str) -> None:
        if self.chosen is None:
            super().set_precision(precision)
            return
        self.chosen.set_precision(precision)
        self.meta.precision = self.chosen.meta.precision

    @property
    def plain_module(self):
        """The torch candidate's module (exact tiles run it layer by layer), None without one."""
        name = next((n for n in self.candidates if n.startswith("torch")), None)
        return getattr(self.candidate(name), "plain_module", None) if name else None

    def _run(self, x, stats, mix, collect=False):
        engine = self.chosen or self.choose(x)
        return engine._run(engine._input(x), stats, mix, collect)

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
        how = "cached choice" if self.choice.get("cached") else "measured " + _figures(self.choice)
        return f"{self.chosen.describe()} (fastest: {how})"

    def close(self) -> None:
        for engine in self.opened.values():
            engine.close()
        self.opened.clear()
