"""int8 by content (engines/openvino_backend.py quantized_model, streamgan/translate/content_check.py)
and reduced precisions chosen only where they are faster (engines/precision.py).

int8 convolutions are quantized over the activation ranges of the run's own fp32 frames; the
content check takes them only where every checked frame stays >= 40 dB from fp32. A random-weight
ResNet is a hard case for int8 (33-34 dB on photographs, measured): at the real floor int8 is
refused; with the floor lowered to 30 dB it is taken, and the run's frames are then the int8
graph's own pictures, not fp32's, which shows the quantized graph really ran."""

import numpy as np
import pytest

pytest.importorskip("openvino")

from engines.precision import Switchable, choosing, not_faster, probe_verdict, switchable  # noqa: E402
from streamgan.media.video import VideoReader  # noqa: E402
from streamgan.offline.video import translate_video  # noqa: E402
from streamgan.translate import content_check  # noqa: E402
from streamgan.translate.engine import open_engine  # noqa: E402
from streamgan.translate.translator import Translator  # noqa: E402
from tests.streamgan.helpers import db, photo, tiny_resnet, write_clip  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("int8")
    ckpt = tiny_resnet(d / "g.pth", n_blocks=2, ngf=8)
    frames = [photo(72, 96, shift=3 * i) for i in range(12)]
    return d, ckpt, write_clip(d / "pan.mkv", frames, codec="libx264rgb", pix_fmt="rgb24", crf=0), frames


def _fp32(ckpt):
    return open_engine(ckpt, backend="openvino", precision="fp32")


def _frames(path) -> list[np.ndarray]:
    return [f.rgb for f in VideoReader(path)]


def test_quantized_graph_runs_int8_kernels_over_the_observed_ranges(model):
    import openvino as ov
    d, ckpt, _, frames = model
    engine = _fp32(ckpt)
    fp32 = Translator(engine)
    engine.observe(True)
    refs = [fp32(f) for f in frames[:3]]
    engine.observe(False)
    ranges = engine.observed()
    assert len(ranges) >= 7 and all(lo <= hi for lo, hi in ranges)
    assert ranges[0][0] < -0.9 and ranges[0][1] > 0.9  # the first convolution sees the [-1, 1] image
    # the pictures while observing are fp32's own (against an engine that never observed)
    plain = Translator(_fp32(ckpt))
    assert min(db(a, plain(f)) for a, f in zip(refs, frames)) >= 100
    # ... and a plain fp32 call at the frames' size runs on that compilation (a recheck's reference)
    compiled = len(engine._compiled)
    assert db(fp32(frames[5]), plain(frames[5])) >= 100 and len(engine._compiled) == compiled
    q = engine.quantized(ranges)
    assert q.meta.precision == "int8" and engine.meta.precision == "fp32"
    graph = q.graphs[False]
    m = graph.model.clone()
    m.reshape({graph.binding.image.name: [1, 3, 72, 96]})
    runtime = ov.Core().compile_model(m, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}).get_runtime_model()
    kinds = {(o.get_rt_info()["layerType"].astype(str), o.get_rt_info()["runtimePrecision"].astype(str))
             for o in runtime.get_ordered_ops()}
    assert ("Convolution", "u8") in kinds or ("Convolution", "i8") in kinds, kinds
    int8 = Translator(q)
    # unseen frames: quantization noise, not clipping (measured 33-34 dB; fp32 would be > 100)
    held_out = [db(int8(f), fp32(f)) for f in frames[6::2]]
    assert 28 <= min(held_out) and max(held_out) < 45, held_out
    # ranges a tenth of the truth clip every activation: the ranges are what quantizes
    clipped = Translator(engine.quantized([[lo / 10, hi / 10] for lo, hi in ranges]))
    assert max(db(clipped(f), fp32(f)) for f in frames[6::2]) < min(held_out) - 10


def _int8_switchable(ckpt) -> Switchable:
    """The fp32 engine of ``ckpt`` opened to switch to int8 (whatever this CPU's probe says)."""
    engine = Switchable(_fp32(ckpt), {}, int8=True)
    engine.model_key = f"int8-test-{ckpt}"
    return engine


def _run(engine, clip, out):
    return translate_video(clip, out, engine, codec="libx264rgb", crf=0, progress=False, quiet=True)


