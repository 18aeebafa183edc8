"""Precision by content (streamgan/translate/content_check.py): the reduced precision is kept or refused on the
run's own frames, rechecked on a later frame, and the verdict with its dB is in the report.

The reduced-precision variant is injected (an engine whose picture carries noise of a chosen size,
from a chosen frame on) around a real fp32 engine of a checkpoint, so every verdict is seen both
ways on any CPU; the real bf16 path is exercised by test_artifacts where the CPU has bf16. Outputs
are compared with the fp32 run of the same decoded frames (an RGB-exact clip)."""

import time

import numpy as np
import pytest
import torch

from engines.base import Engine
from engines.precision import Switchable
from streamgan.media.video import VideoReader
from streamgan.offline.video import translate_video
from streamgan.translate.content_check import ContentCheck
from streamgan.translate.engine import open_engine
from streamgan.translate.translator import Translator
from tests.conftest import DEVICES
from tests.streamgan.helpers import db, photo, tiny_resnet, write_clip


class Degraded(Engine):
    """``engine``'s picture plus Gaussian noise of ``sigma`` (in the output's range) from host call
    ``from_call`` on, claiming ``precision``: a stand-in for a reduced precision that fails on some
    content. Counts its calls."""

    def __init__(self, engine: Engine, sigma: float, from_call: int = 0, precision: str = "bf16", delay: float = 0.0,
                 spell: tuple[int, ...] = (), resized: float = 0.0):
        import dataclasses
        self.engine, self.sigma, self.from_call, self.delay = engine, sigma, from_call, delay  # delay: s a call
        self.spell = spell  # calls (1 = the first) slowed by 0.2 s more: a busy spell on a shared machine
        self.resized, self.first_shape = resized, None  # s more a call at another size than the first's
        self.meta = dataclasses.replace(engine.meta, precision=precision)
        self.calls = 0
        self.rng = np.random.default_rng(0)

    @property
    def host(self):
        return self.engine.host

    @property
    def device(self):
        return self.engine.device

    def _noise(self, y):
        self.calls += 1
        time.sleep(self.delay + (0.2 if self.calls in self.spell else 0.0))
        if self.calls > self.from_call:
            noise = self.rng.normal(0, self.sigma, tuple(y.shape)).astype(np.float32)
            y = y + (noise if isinstance(y, np.ndarray) else torch.from_numpy(noise).to(y.device))
        return y

    def run_host(self, x):
        self.first_shape = self.first_shape or x.shape
        time.sleep(self.resized if x.shape != self.first_shape else 0.0)
        return self._noise(self.engine.run_host(x))

    def _run(self, x, stats, mix, collect=False):
        y, own = self.engine._run(x, stats, mix, collect)
        return self._noise(y), own


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("content")
    ckpt = tiny_resnet(d / "g.pth", n_blocks=2, ngf=8)
    frames = [photo(72, 96, shift=3 * i) for i in range(12)]
    return d, ckpt, write_clip(d / "pan.mkv", frames, codec="libx264rgb", pix_fmt="rgb24", crf=0)


# the engines checked: OpenVINO (a host engine, numpy frames) and torch on every device present
KINDS = [("openvino", "cpu")] + [("torch", d) for d in DEVICES]


def _switchable(ckpt, sigma: float, from_call: int = 0, start: str = "bf16", kind=KINDS[0]):
    """An fp32 engine of ``ckpt`` (``kind``: backend, device) and a 'bf16' variant degraded by
    ``sigma``; ``start``: the precision its probe chose."""
    backend, device = kind
    exact = open_engine(ckpt, backend=backend, device=device, precision="fp32")
    low = Degraded(open_engine(ckpt, backend=backend, device=device, precision="fp32"), sigma, from_call)
    first, other = (low, lambda: exact) if start == "bf16" else (exact, lambda: low)
    return Switchable(first, {"fp32" if start == "bf16" else "bf16": other}), low


def _frames(path) -> list[np.ndarray]:
    return [f.rgb for f in VideoReader(path)]


def _fp32(ckpt, clip, out, kind=KINDS[0]) -> list[np.ndarray]:
    with open_engine(ckpt, backend=kind[0], device=kind[1], precision="fp32") as exact:
        translate_video(clip, out, exact, codec="libx264rgb", crf=0, progress=False, quiet=True)
    return _frames(out)


