"""The bundled day2night model and ``streamgan demo``."""

import torch

from engines.metrics import psnr
from streamgan import load_generator, open_engine
from streamgan.cli import main
from streamgan.cli.demo import BUNDLED
from streamgan.data.synthetic import make_scene, render
from streamgan.media.video import VideoReader
from streamgan.translate.translator import TranslateOptions, Translator


def test_bundled_model_is_small_and_described():
    g = load_generator(BUNDLED)
    assert BUNDLED.stat().st_size < 5e6 and g.info.name == "day2night" and g.info.norm == "instance"


def test_demo_turns_day_into_night(tmp_path):
    out = tmp_path / "demo.mp4"
    assert main(["demo", "--output", str(out), "--seconds", "1", "--no-progress"]) == 0
    frames = [f.rgb for f in VideoReader(out)]
    assert len(frames) == 24 and frames[0].shape == (256, 896, 3)
    day, night = frames[12][:, :448].astype(float), frames[12][:, 448:].astype(float)
    assert night.mean() < 0.6 * day.mean()  # darker
    sky_day, sky_night = day[:40].mean(axis=(0, 1)), night[:40].mean(axis=(0, 1))
    assert sky_night.sum() < 0.4 * sky_day.sum()  # the blue sky turned dark
    assert (out.with_suffix(".png")).stat().st_size > 10_000


def tiling_numbers(height: int = 512, width: int = 896, tile: int = 256) -> dict:
    """PSNR to the full frame of tiles with per-tile, thumbnail (half size) and frame statistics."""
    eng = open_engine(BUNDLED, device="cpu", backend="torch", precision="fp32")
    frame = render(make_scene(11), 3.0, "day", (height, width))
    full = torch.from_numpy(Translator(eng, TranslateOptions(tile=0))(frame))
    runs = {"per-tile": dict(norm_stats="tile"),
            "thumbnail 1/2": dict(norm_stats="thumbnail", thumbnail=max(height, width) // 2),
            "frame statistics": dict(norm_stats="thumbnail", thumbnail=max(height, width))}
    return {name: psnr(torch.from_numpy(Translator(eng, TranslateOptions(tile=tile, **kw))(frame)), full, 255.0)
            for name, kw in runs.items()}


def test_frame_statistics_tile_seamlessly_on_a_trained_model():
    p = tiling_numbers()
    assert p["frame statistics"] >= 35 and p["frame statistics"] > p["per-tile"] + 5, p
    # statistics from a half-size thumbnail sit between the two
    assert p["per-tile"] < p["thumbnail 1/2"] < p["frame statistics"], p


def test_thumbnail_statistics_at_the_default_size_stay_close_to_the_full_frame():
    """A frame wider than the default thumbnail (1024 px): its tiles normalised with the thumbnail's
    statistics against the whole frame's output (measured 37.0 dB here; per-tile statistics 21.9)."""
    eng = open_engine(BUNDLED, device="cpu", backend="torch", precision="fp32")
    frame = render(make_scene(11), 3.0, "day", (576, 1280))
    full = torch.from_numpy(Translator(eng, TranslateOptions(tile=0))(frame))
    thumb = Translator(eng, TranslateOptions(tile=256, norm_stats="thumbnail"))
    got = torch.from_numpy(thumb(frame))
    assert thumb.opt.thumbnail == 1024 and thumb.uses_thumbnail(thumb.plan(576, 1280))
    assert psnr(got, full, 255.0) >= 33
