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
from streamgan.cli import main
from streamgan.media.video import VideoReader
from streamgan.translate.build import build
from tests.conftest import DEVICES
from tests.streamgan.helpers import db, photo, tiny_resnet, write_clip

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


# every artifact on the CPU; the checkpoint on every device there is (an AOTInductor package built
# here is a CPU one; the ONNX and OpenVINO runtimes here are CPU ones)
KINDS = [(k, "cpu") for k in ARTIFACTS] + [("checkpoint", d) for d in DEVICES if d != "cpu"]


@pytest.mark.parametrize("kind,device", KINDS)
def test_artifact_gives_the_checkpoints_picture_on_a_photo_and_in_tiles(built, kind, device):
    d, paths, pic, _ = built
    want = reference(paths["checkpoint"], pic)
    for name, extra in (("whole", ()), ("tiles", ("--tile", "96"))):  # 4 x the receptive radius (28)
        out = d / f"{kind.strip('.')}_{device}_{name}.png"
        report = _run(d, paths[kind], d / "photo.png", out, "--device", device, *extra)
        got = cv2.imread(str(out))[:, :, ::-1]
        assert got.shape == pic.shape
        assert db(got, want) >= FLOOR[report["precision"]], (kind, name, report["engine"], db(got, want))


@pytest.mark.parametrize("kind,device", KINDS)
def test_artifact_gives_the_checkpoints_picture_on_a_video(built, kind, device):
    d, paths, _, clip = built
    out = d / f"{kind.strip('.')}_{device}_video.mkv"
    report = _run(d, paths[kind], clip, out, "--codec", "libx264rgb", "--crf", "0", "--pix-fmt", "rgb24",
                  "--device", device)
    src = [f.rgb for f in VideoReader(clip)]
    got = [f.rgb for f in VideoReader(out)]
    assert report["frames_in"] == report["frames_out"] == len(got) == len(src) == 5
    for i, (a, b) in enumerate(zip(src, got)):  # frame i of the output is frame i's translation
        assert db(b, reference(paths["checkpoint"], a)) >= FLOOR[report["precision"]], (kind, i, report["engine"])


@pytest.mark.parametrize("device", DEVICES)
def test_side_by_side_and_the_yuv_frame_path_give_the_checkpoints_picture(built, device, tmp_path, monkeypatch):
    """--side-by-side: the input unchanged on the left, the translation on the right. And a 4:2:0
    clip through the YUV frame path (planes converted by kernels.yuv: on CUDA the copy stream,
    events and pinned buffers; on a CPU Triton's interpreter): the model's picture of the decoded
    frames, as 4:2:0 holds it."""
    d, paths, _, clip = built
    out = tmp_path / "sbs.mkv"
    report = _run(d, paths["checkpoint"], clip, out, "--side-by-side", "--codec", "libx264rgb", "--crf", "0",
                  "--pix-fmt", "rgb24", "--device", device)
    src, got = [f.rgb for f in VideoReader(clip)], [f.rgb for f in VideoReader(out)]
    assert len(got) == 5 and got[0].shape == (72, 192, 3)
    for a, b in zip(src, got):
        assert np.array_equal(b[:, :96], a)
        assert db(b[:, 96:], reference(paths["checkpoint"], a)) >= FLOOR[report["precision"]]
    import av

    from kernels import reference as kref
    from streamgan.media.video import Colour, matrix_name, planes_of
    yuv = write_clip(tmp_path / "pan420.mkv", [photo(72, 96, shift=3 * i) for i in range(5)], crf=0)
    monkeypatch.setenv("STREAMGAN_YUV_PATH", "on")
    out = tmp_path / "yuv.mkv"
    report = _run(d, paths["checkpoint"], yuv, out, "--crf", "0", "--device", device)
    assert report["frame_path"].startswith("yuv") and report["frames_out"] == 5

    def planes(path):
        with av.open(str(path)) as c:
            return [([torch.from_numpy(p.copy()) for p in planes_of(f)], matrix_name(Colour.of(f)))
                    for f in c.decode(video=0)]
    g = load_generator(paths["checkpoint"])
    for (pin, matrix), (pout, _) in zip(planes(yuv), planes(out)):
        # the truth, from kernels/reference.py's float64 conversions (standard coefficients) and
        # the checkpoint in fp32: the model's picture of the frame as the planes hold it
        with torch.no_grad():
            y = g(kref.yuv_to_rgb(*pin, matrix=matrix))
        want = kref.rgb_to_yuv(y, matrix=matrix)
        got = torch.cat([p.flatten() for p in pout]).numpy()
        assert db(got, torch.cat([p.flatten() for p in want]).numpy()) >= FLOOR[report["precision"]], report


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
