"""``streamgan bench``: latency and throughput of engines through the real pipeline stages."""

import json
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

from engines.base import Engine

from ..latency import LatencyLog
from ..translate.translator import TranslateOptions, Translator


def versions() -> dict:
    out = {"python": platform.python_version(), "torch": torch.__version__}
    for name in ("triton", "onnxruntime", "onnx", "av", "cv2", "tensorrt"):
        try:
            out[name] = __import__(name).__version__
        except Exception:
            pass
    return out


def device_name(engine: Engine) -> str:
    if engine.device.type == "cuda":
        return torch.cuda.get_device_name(engine.device)
    return platform.processor() or platform.machine()


def synthetic_frames(width: int, height: int, n: int = 8, seed: int = 0) -> list[np.ndarray]:
    """Smooth random colour frames (a few distinct ones, cycled)."""
    import cv2
    rs = np.random.RandomState(seed)
    return [cv2.resize((rs.rand(9, 16, 3) * 255).astype(np.uint8), (width, height), interpolation=cv2.INTER_CUBIC)
            for _ in range(n)]


def file_frames(path: str, n: int) -> list[np.ndarray]:
    """Up to ``n`` frames of a video, or the one picture of an image file."""
    from ..media.images import is_image, read_image
    from ..media.video import VideoReader
    if is_image(Path(path)):
        return [read_image(Path(path))]
    out = []
    for f in VideoReader(Path(path)):
        out.append(f.rgb)
        if len(out) >= n:
            break
    return out


def bench_engine(engine: Engine, frames: list[np.ndarray], *, iters: int = 50, warmup: int = 5,
                 options: TranslateOptions | None = None) -> dict:
    """Run ``iters`` frames (after ``warmup``) through a Translator; per-stage and e2e percentiles."""
    tr = Translator(engine, options)
    if engine.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(engine.device)
    t0 = time.perf_counter()
    first = tr(frames[0])  # the picture engines are compared on
    for i in range(1, warmup):
        tr(frames[i % len(frames)])
    warm_s = time.perf_counter() - t0
    log = LatencyLog()
    t_run = time.perf_counter()
    for i in range(iters):
        t = time.perf_counter()
        tr(frames[i % len(frames)])
        log.add_all(tr.last)
        log.add("end_to_end", time.perf_counter() - t)
    total = time.perf_counter() - t_run
    h, w = frames[0].shape[:2]
    return {
        "engine": engine.describe(), "meta": json.loads(engine.meta.to_json()), "size": [w, h],
        "frames": iters, "warmup_frames": warmup, "warmup_seconds": warm_s, "fps": iters / total,
        "latency_ms": log.summary(), "peak_host_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_device_mb": (torch.cuda.max_memory_allocated(engine.device) / 2 ** 20
                           if engine.device.type == "cuda" else None),
        "plan": {"tile": list(tr.plan(h, w).tile), "tiles": len(tr.plan(h, w).boxes)},
        "first_output": first,
    }


def plot(results: list[dict], path: Path) -> None:
    """Latency distribution per stage (first engine) and throughput per engine."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4), dpi=110, gridspec_kw={"width_ratios": [3, 2]})
    stages = [s for s in results[0]["latency_ms"]]
    for i, r in enumerate(results):
        lat = r["latency_ms"]
        xs = np.arange(len(stages)) + (i - (len(results) - 1) / 2) * 0.8 / len(results)
        p50 = [lat[s]["p50"] for s in stages]
        lo = [lat[s]["p50"] - lat[s].get("p5", lat[s]["p50"]) for s in stages]
        hi = [lat[s]["p99"] - lat[s]["p50"] for s in stages]
        a.bar(xs, p50, width=0.8 / len(results), yerr=[lo, hi], capsize=3, label=r["engine"])
    a.set_xticks(range(len(stages)), stages, rotation=20)
    a.set_ylabel("ms (bar p50, whisker to p99)")
    a.set_title(f"latency per stage, {results[0]['size'][0]}x{results[0]['size'][1]}")
    a.legend(fontsize=7)
    b.barh([r["engine"] for r in results], [r["fps"] for r in results], color="tab:green")
    for i, r in enumerate(results):
        b.text(r["fps"], i, f" {r['fps']:.1f}", va="center", fontsize=8)
    b.set_xlabel("frames per second")
    b.set_title("throughput")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def compare_outputs(results: list[dict]) -> None:
    """Each result's ``psnr_to_first_db``: its output on the first frame against the first
    engine's (uint8 pictures; inf when equal), so a faster engine is seen to give the same picture."""
    from engines.metrics import psnr
    ref = results[0].pop("first_output")
    for r in results:
        r["psnr_to_first_db"] = psnr(r.pop("first_output", ref).astype(np.float64), ref.astype(np.float64), 255.0)


