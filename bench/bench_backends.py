"""Throughput of every backend on a ResNet-9 generator against an eager-fp32 per-frame baseline.

    python bench/bench_backends.py [--sizes 256x256,1280x720,1920x1080] [--batches 1,4] [--out DIR]

Each backend's output is compared with the fp32 reference (PSNR) so speed is reported at equal
output. On a CPU the default engine (channels-last + bf16 where accurate) must reach >= 2x the
eager-fp32 baseline on a 640x360 frame; on a GPU the torch-fused, AOTInductor, ONNX Runtime
and (where installed) TensorRT figures are recorded. ``aoti_fixed``: at batch 1, a fixed-shape
channels-last package per frame size (fp16 on CUDA) built with ``streamgan build --static`` in a
child process (a crash is recorded, not fatal), with its build and load seconds.
"""

import argparse
import copy
import tempfile
import time
from pathlib import Path

import torch

from common import build_fixed_pt2, resnet9, save, sync, timeit

from engines.metrics import psnr  # noqa: E402
from engines.torch_backend import TorchEngine  # noqa: E402
from streamgan.translate.engine import generator_meta  # noqa: E402


def fixed_package(raw, tmp: Path, h: int, w: int, dev: torch.device):
    """(engine or None, facts): ``streamgan build --static --shapes HxW`` (fp16 on CUDA) as a user
    runs it, then the package loaded here (load seconds include the first frame)."""
    from engines.aoti_backend import AOTIEngine
    ckpt, out = tmp / "g.pth", tmp / f"fixed_{h}x{w}.pt2"
    if not ckpt.exists():
        torch.save(raw.state_dict(), ckpt)
    facts = build_fixed_pt2(ckpt, out, h, w, str(dev))
    if facts["returncode"]:
        return None, facts
    t = time.perf_counter()
    eng = AOTIEngine(out)
    eng.infer(torch.zeros(1, 3, h, w, device=dev))
    sync()
    facts["load_first_frame_s"] = time.perf_counter() - t
    return eng, facts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="256x256,1280x720,1920x1080")
    ap.add_argument("--batches", default="1,4")
    ap.add_argument("--ngf", type=int, default=64)
    ap.add_argument("--blocks", type=int, default=9)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--backends", default="eager32,torch,eager16,compile,onnx,aoti,aoti_fixed,tensorrt")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True
    raw, model = resnet9(args.ngf, args.blocks)
    meta = generator_meta(model)
    wanted = set(args.backends.split(","))
    engines, build_s = {}, {}
    t = time.perf_counter()
    engines["torch"] = TorchEngine(copy.deepcopy(model), copy.deepcopy(meta), device=dev)
    build_s["torch"] = time.perf_counter() - t
    tmp = Path(tempfile.mkdtemp())
    if "onnx" in wanted:
        from engines.export import export_onnx
        from engines.onnx_backend import OnnxEngine
        t = time.perf_counter()
        export_onnx(model, tmp / "g.onnx", copy.deepcopy(meta))
        engines["onnx"] = OnnxEngine(tmp / "g.onnx", device=dev)
        build_s["onnx"] = time.perf_counter() - t
    if "aoti" in wanted:
        from engines.aoti_backend import AOTIEngine, build_pt2
        t = time.perf_counter()
        build_pt2(model, tmp / "g.pt2", copy.deepcopy(meta), dev)
        engines["aoti"] = AOTIEngine(tmp / "g.pt2")
        build_s["aoti"] = time.perf_counter() - t
    if "tensorrt" in wanted:
        try:
            import tensorrt  # noqa: F401
            from engines.export import export_onnx
            from engines.tensorrt_backend import TensorRTEngine, build_plan, parse_shapes
            t = time.perf_counter()
            data = export_onnx(model, tmp / "t.onnx", copy.deepcopy(meta))
            build_plan(data, tmp / "g.plan", copy.deepcopy(meta), parse_shapes("256x256:1080x1920:1080x1920", 4, 4))
            engines["tensorrt"] = TensorRTEngine(tmp / "g.plan")
            build_s["tensorrt"] = time.perf_counter() - t
        except ImportError:
            print("tensorrt: not installed, skipped")
    eager32 = copy.deepcopy(raw).to(dev)
    eager16 = copy.deepcopy(raw).to(dev).half() if dev.type == "cuda" else None
    compiled = {}
    rows = []
    for size in args.sizes.split(","):
        w, h = (int(v) for v in size.split("x"))
        for b in (int(v) for v in args.batches.split(",")):
            x = (torch.rand(b, 3, h, w, device=dev) * 2 - 1)
            with torch.inference_mode():
                ref = eager32(x)
                base = timeit(lambda: [eager32(x[i:i + 1]) for i in range(b)], args.iters)  # one frame at a time
                row = {"size": [w, h], "batch": b, "eager32_fps": b / base, "backends": {}}
                fns = {name: (lambda e=e: e.infer(x)) for name, e in engines.items()
                       # CPU-only ONNX Runtime on a GPU box: too slow above 256x256
                       if not (name == "onnx" and e.device.type != dev.type and h * w > 256 * 256)}
                if eager16 is not None and "eager16" in wanted:
                    fns["eager16"] = lambda: eager16(x.half())
                if dev.type == "cuda" and "compile" in wanted and b == 1:
                    key = (h, w)
                    if key not in compiled:
                        compiled[key] = torch.compile(copy.deepcopy(raw).to(dev).half(), dynamic=False)
                    fns["compile"] = lambda: compiled[key](x.half())
                if "aoti_fixed" in wanted and b == 1:
                    fixed, facts = fixed_package(raw, tmp, h, w, dev)
                    row["aoti_fixed"] = facts
                    if fixed is not None:
                        fns["aoti_fixed"] = lambda: fixed.infer(x)
                for name, fn in fns.items():
                    out = fn()
                    sync()
                    s = timeit(fn, args.iters)
                    row["backends"][name] = {"fps": b / s, "speedup_vs_eager32": base / s,
                                             "psnr_db": psnr(out.float(), ref.float())}
            rows.append(row)
            print(size, b, f"eager32 {row['eager32_fps']:.2f} fps",
                  {k: (round(v["fps"], 1), round(v["speedup_vs_eager32"], 2), round(v["psnr_db"], 1))
                   for k, v in row["backends"].items()})
    save({"model": f"resnet_{args.blocks}blocks ngf {args.ngf}",
          "engines": {k: e.describe() for k, e in engines.items()},
          "build_seconds": build_s, "rows": rows}, "backends", args.out)


if __name__ == "__main__":
    main()
