"""Every artifact built from a checkpoint gives the checkpoint's own picture through every command:
``run`` on a photograph, on an RGB-exact video and in tiles, and ``bench``. Pixels are compared
with the checkpoint's fp32 eager output of the same decoded frames, after uint8 rounding, with a
floor set by the precision the run reports: fp32 >= 50 dB, bf16/fp16 >= 40 dB."""

import json

import cv2
import numpy as np
import pytest
import torch

from streamgan import load_generator
from streamgan.build import build
from streamgan.cli import main
from streamgan.video import VideoReader
from tests.streamgan.helpers import photo, tiny_resnet, write_clip

FLOOR = {"fp32": 50.0, "bf16": 40.0, "fp16": 40.0}
ARTIFACTS = ("checkpoint", ".onnx", ".xml", ".pt2")


def reference(ckpt, rgb: np.ndarray) -> np.ndarray:
    """The checkpoint's fp32 eager output for ``rgb``: reflect-padded to a multiple of 4, cropped,
    (y + 1) * 127.5 rounded half to even."""
    h, w = rgb.shape[:2]
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 127.5 - 1
    x = torch.nn.functional.pad(x, (0, -w % 4, 0, -h % 4), mode="reflect")
    with torch.no_grad():
        y = load_generator(ckpt)(x)[0, :, :h, :w]
    return np.rint(((y.permute(1, 2, 0).numpy() + 1) * 127.5).clip(0, 255)).astype(np.uint8)


def db(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("artifacts")
    ckpt = tiny_resnet(d / "g.pth", n_blocks=2, ngf=8)
    paths = {"checkpoint": ckpt}
    for suffix in ARTIFACTS[1:]:
        paths[suffix] = d / f"g{suffix}"
        build(ckpt, paths[suffix])
    pic = photo(100, 132)  # not a multiple of 4: padded and cropped back
    cv2.imwrite(str(d / "photo.png"), pic[:, :, ::-1])
    frames = [photo(72, 96, shift=3 * i) for i in range(5)]  # a pan: every frame differs
    clip = write_clip(d / "pan.mkv", frames, codec="libx264rgb", pix_fmt="rgb24", crf=0)  # RGB-exact
    return d, paths, pic, clip


def _run(d, engine, inp, out, *extra) -> dict:
    report = out.with_suffix(".json")
    assert main(["run", "--engine", str(engine), "--input", str(inp), "--output", str(out), "--no-progress",
                 "--quiet", "--report", str(report), *extra]) == 0
    return json.loads(report.read_text())


@pytest.mark.parametrize("kind", ARTIFACTS)
def test_artifact_gives_the_checkpoints_picture_on_a_photo_and_in_tiles(built, kind):
    d, paths, pic, _ = built
    want = reference(paths["checkpoint"], pic)
    for name, extra in (("whole", ()), ("tiles", ("--tile", "96"))):  # 4 x the receptive radius (28)
        out = d / f"{kind.strip('.')}_{name}.png"
        report = _run(d, paths[kind], d / "photo.png", out, *extra)
        got = cv2.imread(str(out))[:, :, ::-1]
        assert got.shape == pic.shape
        assert db(got, want) >= FLOOR[report["precision"]], (kind, name, report["engine"], db(got, want))


@pytest.mark.parametrize("kind", ARTIFACTS)
def test_artifact_gives_the_checkpoints_picture_on_a_video(built, kind):
    d, paths, _, clip = built
    out = d / f"{kind.strip('.')}_video.mkv"
    report = _run(d, paths[kind], clip, out, "--codec", "libx264rgb", "--crf", "0", "--pix-fmt", "rgb24")
    src = [f.rgb for f in VideoReader(clip)]
    got = [f.rgb for f in VideoReader(out)]
    assert report["frames_in"] == report["frames_out"] == len(got) == len(src) == 5
    for i, (a, b) in enumerate(zip(src, got)):  # frame i of the output is frame i's translation
        assert db(b, reference(paths["checkpoint"], a)) >= FLOOR[report["precision"]], (kind, i, report["engine"])


def test_every_artifact_through_bench_matches_the_checkpoint(built, capsys):
    d, paths, pic, _ = built
    out = d / "bench.json"
    assert main(["bench", "--engine", str(paths["checkpoint"]), "--backend", "torch", "--precision", "fp32",
                 "--compare", *(str(paths[k]) for k in ARTIFACTS[1:]), "--input", str(d / "photo.png"),
                 "--frames", "1", "--warmup", "1", "--json", str(out)]) == 2  # torch only takes checkpoints
    assert "--backend torch takes .pth, .pt, .safetensors files, not g.onnx" in capsys.readouterr().err
    assert main(["bench", "--engine", str(paths["checkpoint"]), "--precision", "fp32",
                 "--compare", *(str(paths[k]) for k in ARTIFACTS[1:]), "--input", str(d / "photo.png"),
                 "--frames", "1", "--warmup", "1", "--json", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    # --precision fp32 holds for the runtimes that choose one; a .pt2 runs as it was built (bf16 on a
    # CPU with native bf16)
    assert [r["meta"]["precision"] for r in results[:3]] == ["fp32"] * 3
    assert all(r["psnr_to_first_db"] >= FLOOR[r["meta"]["precision"]] for r in results), \
        [(r["meta"]["precision"], r["psnr_to_first_db"]) for r in results]
    assert "dB to first" in capsys.readouterr().out
