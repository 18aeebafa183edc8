"""Scaling of ``streamgan run --ray`` with the number of CPU workers, whole process.

    python bench/bench_ray.py [--workers 1,2,4,8] [--clips 8] [--frames 48] [--out DIR]

The job: a folder of clips of a photograph panned (320x180, x264, AAC) translated by the bundled
day2night generator (torch backend, fp32 so every worker does the same work). Each worker count
runs the same job in a fresh process; efficiency = speed-up over 1 worker / workers. The
single-process run (no Ray) is the baseline beside it. On a machine with fewer cores than
workers the actors share the cores (efficiency then measures the overhead, not scaling).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import device_label, photo_pan_clip, save

ROOT = Path(__file__).resolve().parents[1]


def run(cmd: list[str]) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if r.returncode:
        raise SystemExit(r.stderr[-2000:])
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", default="1,2,4,8")
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    folder = tmp / "in"
    folder.mkdir()
    for i in range(args.clips):
        photo_pan_clip(folder / f"clip{i}.mp4", 320, 180, args.frames, seed=i)
    base = [sys.executable, "-m", "streamgan", "run", "--engine", str(ROOT / "streamgan/assets/day2night.safetensors"),
            "--backend", "torch", "--precision", "fp32", "--input", str(folder), "--no-progress", "--overwrite"]
    res = {"cores": os.cpu_count(), "job": f"{args.clips} clips x {args.frames} frames, 320x180", "runs": {}}
    res["single_process_s"] = run(base + ["--output", str(tmp / "single")])
    for n in map(int, args.workers.split(",")):
        rep = tmp / f"r{n}.json"
        wall = run(base + ["--output", str(tmp / f"o{n}"), "--ray", "--workers", str(n), "--report", str(rep)])
        r = json.loads(rep.read_text())
        res["runs"][n] = {"wall_s": wall, "job_s": r["seconds"], "fps": r["fps"]}
    one = res["runs"][min(res["runs"])]["wall_s"]
    for n, r in res["runs"].items():
        r["speedup"] = one / r["wall_s"]
        r["efficiency"] = r["speedup"] / n
    print(json.dumps(res, indent=2))
    lines = [f"Job: {res['job']} on {device_label()} ({res['cores']} cores); single process, no Ray: "
             f"{res['single_process_s']:.1f} s", "", "| workers | wall s | job s (after Ray start) | fps | speed-up | "
             "efficiency |", "|---|---|---|---|---|---|"]
    lines += [f"| {n} | {r['wall_s']:.1f} | {r['job_s']:.1f} | {r['fps']:.1f} | {r['speedup']:.2f}x | "
              f"{r['efficiency']:.2f} |" for n, r in res["runs"].items()]
    print("\n".join(lines))
    save(res, "ray_scaling", args.out)
    (Path(args.out or Path(__file__).parent / "results") / "ray_scaling.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