# sigma 0.002 of a [-1, 1] output is 60 dB: faithful; 0.05 is 32 dB: not
FAITHFUL, NOISY = 0.002, 0.05


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("start", ["bf16", "fp32"])
def test_faithful_reduced_precision_is_kept_whatever_the_probe_said(clip, tmp_path, start, kind):
    """The issue's case: a probe that chose fp32 does not decide; the frames do (and back)."""
    d, ckpt, path = clip
    engine, low = _switchable(ckpt, FAITHFUL, start=start, kind=kind)
    report = translate_video(path, tmp_path / "o.mkv", engine, codec="libx264rgb", crf=0, progress=False,
                             quiet=True)
    assert report["precision"] == "bf16"
    text = report["precision_check"]
    assert text.startswith("bf16:") and f"the probe had chosen {start}" in text and "rechecked at frame 9" in text
    assert low.calls >= 12  # every frame ran on the reduced variant
    ref = _fp32(ckpt, path, tmp_path / "ref.mkv", kind)
    got = _frames(tmp_path / "o.mkv")
    assert len(got) == len(ref) == 12
    assert min(db(a, b) for a, b in zip(got, ref)) >= 40


@pytest.mark.parametrize("kind", KINDS)
def test_unfaithful_reduced_precision_is_refused_on_the_first_frames(clip, tmp_path, kind):
    d, ckpt, path = clip
    engine, low = _switchable(ckpt, NOISY, kind=kind)
    report = translate_video(path, tmp_path / "o.mkv", engine, codec="libx264rgb", crf=0, progress=False,
                             quiet=True)
    assert report["precision"] == "fp32"
    assert report["precision_check"].startswith("fp32: bf16 is 3")  # ~32 dB, named
    assert "rechecked" not in report["precision_check"]  # nothing reduced left to recheck
    assert "on the first frame (below the floor there, so not run on the 2 spread" in report["precision_check"]
    assert low.calls == 1  # the first frame, below the floor: not the two spread over the clip, nor any later
    ref = _fp32(ckpt, path, tmp_path / "ref.mkv", kind)
    got = _frames(tmp_path / "o.mkv")
    assert min(db(a, b) for a, b in zip(got, ref)) >= 60  # every frame is fp32's own (noisy: ~32 dB)


@pytest.mark.parametrize("kind", KINDS)
def test_recheck_catches_content_that_goes_wrong_later(clip, tmp_path, kind):
    """Faithful on the frames checked first, noisy from the sixth call on: the recheck at frame 9
    finds it and fp32 runs from there; the report says where."""
    d, ckpt, path = clip
    engine, low = _switchable(ckpt, NOISY, from_call=5, kind=kind)
    report = translate_video(path, tmp_path / "o.mkv", engine, codec="libx264rgb", crf=0, progress=False,
                             quiet=True)
    text = report["precision_check"]
    assert "rechecked at frame 9" in text and "below 40: fp32 from there on" in text, text
    assert report["precision"] == "fp32"
    ref = _fp32(ckpt, path, tmp_path / "ref.mkv", kind)
    got = _frames(tmp_path / "o.mkv")
    tail = [db(a, b) for a, b in zip(got[10:], ref[10:])]  # after the recheck (frames in flight aside)
    assert min(tail) >= 60


def test_verdict_remembered_for_the_same_content(clip, tmp_path):
    d, ckpt, path = clip
    engine, low = _switchable(ckpt, FAITHFUL)
    engine.model_key = "degraded-for-cache-test"
    translate_video(path, tmp_path / "a.mkv", engine, codec="libx264rgb", crf=0, progress=False, quiet=True)
    engine2, low2 = _switchable(ckpt, FAITHFUL)
    engine2.model_key = "degraded-for-cache-test"
    report = translate_video(path, tmp_path / "b.mkv", engine2, codec="libx264rgb", crf=0, progress=False,
                             quiet=True)
    assert "remembered" in report["precision_check"] and report["precision"] == "bf16"
    assert low2.calls == 12  # each frame once: no samples, no recheck


def test_fixed_precision_is_not_checked(clip, tmp_path):
    d, ckpt, path = clip
    with open_engine(ckpt, backend="openvino", precision="fp32") as engine:
        report = translate_video(path, tmp_path / "o.mkv", engine, codec="libx264rgb", crf=0, progress=False,
                                 quiet=True)
    assert report["precision_check"] == ""


def test_check_leaves_the_translators_state_alone(clip):
    """The check's extra translations do not count as frames nor shift the timings or statistics."""
    d, ckpt, path = clip
    engine, _ = _switchable(ckpt, FAITHFUL)
    tr = Translator(engine)
    check = ContentCheck(tr, samples=lambda: _frames(path)[5:7])
    first = check.before(_frames(path)[0])
    assert first is not None and tr.frames == 1
    assert check.verdict["precision"] == "bf16" and len(check.verdict["db"]) == 3