def test_int8_refused_where_the_frames_say_so(model, tmp_path):
    d, ckpt, clip, _ = model
    report = _run(_int8_switchable(ckpt), clip, tmp_path / "o.mkv")
    assert report["precision"] == "fp32"
    assert report["precision_check"].startswith("fp32: int8 is 3"), report["precision_check"]  # ~33 dB, named
    with _fp32(ckpt) as exact:
        _run(exact, clip, tmp_path / "ref.mkv")
    got, ref = _frames(tmp_path / "o.mkv"), _frames(tmp_path / "ref.mkv")
    assert len(got) == 12 and min(db(a, b) for a, b in zip(got, ref)) >= 60


def test_int8_taken_calibrated_on_the_run_and_remembered(model, tmp_path, monkeypatch):
    """With the floor at 30 dB, int8 (33-34 dB here) is the verdict: every frame is the picture
    of the int8 graph quantized over the remembered ranges, a second run opens that graph from
    the remembered ranges without checking, and gives the same frames."""
    d, ckpt, clip, frames = model
    monkeypatch.setattr(content_check, "REDUCED_DB", 30.0)
    monkeypatch.setenv("STREAMGAN_CACHE", str(tmp_path / "cache"))
    report = _run(_int8_switchable(ckpt), clip, tmp_path / "a.mkv")
    assert report["precision"] == "int8" and report["precision_check"].startswith("int8: int8 is 3")
    verdict = next(iter(content_check.read_json(content_check._store()).values()))
    # the ranges cover the first frame's own fp32 activations
    fp32 = _fp32(ckpt)
    fp32.observe(True)
    Translator(fp32)(_frames(clip)[0])
    first = fp32.observed()
    assert all(lo <= a and b <= hi for (lo, hi), (a, b) in zip(verdict["ranges"], first))
    int8 = Translator(fp32.quantized(verdict["ranges"]))
    got = _frames(tmp_path / "a.mkv")
    own = [int8(f) for f in _frames(clip)]
    assert min(db(a, b) for a, b in zip(got, own)) >= 60  # the int8 graph's pictures ...
    exact = Translator(_fp32(ckpt))
    assert max(db(a, exact(f)) for a, f in zip(got, _frames(clip))) < 40  # ... not fp32's
    again = _run(_int8_switchable(ckpt), clip, tmp_path / "b.mkv")
    assert "remembered" in again["precision_check"] and again["precision"] == "int8"
    assert min(db(a, b) for a, b in zip(got, _frames(tmp_path / "b.mkv"))) >= 60


def test_probe_verdict_takes_a_reduced_precision_only_where_faster():
    v = probe_verdict({"fp32": 4.0, "bf16": 5.2, "int8": 2.5}, {"bf16": 52.0, "int8": 45.0})
    assert v["faster"] == ["int8"] and v["precision"] == "fp32"  # bf16 slower; int8 only by content
    v = probe_verdict({"fp32": 4.0, "bf16": 2.0, "int8": 1.5}, {"bf16": 52.0, "int8": 45.0})
    assert v["faster"] == ["int8", "bf16"] and v["precision"] == "bf16"
    v = probe_verdict({"fp32": 4.0, "bf16": 2.0}, {"bf16": 38.0})
    assert v["faster"] == ["bf16"] and v["precision"] == "fp32"  # faster but unfaithful on the probe
    assert probe_verdict({"fp32": 4.0, "bf16": 3.8}, {"bf16": 52.0})["faster"] == []  # within 10%: no
    v = probe_verdict({"fp32": 4.0, "bf16": 2.0}, {"bf16": 52.0}, ("int8",))  # int8 offered, timed on frames
    assert v["faster"] == ["int8", "bf16"] and v["untimed"] == ["int8"] and v["precision"] == "bf16"


def test_openvino_probe_offers_int8_untimed_and_compiles_no_int8_graph(model, tmp_path, monkeypatch):
    """The probe compiles fp32 (and bf16 where offered), never an int8 or observing graph: int8's
    speed is measured on the run's frames (test_content_check), where it is calibrated."""
    import openvino as ov
    caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    if "INT8" not in caps:
        pytest.skip("this CPU's OpenVINO plugin offers no int8")
    monkeypatch.setenv("STREAMGAN_CACHE", str(tmp_path))
    d, ckpt, clip, _ = model
    with open_engine(ckpt, backend="openvino") as engine:
        v = choosing(engine).current.precision_probe  # (the variant its probe opened)
    assert v["untimed"] == ["int8"] and v["faster"][0] == "int8" and "int8" not in v["ms"]
    assert len(list((tmp_path / "openvino").glob("*.blob"))) == 1 + ("BF16" in caps)  # fp32, bf16 at 128 px


