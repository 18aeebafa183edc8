"""TilePlan geometry, blending windows, and tiled vs full-frame output."""

import numpy as np
import pytest
import torch

from engines.metrics import psnr
from streamgan import open_engine
from streamgan.tiling import TilePlan
from streamgan.translate import TranslateOptions, Translator
from tests.streamgan.helpers import textured_frames, tiny_resnet


@pytest.mark.parametrize("h,w,tile,overlap,m", [(100, 130, 48, 16, 4), (257, 301, 64, 24, 4), (40, 40, 64, 8, 4),
                                                 (300, 520, 256, 64, 32)])
def test_plan_covers_frame_and_windows_sum(h, w, tile, overlap, m):
    plan = TilePlan.make(h, w, tile=tile, overlap=overlap, multiple=m, radius=6)
    ph, pw = plan.padded
    assert ph % m == 0 and pw % m == 0 and ph >= h and pw >= w
    th, tw = plan.tile
    cover = torch.zeros(ph, pw)
    for (y, x), win in zip(plan.boxes, plan.windows):
        assert y % m == 0 and x % m == 0 and y + th <= ph and x + tw <= pw
        cover[y:y + th, x:x + tw] += win
    ys = {y for y, _ in plan.boxes}
    assert max(ys) + th == ph  # edge tiles flush with the border
    assert torch.all(cover > 0.999) and torch.all(cover < 1.01)


def _frame():
    return textured_frames(1, 200, 264, seed=3)[0]


def test_tiles_equal_full_frame_without_instance_norm(tmp_path):
    path = tiny_resnet(tmp_path / "n.pth", norm="none", seed=2)
    eng = open_engine(path, device="cpu", backend="torch", precision="fp32")
    radius = eng.meta.receptive_radius
    frame = _frame()
    full = Translator(eng, TranslateOptions(tile=0))(frame)
    tiled = Translator(eng, TranslateOptions(tile=2 * radius + 64, overlap=2 * radius + 16))(frame)
    p = psnr(torch.from_numpy(tiled), torch.from_numpy(full), 255.0)
    assert p >= 50, p


def test_batchnorm_running_stats_tiles_equal_full(tmp_path):
    path = tiny_resnet(tmp_path / "b.pth", norm="batch", seed=4)
    eng = open_engine(path, device="cpu", backend="torch", precision="fp32", bn_stats="running")
    assert eng.meta.stats_width == 0
    frame = _frame()
    r = eng.meta.receptive_radius
    full = Translator(eng, TranslateOptions(tile=0))(frame)
    tiled = Translator(eng, TranslateOptions(tile=2 * r + 64, overlap=2 * r + 16, batch=3))(frame)
    assert psnr(torch.from_numpy(tiled), torch.from_numpy(full), 255.0) >= 50


def tiling_psnrs(path, frame: np.ndarray, tile: int, thumbnail: int) -> dict:
    """PSNR of thumbnail-statistics and per-tile-statistics tiling against the full frame."""
    eng = open_engine(path, device="cpu", backend="torch", precision="fp32")
    full = torch.from_numpy(Translator(eng, TranslateOptions(tile=0))(frame))
    out = {}
    for mode in ("thumbnail", "tile"):
        t = Translator(eng, TranslateOptions(tile=tile, norm_stats=mode, thumbnail=thumbnail))(frame)
        out[mode] = psnr(torch.from_numpy(t), full, 255.0)
    return out


def test_frame_statistics_make_tiles_seamless(tmp_path):
    """Statistics of the whole frame (a thumbnail as large as the frame) make instance-norm tiles
    match the full frame; per-tile statistics shift colours."""
    path = tiny_resnet(tmp_path / "i.pth", norm="instance", seed=5)
    p = tiling_psnrs(path, _frame(), tile=96, thumbnail=264)
    assert p["thumbnail"] >= 50 and p["tile"] < 35, p


def test_default_statistics_when_tiling(tmp_path):
    path = tiny_resnet(tmp_path / "i.pth")
    eng = open_engine(path, device="cpu", backend="torch")
    tr = Translator(eng, TranslateOptions(tile=64))
    assert tr.norm_mode(tr.plan(200, 264)) == "exact"  # CPU torch engine: the full-frame result
    full = Translator(eng, TranslateOptions())
    assert full.norm_mode(full.plan(200, 264)) == "tile" and not full.uses_thumbnail(full.plan(200, 264))
    assert np.array_equal(full(_frame()).shape, (200, 264, 3))
    from streamgan.build import build
    build(path, tmp_path / "i.onnx", do_validate=False)
    onnx_tr = Translator(open_engine(tmp_path / "i.onnx", backend="onnxruntime"), TranslateOptions(tile=64))
    assert onnx_tr.uses_thumbnail(onnx_tr.plan(200, 264))  # no torch module: thumbnail statistics


@pytest.mark.parametrize("kind,norm", [("resnet", "instance"), ("unet", "instance"), ("unet", "batch")])
def test_exact_tiles_give_the_full_frame(tmp_path, kind, norm):
    """Layer-by-layer tiles reproduce the full frame even where the receptive field spans it (U-Net)."""
    from tests.streamgan.helpers import tiny_unet
    path = tiny_resnet(tmp_path / "g.pth", norm=norm, seed=6) if kind == "resnet" else \
        tiny_unet(tmp_path / "g.pth", num_downs=5, norm=norm, seed=6)
    eng = open_engine(path, device="cpu", backend="torch", precision="fp32")
    frame = textured_frames(1, 192, 256, seed=7)[0]
    full = torch.from_numpy(Translator(eng, TranslateOptions(tile=0))(frame)).float()
    exact = Translator(eng, TranslateOptions(tile=64, norm_stats="exact"))
    assert len(exact.plan(192, 256).boxes) > 4  # really tiled
    assert psnr(torch.from_numpy(exact(frame)).float(), full, 255.0) >= 50
    per_tile = Translator(eng, TranslateOptions(tile=64, norm_stats="tile"))(frame)
    assert psnr(torch.from_numpy(per_tile).float(), full, 255.0) < 40


def test_exact_needs_a_torch_engine(tmp_path):
    from streamgan.build import build
    from streamgan.errors import OptionError
    onnx_path = tmp_path / "g.onnx"
    build(tiny_resnet(tmp_path / "g.pth"), onnx_path, do_validate=False)
    with open_engine(onnx_path, backend="onnxruntime") as eng:
        with pytest.raises(OptionError, match="exact"):
            Translator(eng, TranslateOptions(tile=64, norm_stats="exact"))(_frame())


def test_auto_plan_from_measured_footprint(tmp_path, monkeypatch):
    import streamgan.memory as memory
    eng = open_engine(tiny_resnet(tmp_path / "g.pth"), device="cpu", backend="torch", precision="fp32")
    per_px = memory.bytes_per_pixel(eng)
    # the largest activation: ngf 8 fp32 channels at full resolution, reflect-padded by 3 for the last 7x7 conv
    assert per_px == pytest.approx(3 * 8 * 4 * (70 / 64) ** 2)
    tr = Translator(eng, TranslateOptions())
    assert tr.plan(200, 264).full_frame and "full frame" in tr.decision and "B/px" in tr.decision
    monkeypatch.setattr(memory, "available_bytes", lambda device: int(per_px * 600 * 800))  # half of it is budget
    tr = Translator(eng, TranslateOptions())
    assert not tr.plan(600, 800).full_frame and tr.decision.startswith("tiles")