def table(results: list[dict]) -> str:
    base = results[0]["fps"]
    lines = [f"{'engine':<34} {'fps':>8} {'x first':>8} {'p50 ms':>8} {'p99 ms':>8} {'warm-up s':>9} "
             f"{'dB to first':>11}"]
    for r in results:
        e = r["latency_ms"]["end_to_end"]
        lines.append(f"{r['engine']:<34} {r['fps']:>8.1f} {r['fps'] / base:>8.2f} {e['p50']:>8.2f} {e['p99']:>8.2f} "
                     f"{r['warmup_seconds']:>9.2f} {r.get('psnr_to_first_db', float('nan')):>11.1f}")
    return "\n".join(lines)


def add_bench_args(p) -> None:
    from ..arguments import _engine_args
    _engine_args(p)
    p.add_argument("--size", default="1280x720", help="frame size WxH of the synthetic frames (default 1280x720)")
    p.add_argument("--tile", type=int, default=None, help="tile size in px; 0 = full frame (default: auto)")
    p.add_argument("--batch", type=int, default=4, help="tiles per inference call (default 4)")
    p.add_argument("--frames", type=int, default=50, help="frames timed per engine (default 50)")
    p.add_argument("--warmup", type=int, default=5, help="frames run before timing (default 5)")
    p.add_argument("--input", default=None,
                   help="a video or image file to take frames from instead of synthetic ones")
    p.add_argument("--json", default=None, help="write the results (device, versions, percentiles) as JSON here")
    p.add_argument("--plot", default=None, help="PNG (or PDF, SVG): latency per stage and throughput per engine")
    p.add_argument("--compare", nargs="*", default=[], help="more engines, measured in the same process")
    p.add_argument("--overwrite", action="store_true", help="replace existing --json / --plot files")


def cmd_bench(args) -> int:
    from ..arguments import check_engine_args, open_engine_from_args, parse_size
    from ..errors import InputError, OptionError
    from ..options import check_plot, check_report
    w, h = parse_size(args.size)
    if args.frames < 1 or args.warmup < 1:
        raise OptionError("--frames and --warmup must be >= 1")
    check_engine_args(args, [args.engine, *args.compare])
    if args.input and not Path(args.input).is_file():
        raise InputError(f"{args.input}: no such file")
    check_report(args.json, args.overwrite, "--json")
    check_plot(args.plot, args.overwrite)
    frames = file_frames(args.input, 16) if args.input else synthetic_frames(w, h)
    opts = TranslateOptions(tile=args.tile, batch=args.batch)
    opts.check()
    results = []
    for path in [args.engine, *args.compare]:
        args.engine = path
        with open_engine_from_args(args) as eng:
            results.append(bench_engine(eng, frames, iters=args.frames, warmup=args.warmup, options=opts))
            dev = device_name(eng)
    compare_outputs(results)
    print(table(results))
    report = {"device": dev, "date": time.strftime("%Y-%m-%d"), "versions": versions(),
              "options": {"size": [w, h], "tile": args.tile, "batch": args.batch, "frames": args.frames,
                          "warmup": args.warmup, "input": args.input},
              "results": results}
    if args.json:
        from engines.cache import write_json
        write_json(Path(args.json), report)
    if args.plot:
        from ..media.files import atomic_path
        with atomic_path(Path(args.plot)) as tmp:
            plot(results, tmp)
        print(f"plot: {args.plot}", file=sys.stderr)
    return 0


cmd_bench.add_args = add_bench_args
