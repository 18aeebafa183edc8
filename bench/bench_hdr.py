"""Phone and camera footage through ``streamgan run``, as users bring it: HDR and 10-bit.

    python bench/bench_hdr.py [--size 1280x720] [--frames 60] [--rounds 3] [--out DIR]

One picture (matplotlib's grace_hopper.jpg panned, 25 fps) as four clips made with Debian's ffmpeg
and libx265: 8-bit SDR BT.709, 10-bit SDR BT.709, 10-bit HLG BT.2020 (a phone's default) and 10-bit
PQ BT.2020 (HDR10), the HDR ones converted from the SDR picture in linear light (zimg). Each is
run through ``streamgan run --engine <bundled>`` with default options, whole process (launch to
exit), interleaved rounds after one warm-up run; the HDR clips also with ``--hdr keep``. Reported:
seconds and fps per clip, the ratio to the 8-bit SDR run, the output's format and tags; the tone
mapping's own cost per frame at 720p and 1080p; each tone curve's SDR picture against the SDR
picture the HDR clips were made from (how the default was chosen); and a before/after still (the model on an HLG
frame's code values as they are, and on the frame tone mapped to SDR).
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from common import photo_pan_clip, save

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "streamgan" / "assets" / "day2night.safetensors"
HDR = {"hlg": "arib-std-b67", "pq": "smpte2084"}


def ffmpeg(*args) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def clips(work: Path, w: int, h: int, frames: int) -> dict[str, Path]:
    """The four clips of one picture (see the module's text)."""
    base = photo_pan_clip(work / "base.mp4", w, h, frames=frames, fps=25, crf=12)
    x265 = ["-c:v", "libx265", "-x265-params", "log-level=error:crf=18", "-preset", "fast", "-an"]
    out = {"sdr8": work / "sdr8.mp4", "sdr10": work / "sdr10.mp4"}
    ffmpeg("-i", str(base), "-pix_fmt", "yuv420p", *x265, "-color_primaries", "bt709", "-color_trc", "bt709",
           "-colorspace", "bt709", str(out["sdr8"]))
    ffmpeg("-i", str(base), "-pix_fmt", "yuv420p10le", *x265, "-color_primaries", "bt709", "-color_trc", "bt709",
           "-colorspace", "bt709", str(out["sdr10"]))
    for name, trc in HDR.items():
        out[name] = work / f"{name}.mp4"
        # SDR white at 203 cd/m2, HDR reference white (BT.2408), as a grade of the picture would put it
        ffmpeg("-i", str(base), "-vf", "zscale=tin=bt709:min=bt709:pin=bt709:rin=tv:t=linear:m=gbr:p=bt709:npl=203,"
               f"format=gbrpf32le,zscale=p=bt2020:t={trc}:m=bt2020nc"
               f":r=tv:npl=203,format=yuv420p10le", *x265, "-color_primaries", "bt2020", "-color_trc", trc,
               "-colorspace", "bt2020nc", str(out[name]))
    return out


def run(src: Path, out: Path, *extra) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "streamgan", "run", "--engine", str(BUNDLED), "--input", str(src),
                        "--output", str(out), "--overwrite", "--no-progress", "--quiet", *extra],
                       capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"streamgan failed on {src.name}: {r.stderr[-1500:]}")
    return time.perf_counter() - t0


def tags(path: Path) -> dict:
    with av.open(str(path)) as c:
        f = next(c.decode(video=0))
        return {"pix_fmt": f.format.name, "trc": int(f.color_trc), "primaries": int(f.color_primaries),
                "matrix": int(f.colorspace), "frames": c.streams.video[0].frames}


def tone_map_cost() -> dict:
    """ms a frame of the conversion alone (to SDR; back for --hdr keep), HLG and PQ, 720p and 1080p."""
    from streamgan.media.hdr import HLG, PQ, HdrConverter
    rng = np.random.default_rng(0)
    res = {}
    for w, h in ((1280, 720), (1920, 1080)):
        code = (rng.random((h, w, 3)) * 50000).astype(np.uint16)
        for trc, name in ((HLG, "hlg"), (PQ, "pq")):
            conv = HdrConverter(trc)
            times = {"to_sdr": [], "to_sdr_keep": [], "to_hdr": []}
            for _ in range(7):
                t = time.perf_counter()
                conv.to_sdr(code)
                times["to_sdr"].append(time.perf_counter() - t)
                t = time.perf_counter()
                sdr, r = conv.to_sdr(code, keep_residual=True)
                times["to_sdr_keep"].append(time.perf_counter() - t)
                t = time.perf_counter()
                conv.to_hdr(sdr, r)
                times["to_hdr"].append(time.perf_counter() - t)
            res[f"{name}_{h}p"] = {k: round(1000 * statistics.median(v), 1) for k, v in times.items()}
    return res


