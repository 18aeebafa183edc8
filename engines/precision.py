"""An engine whose precision was chosen automatically, kept open to the other choice: the verdict
a probe gave at opening can be remade on a run's own frames (``set_precision``), and the fp32
picture is at hand to check a reduced-precision one against.

The variant at the other precision is opened only when first asked for; the engine the probe
chose is the one that runs until then. Everything else is the current variant's.

A reduced precision is a choice only where it is faster: a CPU flag is no promise (on a Sapphire
Rapids Xeon whose hypervisor hides AMX, AVX-512 BF16 alone runs OpenVINO's bf16 convolutions 1.5x
slower than fp32), so each backend's probe times both (``probe_verdict``; OpenVINO's int8 is
offered untimed and timed on the run's frames), and an engine whose reduced precision is not
faster is not opened to switch to it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from .base import Engine
from .cache import locked, read_json, update_json
from .errors import EngineError

REDUCED_DB = 40.0  # a reduced precision's picture against fp32's: at least this, or fp32 runs
REDUCED_SPEEDUP = 1.1  # ... and it must run at least this much faster (on the probe, or the frames)


def best_ms(runs: dict[str, Callable[[], object]], rounds: int = 3) -> dict[str, float]:
    """Milliseconds of each of ``runs`` (name -> call): one warm-up call each, then ``rounds``
    rounds calling each in turn, the best of each kept. Interleaved, so load that comes and goes
    on a shared machine falls on every contender alike (timed one after the other, a busy spell
    could make the faster one look slower)."""
    for run in runs.values():
        run()
    best = dict.fromkeys(runs, math.inf)
    for _ in range(rounds):
        for name, run in runs.items():
            t = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - t)
    return {name: 1000 * t for name, t in best.items()}


def probe_verdict(ms: dict[str, float], db: dict[str, float], untimed: tuple[str, ...] = ()) -> dict:
    """A backend's precisions measured on its probe: ``ms`` by precision (fp32 among them), ``db``
    of each reduced one to fp32's picture; ``untimed``: reduced precisions offered but not timed
    on the probe (int8: its speed is measured on the run's frames, where it is calibrated).
    ``faster``: the untimed ones, then the reduced precisions at least REDUCED_SPEEDUP times as
    fast as fp32, fastest first (the run's frames may take one of them); ``precision``: what the
    engine runs before any frame is seen: the fastest of the timed ones that stays >= REDUCED_DB,
    int8 aside (it needs the content's own ranges), else fp32."""
    faster = sorted((p for p in ms if p != "fp32" and ms[p] * REDUCED_SPEEDUP <= ms["fp32"]), key=ms.get)
    chosen = next((p for p in faster if p != "int8" and db.get(p, 0.0) >= REDUCED_DB), "fp32")
    return {"ms": {p: round(v, 2) for p, v in ms.items()}, "db": {p: round(min(v, 999.0), 1) for p, v in db.items()},
            "faster": [*untimed, *faster], "precision": chosen, **({"untimed": list(untimed)} if untimed else {})}


def measured_once(store, key: str, measure: Callable[[], dict]) -> dict:
    """The verdict remembered under ``key`` in the JSON file ``store``, or ``measure()``d now and
    remembered: by one process at a time, so runs started together time once and all run alike
    (timings under contention differ; verdicts must not)."""
    known = read_json(store, {})
    if key in known:
        return known[key]
    with locked(store.with_name(store.name + ".measure")):  # (update_json takes the store's own lock)
        known = read_json(store, {})
        if key not in known:
            known[key] = measure()
            update_json(store, lambda d: d.update({key: known[key]}))
        return known[key]


def faster_precisions(engine: Engine, reduced: str | None) -> list[str]:
    """The reduced precisions worth trying on ``engine``'s frames, fastest first: those its probe
    found faster than fp32, or ``reduced`` where it has no probe (CUDA's fp16)."""
    v = getattr(engine, "precision_probe", None)
    if v is None:
        return [reduced] if reduced else []
    return list(v["faster"])


def untimed_precisions(engine: Engine) -> list[str]:
    """The reduced precisions ``engine``'s probe offered without timing them (``probe_verdict``):
    a run's check times them on its frames before taking one."""
    v = getattr(engine, "precision_probe", None)
    return list(v.get("untimed", ())) if v else []


def choosing(engine: Engine) -> Engine:
    """The engine that chose its precision: a measured backend choice's winner once there is one
    (``FastestEngine.chosen``), else ``engine`` itself."""
    return getattr(engine, "chosen", None) or engine


def not_faster(engine: Engine) -> str:
    """Why ``engine`` runs fp32 without checking frames, where its probe found no reduced precision
    faster here ('' otherwise)."""
    v = getattr(engine, "precision_probe", None)
    if not v or v["faster"] or len(v["ms"]) < 2:
        return ""
    others = ", ".join(f"{p} {t:.1f} ms" for p, t in v["ms"].items() if p != "fp32")
    return (f"fp32: no reduced precision is faster on this machine ({others} against fp32's "
            f"{v['ms']['fp32']:.1f} on the probe), so no frame was checked")


class Switchable(Engine):
    """``engine`` (its precision chosen by its own probe) with ``others``: precision -> a factory
    opening the same model at that precision."""

    def __init__(self, engine: Engine, others: dict[str, Callable[[], Engine]], int8: bool = False):
        self.current = engine
        self.variants = {engine.meta.precision: engine}
        self.factories = {p: f for p, f in others.items() if p != engine.meta.precision}
        self.probed = engine.meta.precision  # what the probe chose
        self.untimed = untimed_precisions(engine)  # ... and what it offered without timing
        self.ranges: list | None = None  # int8's activation ranges, once calibrated
        if int8:
            self.factories["int8"] = self._quantized
        self.order = faster_precisions(engine, None) or [p for p in (*self.variants, *self.factories) if p != "fp32"]

    def _quantized(self) -> Engine:
        if self.ranges is None:
            raise EngineError("int8 runs only once calibrated on the run's frames")
        return self.variant("fp32").quantized(self.ranges)

    def candidates(self) -> list[str]:
        """The reduced precisions to try on the run's frames, fastest first."""
        return [p for p in self.order if p in self.precisions()]

    def observe(self, on: bool) -> None:
        """Record (``on``) the fp32 variant's activation ranges for int8, or stop."""
        self.variant("fp32").observe(on)

    def calibrate(self, ranges: list) -> None:
        """int8 from now on quantizes with these ``ranges`` (a variant made before is dropped)."""
        self.ranges = ranges
        old = self.variants.pop("int8", None)
        if old is not None and old is not self.current:
            old.close()

    def precisions(self) -> tuple[str, ...]:
        """The precisions this engine can run at: fp32 and the reduced ones."""
        return tuple(sorted({*self.variants, *self.factories}))

    def variant(self, precision: str) -> Engine:
        """The model at ``precision``, opened now if it is not yet."""
        if precision not in self.variants:
            if precision not in self.factories:
                raise EngineError(f"this engine runs at {', '.join(self.precisions())}, not {precision}")
            self.variants[precision] = self.factories[precision]()
        return self.variants[precision]

    def set_precision(self, precision: str) -> None:
        self.current = self.variant(precision)

    # what callers read of an engine: the current variant's
    @property
    def meta(self):
        return self.current.meta

    @property
    def host(self) -> bool:
        return self.current.host

    @property
    def device(self):
        return self.current.device

    @property
    def dtype(self):
        return self.current.dtype

    @property
    def inflight(self) -> int:
        return self.current.inflight

    def __getattr__(self, name):  # memory_format, plain_module, graphed, ... (only for names not found here)
        if name in ("current", "variants", "factories", "order", "ranges", "untimed"):
            raise AttributeError(name)
        return getattr(self.current, name)

    def run_host(self, x):
        return self.current.run_host(x)

    def start_host(self, x):
        return self.current.start_host(x)

    def _run(self, x, stats, mix, collect=False):
        return self.current._run(x, stats, mix, collect)

    def describe(self) -> str:
        return self.current.describe()

    def close(self) -> None:
        for engine in self.variants.values():
            engine.close()
        self.variants.clear()


def switchable(open_at: Callable[[str], Engine], precision: str | None, reduced: str | None) -> Engine:
    """``open_at(precision)``; where the precision is left to the engine ("auto" or None) and a
    reduced precision is faster here (its probe; ``reduced``, bf16 or fp16, where it has none),
    wrapped so that the choice between them and fp32 can be remade on the run's frames. int8 is
    opened from the fp32 variant with the activation ranges of the run's frames (``calibrate``)."""
    engine = open_at(precision or "auto")
    faster = faster_precisions(engine, reduced)
    if (precision or "auto") != "auto" or not faster:
        return engine
    others = {p: (lambda p=p: open_at(p)) for p in ("fp32", *faster) if p != "int8"}
    return Switchable(engine, others, int8="int8" in faster)
