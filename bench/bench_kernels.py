"""Triton kernels vs torch eager and torch.compile, in GB/s (bytes moved / time); fused ResNet-9.

    python bench/bench_kernels.py [--out DIR] [--size 1920x1080]

Targets (H100): IN+ReLU+pad and IN+residual >= 75% of the measured device-to-device copy
bandwidth on 1080p-scale tensors, >= 1.5x the eager sequence, not slower than torch.compile;
the fused ResNet-9 generator >= 1.3x eager fp16 at 1080p.
"""

import argparse
import copy

import torch
import torch.nn.functional as F

from common import resnet9, save, timeit

import kernels  # noqa: E402


def eager_in_relu_pad(x):
    return F.pad(torch.relu(F.instance_norm(x, eps=1e-5)), (1, 1, 1, 1), mode="reflect")


def eager_in_res(x, r):
    return F.instance_norm(x, eps=1e-5) + r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--iters", type=int, default=30)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    dt = torch.float16 if dev == "cuda" else torch.float32
    torch.backends.cudnn.benchmark = True
    res = {"size": [w, h], "dtype": str(dt), "ops": {}}
    # residual-block activation of ResNet-9 at this frame size, and the stem activation
    shapes = {"res_block": (1, 256, h // 4, w // 4), "stem": (1, 64, h, w)}
    for name, shape in shapes.items():
        x = torch.randn(shape, device=dev, dtype=dt)
        r = torch.randn(shape, device=dev, dtype=dt)
        n = x.numel() * x.element_size()
        n_pad = shape[0] * shape[1] * (shape[2] + 2) * (shape[3] + 2) * x.element_size()
        copy_s = timeit(lambda: x.clone(), args.iters)
        comp_pad = torch.compile(eager_in_relu_pad)
        comp_res = torch.compile(eager_in_res)
        ops = {
            "in_relu_pad": (n + n_pad, {"triton": lambda: kernels.instance_norm(x, activation="relu", pad=1),
                                        "eager": lambda: eager_in_relu_pad(x), "compile": lambda: comp_pad(x)}),
            "in_residual": (3 * n, {"triton": lambda: kernels.instance_norm(x, residual=r),
                                    "eager": lambda: eager_in_res(x, r), "compile": lambda: comp_res(x, r)}),
            "in_stats": (n, {"triton": lambda: kernels.instance_norm_stats(x),
                             "eager": lambda: torch.var_mean(x.float(), dim=(2, 3), correction=0)}),
        }
        entry = {"shape": list(shape), "copy_GBps": 2 * n / copy_s / 1e9}
        for op, (nbytes, fns) in ops.items():
            row = {}
            for impl, fn in fns.items():
                s = timeit(fn, args.iters)
                row[impl] = {"ms": s * 1e3, "GBps": nbytes / s / 1e9}
            row["triton_vs_eager"] = row["eager"]["ms"] / row["triton"]["ms"]
            if "compile" in row:
                row["triton_vs_compile"] = row["compile"]["ms"] / row["triton"]["ms"]
            row["triton_fraction_of_copy"] = row["triton"]["GBps"] / entry["copy_GBps"]
            entry[op] = row
        res["ops"][name] = entry
        print(name, {k: (round(v["triton"]["GBps"]), round(v["triton_vs_eager"], 2)) for k, v in entry.items()
                     if isinstance(v, dict) and "triton" in v}, "copy", round(entry["copy_GBps"]))
    # frame conversion and blending at the frame size
    frame = torch.randint(0, 256, (h, w, 3), dtype=torch.uint8, device=dev)
    y = torch.rand(1, 3, h, w, device=dev, dtype=dt) * 2 - 1
    conv = {
        "preprocess": (frame.numel() * (1 + y.element_size()),
                       {"triton": lambda: kernels.preprocess(frame, dtype=dt),
                        "eager": lambda: (frame.permute(2, 0, 1)[None].to(dt) / 127.5 - 1)}),
        "postprocess": (frame.numel() * (1 + y.element_size()),
                        {"triton": lambda: kernels.postprocess(y),
                         "eager": lambda: ((y[0] + 1) * 127.5).clamp(0, 255).round().byte().permute(1, 2, 0)
                         .contiguous()}),
    }
    res["conversion"] = {}
    for op, (nbytes, fns) in conv.items():
        row = {impl: {"ms": (s := timeit(fn, args.iters)) * 1e3, "GBps": nbytes / s / 1e9} for impl, fn in fns.items()}
        row["triton_vs_eager"] = row["eager"]["ms"] / row["triton"]["ms"]
        res["conversion"][op] = row
    if dev == "cuda":
        raw, model = resnet9()
        eager = copy.deepcopy(raw).to(dev).half()
        from engines.fuse import fuse_generator
        fused = fuse_generator(copy.deepcopy(model).to(dev).half())
        x = torch.rand(1, 3, h, w, device=dev, dtype=dt) * 2 - 1
        with torch.inference_mode():
            e = timeit(lambda: eager(x), 10)
            f = timeit(lambda: fused(x), 10)
            diff = (eager(x).float() - fused(x).float()).abs().max().item()
        res["resnet9"] = {"eager_fp16_ms": e * 1e3, "fused_fp16_ms": f * 1e3, "speedup": e / f, "max_abs_diff": diff}
        print("resnet9", res["resnet9"])
    save(res, "kernels", args.out)


if __name__ == "__main__":
    main()
