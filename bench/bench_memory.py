"""Peak memory of the streaming pipeline against video length: it must stay flat.

    python bench/bench_memory.py [--lengths 500,5000] [--size 64x48]

Each length runs in a fresh process (ru_maxrss is a high-water mark).
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, sys, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[4])
from tests.streamgan.helpers import tiny_resnet, write_clip
import numpy as np
from streamgan import open_engine, translate_video
n, w, h = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
d = Path(tempfile.mkdtemp())
rs = np.random.RandomState(0)
base = (rs.rand(h, w, 3) * 255).astype(np.uint8)
frames = (np.roll(base, i, axis=1) for i in range(n))
clip = d / "long.mp4"
import av
with av.open(str(clip), "w") as c:
    s = c.add_stream("libx264", rate=30); s.width, s.height, s.pix_fmt = w, h, "yuv420p"
    s.options = {"preset": "ultrafast"}
    for f in frames:
        for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")): c.mux(p)
    for p in s.encode(): c.mux(p)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
# one engine for every length (an automatic choice may differ between runs: torch or OpenVINO, each
# with its own memory), with its own cache
import os; os.environ["STREAMGAN_CACHE"] = str(d / "cache")
eng = open_engine(tiny_resnet(d / "g.pth"), device="cpu", backend="openvino", precision="fp32")
r = translate_video(clip, d / "out.mp4", eng, preset="ultrafast", progress=False)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"frames": r["frames_out"], "peak_rss_mb": peak / 1024, "before_run_mb": before / 1024}))
"""


def measure(n: int, w: int, h: int) -> dict:
    root = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", CHILD, str(n), str(w), str(h), root], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lengths", default="500,5000")
    ap.add_argument("--size", default="64x48")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    rows = [measure(int(n), w, h) for n in args.lengths.split(",")]
    for r in rows:
        print(f"{r['frames']:>6} frames: peak RSS {r['peak_rss_mb']:.0f} MB")
    print(f"growth {rows[-1]['peak_rss_mb'] - rows[0]['peak_rss_mb']:+.1f} MB over "
          f"{rows[-1]['frames'] - rows[0]['frames']} more frames")


if __name__ == "__main__":
    main()
