"""An engine whose precision was chosen automatically, kept open to the other choice: the verdict
a probe gave at opening can be remade on a run's own frames (``set_precision``), and the fp32
picture is at hand to check a reduced-precision one against.

The variant at the other precision is opened only when first asked for; the engine the probe
chose is the one that runs until then. Everything else is the current variant's.
"""

from __future__ import annotations

from collections.abc import Callable

from .base import Engine
from .errors import EngineError


class Switchable(Engine):
    """``engine`` (its precision chosen by its own probe) with ``others``: precision -> a factory
    opening the same model at that precision."""

    def __init__(self, engine: Engine, others: dict[str, Callable[[], Engine]]):
        self.current = engine
        self.variants = {engine.meta.precision: engine}
        self.factories = {p: f for p, f in others.items() if p != engine.meta.precision}
        self.probed = engine.meta.precision  # what the probe chose

    def precisions(self) -> tuple[str, ...]:
        """The precisions this engine can run at: fp32 and one reduced precision."""
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
        if name in ("current", "variants", "factories"):
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
    ``reduced`` precision (bf16, fp16) is possible here, wrapped so that the choice between it and
    fp32 can be remade on the run's frames."""
    engine = open_at(precision or "auto")
    if (precision or "auto") != "auto" or reduced is None:
        return engine
    return Switchable(engine, {p: (lambda p=p: open_at(p)) for p in ("fp32", reduced)})