def test_no_faster_precision_is_neither_switched_nor_checked(model, tmp_path):
    d, ckpt, clip, _ = model
    engine = _fp32(ckpt)
    engine.precision_probe = probe_verdict({"fp32": 3.0, "bf16": 5.0, "int8": 3.2}, {"bf16": 52.0, "int8": 45.0})
    assert switchable(lambda precision: engine, None, "bf16") is engine
    report = _run(engine, clip, tmp_path / "o.mkv")
    assert report["precision_check"] == not_faster(engine)
    assert report["precision_check"].startswith("fp32: no reduced precision is faster on this machine (bf16 5.0 ms")
    engine.precision_probe = probe_verdict({"fp32": 3.0, "bf16": 5.0, "int8": 2.0}, {"bf16": 52.0, "int8": 45.0})
    wrapped = switchable(lambda precision: engine, None, "bf16")
    assert isinstance(wrapped, Switchable) and wrapped.candidates() == ["int8"]


def test_live_run_does_not_try_int8(model, tmp_path, monkeypatch):
    """`run --live` (a file played at its own rate) with int8 offered and the floor at 30 dB, where
    a file run takes it: a live run checks its first frame only, too little to calibrate on, so it
    runs fp32 and says why; every recorded frame is fp32's picture of its source frame, and every
    frame received is written or counted dropped."""
    import json

    import av

    import streamgan.translate.engine as opening
    from streamgan.cli import main
    d, ckpt, clip, _ = model
    monkeypatch.setattr(content_check, "REDUCED_DB", 30.0)
    monkeypatch.setattr(opening, "switchable", lambda at, precision, reduced: Switchable(at("fp32"), {}, int8=True))
    out, stats = tmp_path / "live.mkv", tmp_path / "live.json"
    assert main(["run", "--engine", str(ckpt), "--backend", "openvino", "--input", str(clip), "--output", str(out),
                 "--live", "--codec", "libx264rgb", "--crf", "0", "--no-progress", "--quiet",
                 "--stats-json", str(stats)]) == 0
    report = json.loads(stats.read_text())
    assert report["precision"] == "fp32", report
    assert report["precision_check"].startswith("fp32: int8 is not tried on a live run")
    assert report["written"] + report["dropped"] == report["received"] == 12  # none lost unaccounted
    exact = Translator(_fp32(ckpt))
    src = _frames(clip)
    with av.open(str(out)) as c:  # each recorded frame against its source frame, by timestamp (12 fps)
        s = c.streams.video[0]
        got = [(round(float(f.pts * s.time_base) * 12), f.to_ndarray(format="rgb24")) for f in c.decode(s)]
    assert len(got) == report["written"] >= 10
    assert min(db(a, exact(src[i])) for i, a in got) >= 60


def test_tiled_frames_do_not_try_int8_and_are_translated_once(model, tmp_path, monkeypatch):
    """Tiled frames give int8 no whole frame's activations to calibrate on: int8 is not tried, the
    report says why, and every frame is translated once (the check translated the first frame at
    fp32, found nothing to calibrate, threw the picture away and the run translated the frame
    again: a 24 Mpx photograph, tiled, took 80 s instead of 40)."""
    from streamgan.translate.translator import TranslateOptions
    d, ckpt, clip, _ = model
    calls = []  # translations: one at a time (__call__), or started in flight (_host_in, on the way)
    for name in ("__call__", "_host_in"):
        def counted(self, rgb, *a, _f=getattr(Translator, name), _name=name, **k):
            calls.append(_name)
            return _f(self, rgb, *a, **k)
        monkeypatch.setattr(Translator, name, counted)
    report = translate_video(clip, tmp_path / "o.mkv", _int8_switchable(ckpt), options=TranslateOptions(tile=48),
                             codec="libx264rgb", crf=0, progress=False, quiet=True)
    assert report["precision_check"].startswith("fp32: int8 is not tried on tiled frames or carried statistics")
    assert report["frames_out"] == 12 and len(calls) == 12, calls