@pytest.mark.parametrize("faster", [True, False])
def test_a_precision_the_probe_did_not_time_is_timed_on_the_frames(clip, tmp_path, faster):
    """A reduced precision offered untimed (OpenVINO's int8) is taken only where its frames run
    faster than fp32's: the fp32 variant made 40 ms a call slower, it is taken; the faithful
    reduced one made that much slower instead, fp32 runs, and the report says why."""
    d, ckpt, path = clip
    exact = open_engine(ckpt, backend="openvino", precision="fp32")
    slow_fp32 = Degraded(exact, 0.0, precision="fp32", delay=0.04 if faster else 0.0)
    low = Degraded(open_engine(ckpt, backend="openvino", precision="fp32"), FAITHFUL, delay=0.0 if faster else 0.04)
    engine = Switchable(slow_fp32, {"bf16": lambda: low})
    engine.untimed = ["bf16"]
    report = translate_video(path, tmp_path / "o.mkv", engine, codec="libx264rgb", crf=0, progress=False,
                             quiet=True)
    text = report["precision_check"]
    assert report["precision"] == ("bf16" if faster else "fp32"), text
    assert " ms a frame against fp32's " in text and ("not enough faster" in text) != faster, text
    # the first frame, the two spread over the clip (timed), then the rest; refused: timed again,
    # two interleaved rounds of two frames, before it is (a busy spell does not refuse it)
    assert low.calls == 3 + (11 if faster else 2 * 2)
    ref = _fp32(ckpt, path, tmp_path / "ref.mkv")
    got = _frames(tmp_path / "o.mkv")
    assert min(db(a, b) for a, b in zip(got, ref)) >= (40 if faster else 60)  # refused: fp32's own pictures



def test_an_untimed_precision_faithful_only_on_the_first_frame(clip, tmp_path):
    """The untimed precision passes on the first frame, is timed on the spread frames and falls
    below the floor there: fp32 runs and the report says why (building it raised KeyError before:
    a phone clip whose int8 read 40.5 dB, then 39.9)."""
    d, ckpt, path = clip
    exact = open_engine(ckpt, backend="openvino", precision="fp32")
    low = Degraded(open_engine(ckpt, backend="openvino", precision="fp32"), NOISY, from_call=1)
    engine = Switchable(exact, {"bf16": lambda: low})
    engine.untimed = ["bf16"]
    engine.model_key = "faithful-on-the-first-frame-only"  # (no verdict of another test's remembered)
    report = translate_video(path, tmp_path / "o.mkv", engine, codec="libx264rgb", crf=0, progress=False,
                             quiet=True)
    text = report["precision_check"]
    assert report["precision"] == "fp32" and text.startswith("fp32: bf16 is 3"), text  # ~32 dB at worst
    ref = _fp32(ckpt, path, tmp_path / "ref.mkv")
    assert min(db(a, b) for a, b in zip(_frames(tmp_path / "o.mkv"), ref)) >= 60

def test_a_busy_spell_while_timing_does_not_refuse_a_faster_precision(clip, tmp_path):
    """The untimed precision's first timing (its spread frames) falls in a busy spell: it is timed
    again, interleaved with fp32, and taken."""
    d, ckpt, path = clip
    slow_fp32 = Degraded(open_engine(ckpt, backend="openvino", precision="fp32"), 0.0, precision="fp32", delay=0.04)
    low = Degraded(open_engine(ckpt, backend="openvino", precision="fp32"), FAITHFUL, spell=(2, 3))
    engine = Switchable(slow_fp32, {"bf16": lambda: low})
    engine.untimed = ["bf16"]
    report = translate_video(path, tmp_path / "o.mkv", engine, codec="libx264rgb", crf=0, progress=False,
                             quiet=True)
    assert report["precision"] == "bf16", report["precision_check"]
    assert low.calls == 3 + 2 * 2 + 11  # checked, timed again (two rounds of two), the rest


def test_a_precision_is_timed_as_the_run_goes_and_on_the_first_frames_size(clip, monkeypatch):
    """A run whose frames go one at a time (a stage that does not overlap them) has the untimed
    precision timed that way, never in flight; and frames of another size (a folder of images)
    are checked but not timed (their size would add its compilation: here 0.2 s a call)."""
    d, ckpt, path = clip
    slow_fp32 = Degraded(open_engine(ckpt, backend="openvino", precision="fp32"), 0.0, precision="fp32", delay=0.04)
    low = Degraded(open_engine(ckpt, backend="openvino", precision="fp32"), FAITHFUL, resized=0.2)
    engine = Switchable(slow_fp32, {"bf16": lambda: low})
    engine.untimed = ["bf16"]
    tr = Translator(engine)
    monkeypatch.setattr(tr, "submit", lambda *a: pytest.fail("a one-at-a-time run's check ran frames in flight"))
    frames = _frames(path)
    other = np.ascontiguousarray(frames[5][:48, :64])
    check = ContentCheck(tr, samples=lambda: [other, frames[6]])
    assert check.before(frames[0]) is not None
    assert check.verdict["precision"] == "bf16", check.describe()
    assert len(check.verdict["db"]) == 3 and check.verdict["ms"]["bf16"] < 40  # all checked; timed at one size
