"""Automatic choices are checked for fidelity as well as timed (engines/fastest.py): a candidate
that is fast but wrong (noisy, shifted), or that raises (opening, compiling, capturing, at its
first run), is dropped with why; the run goes on with the next; the verdict is remembered."""

import re

import numpy as np
import pytest

from engines.base import Engine
from engines.errors import EngineError
from engines.fastest import FastestEngine
from streamgan import open_engine
from streamgan.translate.translator import Translator
from tests.streamgan.helpers import photo

pytest.importorskip("openvino")


class Wrapped(Engine):
    """A real OpenVINO fp32 engine (host: numpy in and out) with a fault or a slowdown."""

    host = True

    def __init__(self, inner: Engine, fault=None, repeats: int = 1):
        self.inner, self.meta, self.fault, self.repeats = inner, inner.meta, fault, repeats

    def run_host(self, x):
        for _ in range(self.repeats - 1):
            self.inner.run_host(x)
        y = self.inner.run_host(x)
        return self.fault(y) if self.fault else y

    def close(self):
        self.inner.close()


def _noisy(y):
    return y + np.random.default_rng(0).normal(0, 0.05, y.shape).astype(y.dtype)  # ~32 dB


def _shifted(y):
    return np.roll(y, 1, axis=-1)  # one pixel to the right


def _raises_at_run(y):
    raise RuntimeError("CUDA graph capture failed")


@pytest.fixture
def parts(ckpts):
    def ov():
        return open_engine(ckpts["resnet"], backend="openvino", precision="fp32")
    ref_engine = ov()
    yield ov, (lambda x: ref_engine.run_host(x))
    ref_engine.close()


@pytest.mark.parametrize("fault,why", [(_noisy, "dB to fp32"), (_shifted, "dB to fp32"),
                                       (_raises_at_run, "CUDA graph capture failed")])
def test_a_fast_but_wrong_or_failing_candidate_is_dropped(parts, fault, why):
    ov, reference = parts
    frame = photo(64, 96)
    want = Translator(ov())(frame)
    with FastestEngine({"fast": lambda: Wrapped(ov(), fault), "slow": lambda: Wrapped(ov(), repeats=4)},
                       key=f"fidelity-{fault.__name__}", host=True, probe_side=64, reference=reference) as eng:
        got = Translator(eng)(frame)
        assert eng.choice["backend"] == "slow" and "fast" in eng.choice["dropped"]
        assert why in eng.choice["dropped"]["fast"] and "dropped: fast" in eng.describe()
        assert eng.choice["db"]["slow"] >= 50
    assert np.array_equal(got, want)  # the run goes on, with the faithful candidate
    # the verdict is remembered: the next run opens the winner only, the reason kept
    with FastestEngine({"fast": lambda: Wrapped(ov(), fault), "slow": lambda: Wrapped(ov(), repeats=4)},
                       key=f"fidelity-{fault.__name__}", host=True, probe_side=64, reference=reference) as again:
        Translator(again)(frame)
        assert again.choice["cached"] and list(again.opened) == ["slow"] and "fast" in again.choice["dropped"]


def test_a_candidate_that_cannot_open_is_dropped(parts):
    ov, reference = parts

    def compile_error():
        raise RuntimeError("triton compile error: out of resources")
    with FastestEngine({"fused": compile_error, "plain": lambda: Wrapped(ov())}, key="fidelity-open",
                       host=True, probe_side=64, reference=reference) as eng:
        Translator(eng)(photo(64, 96))
        assert eng.choice["backend"] == "plain" and "triton compile error" in eng.dropped["fused"]


def test_when_every_candidate_fails_the_run_says_why(parts):
    ov, reference = parts
    with FastestEngine({"a": lambda: Wrapped(ov(), _noisy), "b": lambda: Wrapped(ov(), _raises_at_run)},
                       key="fidelity-none", host=True, probe_side=64, reference=reference) as eng:
        with pytest.raises(EngineError, match="every backend failed") as err:
            Translator(eng)(photo(64, 96))
    assert re.search(r"a \d+\.\d dB to fp32, below 50", str(err.value)) and "b failed: RuntimeError" in str(err.value)


def test_a_checkpoints_automatic_choice_is_checked_against_its_fp32_picture(ckpts):
    with open_engine(ckpts["resnet"]) as eng:  # auto on a CPU: OpenVINO or torch, each checked
        Translator(eng)(photo(64, 96))
        assert set(eng.choice["db"]) == set(eng.choice["ms"]) and not eng.choice.get("dropped")
        assert all(db >= 40 for db in eng.choice["db"].values()), eng.choice
        assert eng.choice["db"][eng.choice["backend"]] >= (50 if eng.meta.precision == "fp32" else 40)
