"""End to end (decode -> translate -> encode) and live latency, per backend, against a naive baseline.

    python bench/bench_e2e.py [--sizes 256x256,1280x720,1920x1080] [--frames 120] [--out DIR]

naive: what the official repository's users do for video: OpenCV decode, eager fp32, one frame
at a time, OpenCV (mp4v) encode, all in one thread. The others run streamgan's pipeline
(threaded PyAV decode/encode, libx264 --preset given) with each engine. Also: 720p live filter
(a clip played as the camera) latency percentiles from capture to output.

    python bench/bench_e2e.py --whole-process [--wp-size 1920x1080] [--wp-frames 240] [--out DIR]

measures as a user runs the product, each figure a whole process (launch to exit): a clip of a
real photograph panned (x264 crf 20, 30 fps, AAC), a random official-layout ResNet-9 ngf64
checkpoint; the naive official-style loop on the same device; ``streamgan run`` default (cold:
empty cache, then warm), ``--preset veryfast``; fidelity on a lossless encode against the
official fp32 forward; a fixed-shape ``.pt2`` (fp16 on CUDA) built, checked and run; the live
filter on a 720p clip played as the camera, 300 frames at 30 fps, on an empty cache and again.
Defaults: 1920x1080 and 240 frames on a GPU, 640x360 and 60 frames on a CPU.
"""

import argparse
import copy
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from common import NAIVE, build_fixed_pt2, photo_pan_clip, resnet9, save, wall

from engines.metrics import psnr  # noqa: E402
from engines.torch_backend import TorchEngine  # noqa: E402
from streamgan.data.synthetic import write_clip  # noqa: E402
from streamgan.translate.engine import generator_meta  # noqa: E402
from streamgan.media.video import VideoReader  # noqa: E402
from streamgan.offline.video import translate_video  # noqa: E402
from streamgan.live.webcam import run_webcam  # noqa: E402


def naive(raw, src: Path, dst: Path, dev) -> float:
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS)
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    n, t = 0, time.perf_counter()
    with torch.no_grad():
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().to(dev) / 127.5 - 1
            y = raw(x)
            img = ((y[0].permute(1, 2, 0).cpu().numpy() + 1) * 127.5).astype(np.uint8)
            out.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            n += 1
    out.release()
    return n / (time.perf_counter() - t)


ROOT = Path(__file__).resolve().parents[1]


