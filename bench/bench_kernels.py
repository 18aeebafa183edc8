"""Triton kernels vs torch eager and torch.compile, in GB/s (bytes moved / time); fused ResNet-9.

    python bench/bench_kernels.py [--out DIR] [--size 1920x1080]

Every norm op in both layouts (NCHW and channels-last, the tensor stored as the generator
stores it), each against eager and torch.compile's generated kernel on the same tensor.
Targets (issue 12, H100/H200): every norm op >= torch.compile; residual-block planes >= 60% of
the measured copy bandwidth, stem planes >= 75%. Then the whole ResNet-9 ngf64 generator, batch 1,
fp16, at the frame size and at 256x256: eager, torch.compile (channels-last, as Inductor runs it),
and the fused generator NCHW / NHWC, with and without CUDA graphs. Targets: fused NHWC + graphs no
slower than torch.compile at 1080p (stretch <= 9 ms) and at 256x256.
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


def generator_row(w: int, h: int) -> dict:
    """ResNet-9 ngf64 fp16 batch 1 at w x h: ms per frame of each way to run it, max |diff| to eager."""
    from engines.cudagraph import GraphedModule
    from engines.fuse import fuse_generator
    raw, model = resnet9()
    cl = torch.channels_last
    eager = copy.deepcopy(raw).cuda().half()
    compiled = torch.compile(copy.deepcopy(raw).cuda().half().to(memory_format=cl), dynamic=False)
    nchw = fuse_generator(copy.deepcopy(model).cuda().half())
    nhwc = fuse_generator(copy.deepcopy(model).cuda().half().to(memory_format=cl))
    x = torch.rand(1, 3, h, w, device="cuda", dtype=torch.float16) * 2 - 1
    xc = x.contiguous(memory_format=cl)
    ways = {"eager": lambda: eager(x), "compile": lambda: compiled(xc), "fused_nchw": lambda: nchw(x),
            "fused_nchw_graph": (g1 := GraphedModule(nchw), lambda: g1(x))[1],
            "fused_nhwc": lambda: nhwc(xc), "fused_nhwc_graph": (g2 := GraphedModule(nhwc), lambda: g2(xc))[1]}
    row = {}
    with torch.inference_mode():
        ref = eager(x).float()
        for name, fn in ways.items():
            row[f"{name}_ms"] = timeit(fn, 20) * 1e3
            row[f"{name}_max_abs_diff"] = (fn().float() - ref).abs().max().item()
    row["fused_nhwc_graph_vs_compile"] = row["compile_ms"] / row["fused_nhwc_graph_ms"]
    print(f"resnet9 {w}x{h}", {k: round(v, 3) for k, v in row.items()})
    return row


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
    layouts = {"nchw": torch.contiguous_format, "nhwc": torch.channels_last}
    for (sname, shape), (layout, fmt) in [(s, lf) for s in shapes.items() for lf in layouts.items()]:
        name = f"{sname}_{layout}"
        x = torch.randn(shape, device=dev, dtype=dt).contiguous(memory_format=fmt)
        r = torch.randn(shape, device=dev, dtype=dt).contiguous(memory_format=fmt)
        n = x.numel() * x.element_size()
        n_pad = shape[0] * shape[1] * (shape[2] + 2) * (shape[3] + 2) * x.element_size()
        copy_s = timeit(lambda: x.clone(), args.iters)
        comp_pad = torch.compile(eager_in_relu_pad, dynamic=False)
        comp_res = torch.compile(eager_in_res, dynamic=False)
        comp_stats = torch.compile(lambda t: torch.var_mean(t.float(), dim=(2, 3), correction=0), dynamic=False)
        ops = {
            "in_relu_pad": (n + n_pad, {"triton": lambda: kernels.instance_norm(x, activation="relu", pad=1),
                                        "eager": lambda: eager_in_relu_pad(x), "compile": lambda: comp_pad(x)}),
            "in_residual": (3 * n, {"triton": lambda: kernels.instance_norm(x, residual=r),
                                    "eager": lambda: eager_in_res(x, r), "compile": lambda: comp_res(x, r)}),
            "in_stats": (n, {"triton": lambda: kernels.instance_norm_stats(x),
                             "eager": lambda: torch.var_mean(x.float(), dim=(2, 3), correction=0),
                             "compile": lambda: comp_stats(x)}),
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
        res["resnet9"] = {f"{fw}x{fh}": generator_row(fw, fh) for fw, fh in ((w, h), (256, 256))}
    save(res, "kernels", args.out)


if __name__ == "__main__":
    main()
