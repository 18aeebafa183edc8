"""End to end (decode -> translate -> encode) and live latency, per backend, against a naive baseline.

    python bench/bench_e2e.py [--sizes 256x256,1280x720,1920x1080] [--frames 120] [--out DIR]

naive: what the official repository's users do for video: OpenCV decode, eager fp32, one frame
at a time, OpenCV (mp4v) encode, all in one thread. The others run streamgan's pipeline
(threaded PyAV decode/encode, libx264 --preset given) with each engine. Also: 720p live filter
(a clip played as the camera) latency percentiles from capture to output.
"""

import argparse
import copy
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from common import resnet9, save

from engines.torch_backend import TorchEngine  # noqa: E402
from streamgan.data.synthetic import write_clip  # noqa: E402
from streamgan.engine import generator_meta  # noqa: E402
from streamgan.video_run import translate_video  # noqa: E402
from streamgan.webcam import run_webcam  # noqa: E402


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="256x256,1280x720,1920x1080")
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--engines", default="naive,torch-fused,torch-eager16,torch-compile,aoti,tensorrt")
    ap.add_argument("--live-frames", type=int, default=240)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
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
