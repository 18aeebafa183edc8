"""A built engine against the checkpoint it came from, on the same machine, as users run them.

    python bench/bench_artifacts.py [--frames 30] [--rounds 3] [--kinds .onnx .xml .pt2] [--out DIR]

For the bundled day2night model and a ResNet-9 (ngf 64, official layout, random weights), builds
.onnx, .xml and .pt2 with ``streamgan build``, then, in interleaved rounds (this shared machine's
speed drifts within minutes; ratios are taken within a round, medians reported):
- model: one process opens every artifact with the default options and times frames of a
  640x360 photograph through the Translator (median of ``--frames`` after two warm-up frames);
- whole process: ``streamgan run`` (default options) on a 640x360 photo-pan clip with audio,
  launch to exit, warm (each artifact's cache already made by a first run that is not counted).
Fidelity: each artifact's lossless output against the checkpoint's fp32 forward (RGB-exact clip).
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import photo_pan_clip, resnet9, save, wall

from streamgan.translate.engine import open_engine  # noqa: E402
from streamgan.translate.translator import Translator  # noqa: E402
from streamgan.media.video import VideoReader  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "streamgan" / "assets" / "day2night.safetensors"


def model_ms(paths: dict[str, Path], frame: np.ndarray, n: int) -> dict[str, float]:
    """Median ms a frame of each artifact, opened with the defaults, in this one process."""
    out = {}
    for kind, path in paths.items():
        with open_engine(path) as eng:
            tr = Translator(eng)
            for _ in range(2):
                tr(frame)
            times = []
            for _ in range(n):
                t = time.perf_counter()
                tr(frame)
                times.append(time.perf_counter() - t)
            out[kind] = {"ms": 1000 * statistics.median(times), "engine": eng.describe()}
    return out


def fidelity(paths: dict[str, Path], ckpt: Path, work: Path) -> dict[str, float]:
    """dB of each artifact's lossless run on an RGB-exact clip to the checkpoint's fp32 forward."""
    from streamgan import load_generator
    from tests.streamgan.helpers import write_clip
    src = [f.rgb for f in VideoReader(photo_pan_clip(work / "fid.mp4", 320, 180, frames=6))]
    clip = write_clip(work / "fid_rgb.mkv", src, codec="libx264rgb", pix_fmt="rgb24", crf=0)
    model = load_generator(ckpt)
    with torch.no_grad():
        x = torch.from_numpy(np.stack(src)).permute(0, 3, 1, 2).float() / 127.5 - 1
        want = np.rint(((model(x).permute(0, 2, 3, 1).numpy() + 1) * 127.5).clip(0, 255))
    out = {}
    for kind, path in paths.items():
        dst = work / f"fid_{kind.strip('.')}.mkv"
        subprocess.run([sys.executable, "-m", "streamgan", "run", "--engine", str(path), "--input", str(clip),
                        "--output", str(dst), "--codec", "libx264rgb", "--crf", "0", "--pix-fmt", "rgb24", "--quiet",
                        "--no-progress", "--overwrite"], check=True)
        got = np.stack([f.rgb for f in VideoReader(dst)]).astype(np.float64)
        out[kind] = float(10 * np.log10(255 ** 2 / max(np.mean((got - want) ** 2), 1e-12)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--kinds", nargs="*", default=[".onnx", ".xml", ".pt2"])
    ap.add_argument("--models", nargs="*", default=["day2night", "resnet9"])
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_artifacts_"))
    clip = photo_pan_clip(work / "pan.mp4", 640, 360, frames=args.frames)
    frame = next(iter(VideoReader(clip))).rgb
    env = {"STREAMGAN_CACHE": str(work / "cache"), "PATH": "/usr/bin:/bin", "HOME": str(work)}
    import os
    env = {**os.environ, **env}
    results = {}
    for name in args.models:
        if name == "day2night":
            ckpt = BUNDLED
        else:
            raw, _ = resnet9(ngf=64, blocks=9)
            ckpt = work / "resnet9.pth"
            torch.save(raw.state_dict(), ckpt)
        paths = {"checkpoint": ckpt}
        builds = {}
        for kind in args.kinds:
            paths[kind] = work / f"{name}{kind}"
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "streamgan", "build", str(ckpt), "--out", str(paths[kind]),
                            "--overwrite"], check=True, env=env, capture_output=True)
            builds[kind] = time.perf_counter() - t
        for kind, path in paths.items():  # each artifact's first run fills its cache (not counted)
            wall([sys.executable, "-m", "streamgan", "run", "--engine", path, "--input", clip, "--output",
                  work / "first.mp4", "--overwrite", "--quiet", "--no-progress"], env)
        rounds = []
        for i in range(args.rounds):
            r = {"model": model_ms(paths, frame, 10), "whole_s": {}}
            order = list(paths) if i % 2 == 0 else list(reversed(paths))
            for kind in order:
                r["whole_s"][kind] = wall([sys.executable, "-m", "streamgan", "run", "--engine", paths[kind], "--input",
                                           clip, "--output", work / "o.mp4", "--overwrite", "--quiet",
                                           "--no-progress"], env)
            rounds.append(r)
            print(name, i, {k: round(v["ms"], 1) for k, v in r["model"].items()},
                  {k: round(v, 2) for k, v in r["whole_s"].items()})
        summary = {}
        for kind in paths:
            summary[kind] = {
                "model_ms": statistics.median(r["model"][kind]["ms"] for r in rounds),
                "model_vs_checkpoint": statistics.median(r["model"]["checkpoint"]["ms"] / r["model"][kind]["ms"]
                                                         for r in rounds),
                "whole_s": statistics.median(r["whole_s"][kind] for r in rounds),
                "whole_vs_checkpoint": statistics.median(r["whole_s"]["checkpoint"] / r["whole_s"][kind]
                                                         for r in rounds),
                "engine": rounds[-1]["model"][kind]["engine"], "build_s": builds.get(kind)}
        summary_fid = fidelity(paths, ckpt, work)
        for kind in paths:
            summary[kind]["db_to_checkpoint_fp32"] = summary_fid[kind]
        results[name] = {"summary": summary, "rounds": rounds}
        print(json.dumps(summary, indent=1))
    save({"frames": args.frames, "size": [640, 360], "results": results}, "artifacts", args.out)


if __name__ == "__main__":
    main()