def tone_map_choice(src: dict[str, Path], base: Path) -> dict:
    """Each tone curve's SDR picture of the HDR clips against the SDR picture they were made from
    (PSNR over the first frame, dB): the default is the closest."""
    from streamgan.media.hdr import TONEMAPS, HdrConverter
    from streamgan.media.video import to_rgb

    def first(path, fmt="rgb24"):
        with av.open(str(path)) as c:
            return to_rgb(next(c.decode(video=0)), fmt)
    want = first(base).astype(float)
    out = {}
    for name in HDR:
        with av.open(str(src[name])) as c:
            trc = int(next(c.decode(video=0)).color_trc)
        code = first(src[name], "rgb48le")
        for tm in TONEMAPS:
            got, _ = HdrConverter(trc, tm).to_sdr(code)
            mse = np.mean((got.astype(float) - want) ** 2)
            out[f"{name}_{tm}"] = round(float(10 * np.log10(255 ** 2 / max(mse, 1e-9))), 2)
    return out


def still(src: Path, out_png: Path) -> None:
    """Before/after: an HLG frame's code values shown as they are, what the model makes of them,
    the frame tone mapped to SDR, and what the model makes of that."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from streamgan import load_generator
    from streamgan.media.hdr import HdrConverter
    from streamgan.media.video import to_rgb
    with av.open(str(src)) as c:
        f = next(c.decode(video=0))
    raw = to_rgb(f)
    sdr, _ = HdrConverter(int(f.color_trc)).to_sdr(to_rgb(f, "rgb48le"))
    g = load_generator(BUNDLED)

    def model(rgb):
        with torch.no_grad():
            x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 127.5 - 1
            return ((g(x)[0].permute(1, 2, 0).numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8)
    fig, ax = plt.subplots(2, 2, figsize=(12, 7.2))
    for a, img, title in ((ax[0, 0], raw, "HLG code values as they are (--hdr passthrough)"),
                          (ax[0, 1], model(raw), "the model on them"),
                          (ax[1, 0], sdr, "tone mapped to SDR BT.709 (default, hable)"),
                          (ax[1, 1], model(sdr), "the model on that")):
        a.imshow(img)
        a.set_title(title, fontsize=10)
        a.axis("off")
    fig.tight_layout()
    fig.savefig(out_png, dpi=80)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if shutil.which("ffmpeg") is None:
        raise SystemExit("needs Debian's ffmpeg (with zscale and libx265) to make the clips")
    w, h = map(int, args.size.split("x"))
    work = Path(tempfile.mkdtemp(prefix="bench_hdr_"))
    src = clips(work, w, h, args.frames)
    cases = [(k, ()) for k in src] + [(k + "_keep", ("--hdr", "keep")) for k in HDR]
    run(src["sdr8"], work / "warm.mp4")  # the engine's cache: every measured run starts warm
    seconds: dict[str, list[float]] = {k: [] for k, _ in cases}
    for _ in range(args.rounds):  # interleaved
        for name, extra in cases:
            seconds[name].append(run(src[name.removesuffix("_keep")], work / f"out_{name}.mp4", *extra))
    base = statistics.median(seconds["sdr8"])
    results = {"size": args.size, "frames": args.frames, "rounds": args.rounds, "runs": {}}
    for name, _ in cases:
        s = statistics.median(seconds[name])
        results["runs"][name] = {"seconds": [round(x, 2) for x in seconds[name]], "median_s": round(s, 2),
                                 "fps": round(args.frames / s, 2), "speed_vs_sdr8": round(base / s, 3),
                                 "input": tags(src[name.removesuffix("_keep")]),
                                 "output": tags(work / f"out_{name}.mp4")}
        print(name, json.dumps(results["runs"][name]), flush=True)
    results["tone_map_psnr_to_sdr_source_db"] = tone_map_choice(src, work / "base.mp4")
    print("tone curves against the SDR source:", results["tone_map_psnr_to_sdr_source_db"], flush=True)
    results["tone_map_ms"] = tone_map_cost()
    print("tone map ms:", results["tone_map_ms"], flush=True)
    png = Path(args.out or ROOT / "bench" / "results") / "hdr_before_after.png"
    still(src["hlg"], png)
    results["still"] = png.name
    save(results, "hdr", args.out)


if __name__ == "__main__":
    main()
