"""E_warp and PSNR per temporal mode with the bundled day2night model on a noisy panning clip.

    python bench/bench_temporal.py [--out bench/results]

Writes temporal_<date>.json, a markdown table, and temporal_frame.png (a crop of one frame:
input | per-frame output | flow-smoothed output, with the difference to the previous frame below).
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from common import save  # noqa: F401  (puts the repo on sys.path)

from streamgan import open_engine, translate_video  # noqa: E402
from streamgan.data.synthetic import write_clip  # noqa: E402
from streamgan.demo import BUNDLED  # noqa: E402
from streamgan.temporal_eval import evaluate_temporal  # noqa: E402
from streamgan.video import VideoReader  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    out_dir = Path(args.out)
    tmp = Path(tempfile.mkdtemp())
    eng = open_engine(BUNDLED, device="cpu", precision="fp32")
    table = {}
    for label, noise in (("noisy input (sigma 3%)", 0.03), ("clean input", 0.0)):
        src = write_clip(tmp / f"in_{noise}.mp4", args.seconds, noise=noise, crf=4, pix_fmt="yuv444p", seed=3)
        outs = {}
        for mode in ("off", "ema", "motion", "flow"):
            outs[mode] = tmp / f"{mode}_{noise}.mp4"
            translate_video(src, outs[mode], eng, temporal=mode, crf=4, progress=False, overwrite=True)
        res = evaluate_temporal(src, outs, reference=outs["off"])
        table[label] = {m: {"e_warp": r["e_warp"], "psnr_to_per_frame": r["psnr_to_reference"]} for m, r in res.items()}
        if noise:
            frames = {m: [f.rgb for f in VideoReader(p)] for m, p in outs.items()}
            inp = [f.rgb for f in VideoReader(src)]
            t = len(inp) // 2
            crop = (slice(120, 256), slice(0, 224))
            top = np.hstack([inp[t][crop], frames["off"][t][crop], frames["flow"][t][crop]])
            diff = lambda m: np.clip(np.abs(frames[m][t].astype(int) - frames[m][t - 1].astype(int)) * 4, 0, 255)  # noqa: E731
            bottom = np.hstack([np.zeros_like(inp[t][crop]), diff("off")[crop].astype(np.uint8),
                                diff("flow")[crop].astype(np.uint8)])
            img = np.vstack([top, bottom])
            img = cv2.resize(img, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
            for x, text in ((8, "input (noisy)"), (456, "per-frame"), (904, "--temporal flow")):
                cv2.putText(img, text, (x, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
            cv2.putText(img, "|frame t - frame t-1| x4", (456, 300), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1)
            cv2.imwrite(str(out_dir / "temporal_frame.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    lines = ["| clip | mode | E_warp | vs off | PSNR to per-frame |", "|---|---|---|---|---|"]
    for label, rows in table.items():
        off = rows["off"]["e_warp"]
        for m, r in rows.items():
            p = r["psnr_to_per_frame"]
            lines.append(f"| {label} | {m} | {r['e_warp']:.5f} | {r['e_warp'] / off:.2f}x | "
                         f"{'-' if p == float('inf') else f'{p:.1f} dB'} |")
    md = "\n".join(lines)
    print(md)
    (out_dir / f"temporal_{time.strftime('%Y-%m-%d')}.json").write_text(json.dumps(table, indent=2))
    (out_dir / "temporal.md").write_text(md + "\n")


if __name__ == "__main__":
    main()