def whole_process(args) -> None:
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    w, h = (int(v) for v in (args.wp_size or ("1920x1080" if dev == "cuda" else "640x360")).split("x"))
    n = args.wp_frames or (240 if dev == "cuda" else 60)
    work = Path(tempfile.mkdtemp(prefix="sg_e2e_"))
    cache = work / "cache"
    env = {**os.environ, "STREAMGAN_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    clip = photo_pan_clip(work / "clip.mp4", w, h, n)
    raw, _ = resnet9(64, 9)
    ckpt = work / "G.pth"
    torch.save(raw.state_dict(), ckpt)
    res = {"clip": {"size": [w, h], "frames": n, "content": "grace_hopper.jpg panned, x264 crf 20, AAC"},
           "model": "resnet_9blocks ngf 64, random official-layout checkpoint", "device": dev}
    res["naive_s"] = wall([sys.executable, "-c", NAIVE, clip, work / "naive.mp4", ckpt, dev], env)
    sg = [sys.executable, "-m", "streamgan", "run", "--engine", ckpt, "--input", clip, "--no-progress", "--overwrite"]

    def run(tag: str, *extra) -> dict:
        report = work / f"{tag}.json"
        seconds = wall(sg + ["--output", work / f"{tag}.mp4", "--report", report, *extra], env)
        r = json.loads(report.read_text())
        assert r["frames_out"] == n, r
        out = {k: r.get(k) for k in ("first_frame_after_launch_s", "steady_fps", "ms_per_frame", "engine",
                                      "frame_path")}
        return {"wall_s": seconds, "x_naive": res["naive_s"] / seconds, **out}
    shutil.rmtree(cache, ignore_errors=True)
    res["default_cold"] = run("default_cold")
    res["default_warm"] = run("default_warm")
    res["veryfast_warm"] = run("veryfast", "--preset", "veryfast")
    # fidelity on a lossless encode of the first second against the official fp32 forward
    run_lossless = [*sg, "--output", work / "lossless.mp4", "--crf", "0", "--pix-fmt", "yuv444p", "--duration", "1"]
    wall(run_lossless, env)
    got = [f.rgb for f in VideoReader(work / "lossless.mp4", threads=False)]
    src = [f.rgb for _, f in zip(range(len(got)), VideoReader(clip, threads=False))]
    ref_model = raw.to(dev).eval()
    with torch.no_grad():
        ref = [((ref_model(torch.from_numpy(f).to(dev).permute(2, 0, 1)[None].float() / 127.5 - 1)[0]
                 .permute(1, 2, 0).cpu().numpy() + 1) * 127.5).round().clip(0, 255) for f in src]
    res["psnr_to_official_fp32_db"] = psnr(np.stack(got).astype(np.float32), np.stack(ref).astype(np.float32), 255.0)
    # a fixed-shape package for this frame size (fp16 on CUDA), as `streamgan build` makes it
    pt2 = work / "G.pt2"
    res["pt2_fixed"] = build_fixed_pt2(ckpt, pt2, h, w, dev, env)
    if not res["pt2_fixed"]["returncode"]:
        res["pt2_fixed"]["run"] = run("pt2", "--engine", pt2, "--preset", "veryfast")
    # live: a 720p clip played as the camera, 300 frames at 30 fps, empty cache then warm
    live_clip = photo_pan_clip(work / "live.mp4", 1280, 720, 300)
    shutil.rmtree(cache, ignore_errors=True)
    res["live_720p"] = {}
    for tag in ("fresh", "second"):
        stats = work / f"live_{tag}.json"
        wall([sys.executable, "-m", "streamgan", "webcam", "--engine", ckpt, "--camera", live_clip, "--no-window",
              "--frames", "300", "--stats-json", stats], env)
        s = json.loads(stats.read_text())
        res["live_720p"][tag] = {k: s[k] for k in ("frames", "dropped", "offered", "warm_up_s",
                                                    "first_shown_after_launch_s", "engine")}
        res["live_720p"][tag]["end_to_end_ms"] = s["latency_ms"]["end_to_end"]
    print(json.dumps(res, indent=1, default=str))
    save(res, "e2e_whole_process", args.out)
    shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--whole-process", action="store_true", help="whole-process figures as users run it")
    ap.add_argument("--wp-size", default=None)
    ap.add_argument("--wp-frames", type=int, default=None)
    ap.add_argument("--sizes", default="256x256,1280x720,1920x1080")
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--engines", default="naive,torch-fused,torch-eager16,torch-compile,aoti,tensorrt")
    ap.add_argument("--live-frames", type=int, default=240)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.whole_process:
        return whole_process(args)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True
    raw, model = resnet9()
    raw = raw.to(dev)
    meta = generator_meta(model)
    wanted = args.engines.split(",")
    tmp = Path(tempfile.mkdtemp())
    engines = {}
    if "torch-fused" in wanted:
        engines["torch-fused"] = TorchEngine(copy.deepcopy(model), copy.deepcopy(meta), device=dev)
    if "torch-eager16" in wanted and dev.type == "cuda":
        engines["torch-eager16"] = TorchEngine(copy.deepcopy(model), copy.deepcopy(meta), device=dev, fuse=False)
    if "torch-compile" in wanted:
        engines["torch-compile"] = TorchEngine(copy.deepcopy(model), copy.deepcopy(meta), device=dev, compile=True)
    if "aoti" in wanted:
        from engines.aoti_backend import AOTIEngine, build_pt2
        build_pt2(model, tmp / "g.pt2", copy.deepcopy(meta), dev)
        engines["aoti"] = AOTIEngine(tmp / "g.pt2")
    if "tensorrt" in wanted:
        try:
            import tensorrt  # noqa: F401
            from engines.export import export_onnx
            from engines.tensorrt_backend import TensorRTEngine, build_plan, parse_shapes
            data = export_onnx(model, tmp / "t.onnx", copy.deepcopy(meta))
            build_plan(data, tmp / "g.plan", copy.deepcopy(meta), parse_shapes("256x256:1080x1920:1080x1920", 1, 4))
            engines["tensorrt"] = TensorRTEngine(tmp / "g.plan")
        except ImportError:
            print("tensorrt: not installed, skipped")
    rows = []
    for size in args.sizes.split(","):
        w, h = (int(v) for v in size.split("x"))
        src = write_clip(tmp / f"clip_{w}x{h}.mp4", seconds=args.frames / 24, fps=24, size=(h, w))
        row = {"size": [w, h], "frames": args.frames, "fps": {}, "ms_per_frame": {}}
        if "naive" in wanted:
            row["fps"]["naive"] = naive(raw, src, tmp / "naive.mp4", dev)
        for name, eng in engines.items():
            translate_video(src, tmp / "warm.mp4", eng, duration=0.5, overwrite=True, progress=False)
            r = translate_video(src, tmp / f"{name}.mp4", eng, preset=args.preset, overwrite=True, progress=False)
            assert r["frames_out"] == r["frames_in"] == args.frames
            row["fps"][name] = r["fps"]
            row["ms_per_frame"][name] = r["ms_per_frame"]
        rows.append(row)
        print(size, {k: round(v, 1) for k, v in row["fps"].items()})
    live = {}
    clip720 = tmp / "clip_1280x720.mp4"
    if clip720.exists():
        for name, eng in engines.items():
            s = run_webcam(eng, str(clip720), window=False, frames=min(args.live_frames, args.frames))
            live[name] = {"translate": s["latency_ms"]["translate"], "end_to_end": s["latency_ms"]["end_to_end"],
                          "dropped": s["dropped"], "offered": s["offered"]}
            print("live 720p", name, {k: round(v, 2) for k, v in s["latency_ms"]["translate"].items()})
    save({"model": "resnet_9blocks ngf 64 (random weights)", "preset": args.preset,
          "engines": {k: e.describe() for k, e in engines.items()}, "rows": rows, "live_720p": live}, "e2e", args.out)


if __name__ == "__main__":
    main()
