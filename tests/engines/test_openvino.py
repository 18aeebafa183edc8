"""OpenVINO engine (.onnx and .xml IR) against the fp32 torch reference, and the measured backend choice."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from engines.base import Engine
from engines.errors import EngineError
from engines.fastest import FastestEngine
from engines.metrics import psnr
from engines.openvino_backend import OpenVINOEngine
from streamgan import open_engine
from streamgan.cli import main
from streamgan.translate.build import build
from streamgan.translate.translator import TranslateOptions, Translator
from tests.streamgan.helpers import reference_output, textured_frames, write_clip

pytest.importorskip("openvino")


@pytest.mark.parametrize("kind", ["resnet", "unet"])
def test_ir_fp32_and_bf16_match_torch_on_two_sizes(ckpts, tmp_path, kind):
    xml = tmp_path / f"{kind}.xml"
    build(ckpts[kind], xml)
    assert xml.exists() and xml.with_suffix(".bin").exists()
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]  # no temp files left
    # floors from the precision (fp32: rounding only, > 100 dB, measured 125-145; bf16's 8 bits: 40),
    # not build.validate's gates
    for precision, need in (("fp32", 100), ("bf16", 40)):
        with open_engine(xml, precision=precision) as eng:
            assert isinstance(eng, OpenVINOEngine) and eng.meta.precision == precision
            assert eng.meta.stats_width > 0 and eng.meta.arch.startswith(kind)
            for h, w in ((32, 64), (96, 32)):
                x = torch.rand(2, 3, h, w) * 2 - 1
                assert psnr(eng.infer(x), reference_output(ckpts[kind], x)) >= need
            if precision == "fp32":  # frames in flight on throughput streams, statistics inputs fed too
                frames = textured_frames(3, 64, 96)
                tr, done = Translator(eng), []
                for i, f in enumerate(frames):
                    done += tr.submit(f, i)
                done += tr.flush()
                assert [i for i, _ in done] == [0, 1, 2]
                for (_, got), f in zip(done, frames):
                    assert np.abs(got.astype(int) - Translator(eng)(f)).max() <= 2


def test_onnx_through_openvino_thumbnail_tiles_match_torch(ckpts, tmp_path):
    onnx_path = tmp_path / "r.onnx"
    build(ckpts["resnet"], onnx_path, do_validate=False)
    frame = textured_frames(1, 96, 128)[0]
    opts = TranslateOptions(tile=48, thumbnail=64, norm_stats="thumbnail")
    a = Translator(open_engine(ckpts["resnet"], backend="torch", precision="fp32"), opts)(frame)
    eng = open_engine(onnx_path, backend="openvino", precision="fp32")
    b = Translator(eng, TranslateOptions(tile=48, thumbnail=64, norm_stats="thumbnail"))(frame)
    assert psnr(torch.from_numpy(b), torch.from_numpy(a), 255.0) >= 50
    # statistics collected by OpenVINO equal torch's
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    ref = open_engine(ckpts["resnet"], backend="torch", precision="fp32").collect_stats(x)
    assert torch.allclose(eng.collect_stats(x), ref, atol=1e-4, rtol=1e-4)


def test_checkpoint_runs_the_plain_graph_and_opens_the_statistics_graph_on_demand(ckpts):
    x = torch.rand(1, 3, 32, 48) * 2 - 1
    with open_engine(ckpts["resnet"], backend="openvino", precision="fp32") as eng:
        assert psnr(eng.infer(x), reference_output(ckpts["resnet"], x)) >= 100  # fp32: rounding only
        assert list(eng.graphs) == [False] and not eng.binding.stats_io  # no statistics graph yet
        assert "MVN" in {op.get_type_name() for op in eng.graphs[False].model.get_ops()}  # one op a norm
        ref = open_engine(ckpts["resnet"], backend="torch", precision="fp32").collect_stats(x)
        assert torch.allclose(eng.collect_stats(x), ref, atol=1e-4, rtol=1e-4)
        assert eng.graphs[True].binding.stats_io and eng.meta.stats_width == ref.shape[1]


def test_auto_backend_measures_once_and_remembers(ckpts):
    x = torch.rand(1, 3, 32, 48) * 2 - 1
    with open_engine(ckpts["resnet"], device="cpu") as eng:
        assert isinstance(eng, FastestEngine)
        y = eng.infer(x)
        assert eng.choice["backend"] in ("torch", "openvino") and not eng.choice["cached"]
        assert set(eng.choice["ms"]) == {"torch", "openvino"} and eng.meta.backend in ("torch", "openvino")
        assert eng.choice["backend"] in eng.describe() or eng.meta.backend in eng.describe()
        assert psnr(y, reference_output(ckpts["resnet"], x)) >= 40
    store = Path(os.environ["STREAMGAN_CACHE"]) / "choices" / "fastest.json"
    assert any("1x3x32x48" in k for k in json.loads(store.read_text()))
    with open_engine(ckpts["resnet"], device="cpu") as again:
        again.infer(x)
        assert again.choice["cached"] and again.choice["backend"] == eng.choice["backend"]
        assert list(again.opened) == [again.choice["backend"]]  # the loser is not even opened


def test_a_remembered_host_choice_gets_whole_frames_and_opens_nothing_else(ckpts):
    frame = textured_frames(1, 64, 96, seed=2)[0]

    def openvino():
        return open_engine(ckpts["resnet"], backend="openvino", precision="fp32")

    with FastestEngine({"openvino": openvino}, key="remembered-host") as first:  # the measured winner
        want = Translator(first)(frame)

    def torch_candidate():
        raise AssertionError("the losing candidate was opened")
    with FastestEngine({"openvino": openvino, "torch": torch_candidate}, key="remembered-host") as eng:
        tr = Translator(eng)
        assert not eng.host  # not known before a frame size is
        got = tr(frame)
        assert eng.host and eng.choice["cached"] and list(eng.opened) == ["openvino"] and not eng.dropped
        assert np.array_equal(got, want)


class FourTimes(Engine):
    """A real engine that does its work four times a call: a clearly slower candidate."""

    host = True

    def __init__(self, inner: Engine):
        self.inner, self.meta = inner, inner.meta

    def run_host(self, x):
        for _ in range(3):
            self.inner.run_host(x)
        return self.inner.run_host(x)

    def close(self):
        self.inner.close()


def test_a_clearly_slower_candidate_is_ruled_out_on_the_probe_before_any_frame(ckpts):
    def openvino():
        return open_engine(ckpts["resnet"], backend="openvino", precision="fp32")

    frame = textured_frames(1, 48, 64, seed=4)[0]
    with FastestEngine({"slow": lambda: FourTimes(openvino()), "fast": openvino}, key="ruled-out", probe_side=64,
                       probe_decides=False) as eng:
        tr = Translator(eng)
        got = tr(frame)
        assert eng.choice["backend"] == "fast" and list(eng.opened) == ["fast"] and eng.choice["probe"] == [64, 64]
        assert "on a 64x64 probe" in eng.describe()  # (how much slower it measured is the bench's business)
    with openvino() as alone:
        assert np.array_equal(got, Translator(alone)(frame))
    store = Path(os.environ["STREAMGAN_CACHE"]) / "choices" / "fastest.json"
    assert any(k.startswith("ruled-out") and k.endswith("1x3x48x64") for k in json.loads(store.read_text()))


def test_checkpoint_through_openvino_needs_no_torch_once_exported(ckpts, tmp_path):
    import subprocess
    import sys
    clip = write_clip(tmp_path / "in.mp4", textured_frames(4, 48, 64), audio_streams=1)
    code = ("import sys; from streamgan.cli import main; "
            "rc = main(sys.argv[1:]); print('torch loaded:', 'torch' in sys.modules); sys.exit(rc)")
    env = {**os.environ, "STREAMGAN_CACHE": str(tmp_path / "c")}
    runs = []
    for name in ("first.mp4", "again.mp4"):
        runs.append(subprocess.run([sys.executable, "-c", code, "run", "--engine", str(ckpts["resnet"]),
                                    "--backend", "openvino", "--input", str(clip), "--no-progress",
                                    "--output", str(tmp_path / name)], capture_output=True, text=True, env=env))
        assert runs[-1].returncode == 0, runs[-1].stderr
    assert "torch loaded: True" in runs[0].stdout  # loads and exports the checkpoint
    assert "torch loaded: False" in runs[1].stdout  # metadata and graph from the cache
    from streamgan.media.video import VideoReader
    first, again = ([f.rgb for f in VideoReader(tmp_path / n)] for n in ("first.mp4", "again.mp4"))
    assert len(first) == len(again) == 4 and all(np.array_equal(a, b) for a, b in zip(first, again))


def test_fixed_batch_graph_gets_tiles_one_at_a_time(ckpts, tmp_path):
    onnx_path = tmp_path / "b1.onnx"
    build(ckpts["resnet"], onnx_path, static=True, tile=48, do_validate=False)  # batch 1, 48x48 fixed
    frame = textured_frames(1, 96, 128)[0]
    for backend in ("onnxruntime", "openvino"):
        with open_engine(onnx_path, backend=backend, precision="fp32") as eng:
            assert eng.meta.max_batch == 1 and eng.meta.size_multiple == 48
            out = Translator(eng, TranslateOptions(batch=4, norm_stats="tile"))(frame)
            assert out.shape == frame.shape


def test_corrupt_or_incomplete_ir_is_one_line(ckpts, tmp_path, capsys):
    (tmp_path / "in.png").write_bytes(b"")
    (tmp_path / "bad.xml").write_text("<net name='x'><layers><layer")
    good = tmp_path / "g.xml"
    build(ckpts["resnet"], good, do_validate=False)
    (tmp_path / "nobin.xml").write_text(good.read_text())
    (tmp_path / "notir.xml").write_text("<svg></svg>")
    (tmp_path / "notir.bin").write_bytes(b"")
    for name in ("bad.xml", "nobin.xml", "notir.xml"):
        rc = main(["run", "--engine", str(tmp_path / name), "--input", str(tmp_path / "in.png"),
                   "--output", str(tmp_path / "o.png")])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("streamgan: error:") and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
    with pytest.raises(EngineError, match="CPU"):
        OpenVINOEngine(good, device="cuda")
    assert main(["info", str(good)]) == 0
    assert "openvino" in capsys.readouterr().out


def test_backend_option_mismatches_are_refused(ckpts, tmp_path, capsys):
    base = ["run", "--input", str(tmp_path / "none.png"), "--output", str(tmp_path / "o.png")]
    assert main(base + ["--engine", str(ckpts["resnet"]), "--backend", "onnxruntime"]) == 2
    assert "onnx" in capsys.readouterr().err
    assert main(base + ["--engine", str(ckpts["resnet"]), "--backend", "openvino", "--dropout"]) == 2
    assert "openvino" in capsys.readouterr().err


def test_info_reports_the_remembered_choice(ckpts):
    from streamgan.cli.info import info
    x = torch.rand(1, 3, 32, 40) * 2 - 1
    with open_engine(ckpts["resnet"], device="cpu") as eng:
        eng.infer(x)
    choices = info(ckpts["resnet"])["engine choices"]
    line = next(v for k, v in choices.items() if k.startswith("40x32 frames on "))
    assert line.startswith(eng.choice["backend"]) and "openvino" in line and "torch" in line and " ms" in line


def test_narrow_output_convolutions_are_split_and_equal(tmp_path):
    """A KxK convolution to RGB from many channels runs as a Kx1 convolution and a grouped 1xK one
    (engines.openvino_backend.split_narrow_convs): same output as ONNX Runtime on the original."""
    import onnxruntime as ort
    torch.manual_seed(5)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.ReflectionPad2d((3, 2, 1, 4)),
                              torch.nn.Conv2d(16, 3, (6, 7), padding=(2, 3)),  # split
                              torch.nn.Conv2d(3, 3, 3, padding=2), torch.nn.Tanh()).eval()  # too shallow: kept
    path = tmp_path / "narrow.onnx"
    axes = {0: "n", 2: "h", 3: "w"}
    torch.onnx.export(net, (torch.rand(1, 3, 32, 32),), str(path), dynamo=False, input_names=["image"],
                      output_names=["out"], dynamic_axes={"image": axes, "out": axes}, opset_version=17)
    x = np.random.RandomState(0).rand(2, 3, 40, 56).astype(np.float32) * 2 - 1
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    eng = OpenVINOEngine(path, precision="fp32")
    kinds = [op.get_type_name() for op in eng.graphs[False].model.get_ordered_ops()]
    assert kinds.count("GroupConvolution") == 1 and kinds.count("Convolution") == 3, kinds
    y = eng.run_host(x)
    assert y.shape == ref.shape and np.abs(y - ref).max() < 1e-5
