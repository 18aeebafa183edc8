"""Live streams through streamgan on this machine, as users run them.

    python bench/bench_live.py [--rates 15 20 24 30] [--seconds 20] [--long 60] [--memory-minutes 10] [--out DIR]

A 640x360 photograph panned (matplotlib's grace_hopper.jpg), x264, is sent in real time over UDP
(MPEG-TS) by a PyAV sender process, looped for as long as a run needs; ``streamgan run --input
udp://... --output udp://...`` (a whole process, default options) translates it, and a receiver
process drains the output. Figures come from the run's ``--stats-json``: frames received,
translated, dropped, and per second the drops and the latency from a frame's arrival to its
output having been written (p50/p99); "after warm-up" leaves out the first ``--warmup`` seconds.
1. bundled model: every input rate in ``--rates`` (0 drops after warm-up: sustained), and at 30 fps
   the p99 latency and the drops;
2. ResNet-9 ngf64 (far slower than 30 fps here): ``--long`` seconds at 30 fps: drops, p99 against
   2 x one frame's model time + 50 ms, and the p50 of the first 10 s against the last 10 s;
3. ``streamgan webcam`` with the clip standing in for the camera (played at its own rate);
4. memory: the streamgan process's RSS every second over ``--memory-minutes`` of streaming.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from common import photo_pan_clip, resnet9, save

from tests.streamgan.test_live import SENDER  # noqa: E402  (the same real-time sender the tests use)

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "streamgan" / "assets" / "day2night.safetensors"
DRAIN = """
import sys, av
with av.open(sys.argv[1], timeout=(60, 6)) as c:
    n = 0
    try:
        for p in c.demux(video=0):
            n += 1
    except (av.error.ExitError, OSError):  # (UDP's read timeout reads as an I/O error)
        pass
print(n)
"""


PRIORITY = ["nice", "-n", "-10"] if os.geteuid() == 0 else []


def port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def after(report: dict, warmup: float) -> dict:
    """Drops and latency over the timeline's seconds from ``warmup`` on."""
    rows = [r for r in report["timeline"] if r["t"] >= warmup]
    p99 = [r["p99_ms"] for r in rows if r["p99_ms"] is not None]
    p50 = [r["p50_ms"] for r in rows if r["p50_ms"] is not None]
    return {"dropped": sum(r["dropped"] for r in rows), "written": sum(r["written"] for r in rows),
            "p50_ms": statistics.median(p50) if p50 else None, "p99_ms": max(p99) if p99 else None,
            "first_10s_p50_ms": statistics.median(p50[:10]) if p50 else None,
            "last_10s_p50_ms": statistics.median(p50[-10:]) if p50 else None}


