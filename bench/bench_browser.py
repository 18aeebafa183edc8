"""The live filter in a browser, as users run it: ``streamgan serve`` and Debian's Chromium.

    python bench/bench_browser.py [--engine G] [--size 640x360] [--seconds 60] [--warmup 10] [--out DIR]

Chromium (headless, Playwright driving the system browser) opens the page with a fake camera
playing a photograph panned at 30 fps (matplotlib's grace_hopper.jpg, a y4m file looped); the page
sends it over WebRTC to the server process, which translates it and sends it back. The figures are
the page's own (``window.streamganStats``, ``window.streamganLatencies``): glass-to-glass latency
by frame identity (the frame number stamped into the outgoing picture, read back off ``#output``),
frames shown a second, and the server's dropped/skipped counts; over ``--seconds`` after
``--warmup`` (the browser's encoder ramps up its rate over the first seconds). Cold: from launching
the server to its first translated frame on the page (empty cache). Default: the bundled model at
640x360 on this machine; on a GPU, ``--engine resnet9 --size 1280x720``.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import av
import numpy as np
import torch

from common import photo_pan_clip, resnet9, save

from tests.streamgan.test_serve import _port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "streamgan" / "assets" / "day2night.safetensors"
CHROMIUM_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", "--no-sandbox",
                 "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-features=WebRtcHideLocalIpsWithMdns"]


def y4m_of(clip: Path, out: Path) -> Path:
    """The clip's frames as the y4m file Chromium's fake camera plays."""
    with av.open(str(clip)) as src, av.open(str(out), "w", format="yuv4mpegpipe") as dst:
        vs = src.streams.video[0]
        st = dst.add_stream("rawvideo", rate=30)
        st.width, st.height, st.pix_fmt = vs.codec_context.width, vs.codec_context.height, "yuv420p"
        for f in src.decode(vs):
            for p in st.encode(av.VideoFrame.from_ndarray(f.to_ndarray(format="rgb24"), format="rgb24")):
                dst.mux(p)
        for p in st.encode():
            dst.mux(p)
    return out


def session(engine: Path, camera: Path, seconds: float, warmup: float, env: dict, shot: Path | None,
            extra: list) -> dict:
    from playwright.sync_api import sync_playwright
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("needs Debian's chromium (apt-get install chromium)")
    port = _port()
    t0 = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "streamgan", "serve", "--engine", str(engine), "--port",
                               str(port), *extra], stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = ""
        while "serving on" not in line:
            line = server.stderr.readline()
            if not line and server.poll() is not None:
                raise SystemExit(f"the server failed: {server.stderr.read()[-2000:]}")
        listening = time.perf_counter() - t0
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium,
                                        args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={camera}"])
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(f"http://127.0.0.1:{port}/?autostart")
                page.wait_for_function("window.streamganStats.frames > 0", timeout=300_000, polling=50)
                first = time.perf_counter() - t0
                page.wait_for_timeout(warmup * 1000)
                begin = page.evaluate("[window.streamganStats.frames, window.streamganLatencies.length,"
                                      " window.streamganStats.dropped, window.streamganStats.skipped]")
                fps = []
                for _ in range(int(seconds)):
                    page.wait_for_timeout(1000)
                    fps.append(page.evaluate("window.streamganStats.fps"))
                end = page.evaluate("[window.streamganStats.frames, window.streamganLatencies.length,"
                                    " window.streamganStats.dropped, window.streamganStats.skipped]")
                lat = page.evaluate(f"window.streamganLatencies.slice(-{end[1] - begin[1]})") if end[1] > begin[1] \
                    else []
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as r:
                    server_side = json.load(r)["sessions"]
                if shot is not None:
                    page.screenshot(path=str(shot))
            finally:
                browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    lat = np.array(lat, float)
    q = (lambda p: round(float(np.percentile(lat, p)), 1)) if lat.size else (lambda p: None)
    return {"server_listening_s": round(listening, 2), "first_frame_shown_s": round(first, 2),
            "seconds": seconds, "frames_shown": end[0] - begin[0], "fps": round((end[0] - begin[0]) / seconds, 1),
            "fps_per_second_min": min(fps), "fps_per_second_median": statistics.median(fps),
            "latency_ms": {"p50": q(50), "p95": q(95), "p99": q(99), "max": q(100), "measured": int(lat.size)},
            "dropped_by_server": end[2] - begin[2], "skipped": end[3] - begin[3],
            # the server's part: a frame's arrival (decoded) to its translation handed to the encoder
            "server_sessions": server_side}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default=str(BUNDLED), help="a checkpoint or artifact; 'resnet9' for ResNet-9 ngf64")
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--warmup", type=float, default=10)
    ap.add_argument("--server-args", default="", help="more options for streamgan serve, e.g. '--codec h264'")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    work = Path(tempfile.mkdtemp(prefix="bench_browser_"))
    env = {**os.environ, "STREAMGAN_CACHE": str(work / "cache")}
    engine = Path(args.engine)
    if args.engine == "resnet9":
        raw, _ = resnet9(ngf=64, blocks=9)
        engine = work / "resnet9.pth"
        torch.save(raw.state_dict(), engine)
    camera = y4m_of(photo_pan_clip(work / "pan.mp4", w, h, frames=150, fps=30), work / "pan.y4m")
    extra = args.server_args.split()
    cold = session(engine, camera, 5, 0, env, None, extra)
    print("cold:", cold, flush=True)
    shot = Path(args.out or ROOT / "bench" / "results") / f"browser_page_{w}x{h}.png"
    warm = session(engine, camera, args.seconds, args.warmup, env, shot, extra)
    print("warm:", warm, flush=True)
    save({"engine": engine.name, "size": args.size, "server_args": extra,
          "camera": "grace_hopper.jpg panned, 30 fps y4m (fake camera)",
          "chromium": subprocess.run([shutil.which("chromium") or "chromium", "--version"], capture_output=True,
                                     text=True).stdout.strip(),
          "cold": cold, "warm": warm, "screenshot": shot.name}, "browser", args.out)


if __name__ == "__main__":
    main()