def live_run(engine: Path, clip: Path, fps: float, seconds: float, work: Path, env: dict, extra=(),
             memory: bool = False) -> dict:
    """One UDP-in, UDP-out run of ``seconds``; its report (and RSS samples with ``memory``)."""
    a, b = port(), port()
    # the sender and the receiver stand for other machines: they run at a higher priority, so that
    # streamgan saturating both cores does not delay what it is sent (or where it sends)
    drain = subprocess.Popen([*PRIORITY, sys.executable, "-c", DRAIN, f"udp://127.0.0.1:{b}"], stdout=subprocess.PIPE,
                             text=True)
    laps = int(seconds // 10) + 3
    sender = subprocess.Popen([*PRIORITY, sys.executable, "-c", SENDER, str(clip), f"udp://127.0.0.1:{a}", "mpegts",
                               str(laps), str(fps)], stderr=subprocess.PIPE, text=True)
    stats = work / f"live_{time.time_ns()}.json"
    cmd = [sys.executable, "-m", "streamgan", "run", "--engine", str(engine), "--input", f"udp://127.0.0.1:{a}",
           "--output", f"udp://127.0.0.1:{b}", "--duration", str(seconds), "--no-progress", "--quiet",
           "--stats-json", str(stats), *extra]
    t0 = time.perf_counter()
    run = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    rss = []
    while run.poll() is None:
        if memory:
            try:
                with open(f"/proc/{run.pid}/status") as f:
                    kb = next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS"))
                rss.append((round(time.perf_counter() - t0, 1), kb / 1024))
            except (OSError, StopIteration):
                pass
        time.sleep(1.0)
    err = run.stderr.read()
    wall = time.perf_counter() - t0
    if sender.poll() is not None and sender.returncode:
        print(f"the sender failed: {sender.stderr.read()[-1000:]}", file=sys.stderr)
    sender.kill()
    received = int(drain.communicate(timeout=60)[0].strip() or 0)
    if run.returncode:
        raise SystemExit(f"streamgan failed ({run.returncode}): {err[-2000:]}")
    report = json.loads(stats.read_text())
    report.update(wall_s=wall, receiver_packets=received, rss_mb=rss)
    return report


def sent(report: dict, fps: float) -> int:
    """Frames the sender sent while the run read (its rate times the run's seconds)."""
    return round(fps * report["seconds"])


def model_ms(engine: Path, env: dict) -> float:
    """One 640x360 frame's time through the model, as ``streamgan bench`` measures it (p50)."""
    out = Path(tempfile.mkdtemp()) / "b.json"
    subprocess.run([sys.executable, "-m", "streamgan", "bench", "--engine", str(engine), "--size", "640x360",
                    "--frames", "10", "--warmup", "3", "--json", str(out)], check=True, env=env, capture_output=True)
    return json.loads(out.read_text())["results"][0]["latency_ms"]["end_to_end"]["p50"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", nargs="*", type=float, default=[15, 20, 24, 30])
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--long", type=float, default=60)
    ap.add_argument("--memory-minutes", type=float, default=10)
    ap.add_argument("--skip", nargs="*", default=[], help="parts to leave out: rates resnet9 webcam memory")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_live_"))
    env = {**os.environ, "STREAMGAN_CACHE": str(work / "cache")}
    # a keyframe every 2 s, as a camera or a broadcast encoder sends (a datagram lost costs a GOP)
    clips = {r: photo_pan_clip(work / f"pan_{r:g}.mp4", 640, 360, frames=int(10 * r), fps=int(r), gop=int(2 * r))
             for r in sorted(set(args.rates) | {30})}
    results: dict = {"model_ms": {}}
    results["model_ms"]["bundled"] = model_ms(BUNDLED, env)
    live_run(BUNDLED, clips[30], 30, 5, work, env)  # fills the cache: the runs below start warm
    if "rates" not in args.skip:
        results["bundled_rates"] = {}
        for r in args.rates:
            rep = live_run(BUNDLED, clips[r], r, args.seconds, work, env)
            results["bundled_rates"][f"{r:g}"] = {"after_warmup": after(rep, args.warmup),
                                                  **{k: rep[k] for k in ("received", "translated", "dropped",
                                                                         "written", "fps", "wall_s")},
                                                  "latency_ms": rep["latency_ms"]["end_to_end"]}
            print(f"bundled {r:g} fps:", results["bundled_rates"][f"{r:g}"]["after_warmup"], flush=True)
        sustained = [float(r) for r, v in results["bundled_rates"].items() if v["after_warmup"]["dropped"] == 0]
        results["bundled_highest_rate_without_drops"] = max(sustained) if sustained else None
    if "resnet9" not in args.skip:
        raw, _ = resnet9(ngf=64, blocks=9)
        r9 = work / "resnet9.pth"
        torch.save(raw.state_dict(), r9)
        results["model_ms"]["resnet9"] = model_ms(r9, env)
        rep = live_run(r9, clips[30], 30, args.long, work, env)
        a = after(rep, args.warmup)
        results["resnet9_30fps"] = {"after_warmup": a, "bound_ms": 2 * results["model_ms"]["resnet9"] + 50,
                                    **{k: rep[k] for k in ("received", "translated", "dropped", "written", "fps")},
                                    "latency_ms": rep["latency_ms"]["end_to_end"], "timeline": rep["timeline"]}
        print("resnet9 30 fps:", a, "bound", results["resnet9_30fps"]["bound_ms"], flush=True)
    if "webcam" not in args.skip:
        stats = work / "webcam.json"
        subprocess.run([sys.executable, "-m", "streamgan", "webcam", "--engine", str(BUNDLED), "--camera",
                        str(clips[30]), "--no-window", "--duration", str(args.seconds), "--stats-json", str(stats),
                        "--quiet"], check=True, env=env)
        rep = json.loads(stats.read_text())
        results["webcam_bundled_30fps"] = {"after_warmup": after(rep, args.warmup),
                                           **{k: rep[k] for k in ("received", "translated", "dropped", "fps")},
                                           "latency_ms": rep["latency_ms"]["end_to_end"]}
        print("webcam:", results["webcam_bundled_30fps"]["after_warmup"], flush=True)
    if "memory" not in args.skip and args.memory_minutes > 0:
        rep = live_run(BUNDLED, clips[30], 30, 60 * args.memory_minutes, work, env, memory=True)
        rss = [mb for _, mb in rep["rss_mb"]]
        minute = max(1, len(rss) // max(1, int(args.memory_minutes)))
        results["memory"] = {"minutes": args.memory_minutes, "rss_mb_first_minute_max": max(rss[:minute]),
                             "rss_mb_last_minute_max": max(rss[-minute:]), "rss_mb_samples": rep["rss_mb"],
                             "written": rep["written"], "dropped": rep["dropped"]}
        print("memory:", {k: v for k, v in results["memory"].items() if k != "rss_mb_samples"}, flush=True)
    save(results, "live", args.out)


if __name__ == "__main__":
    main()
