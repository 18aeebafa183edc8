"""``streamgan demo``: render a synthetic day street clip and turn it into night with the bundled
day2night generator, through the full video pipeline. Works offline."""

import sys
from pathlib import Path

import numpy as np

from .data.synthetic import write_clip
from .engine import open_engine
from .images import write_image
from .video import VideoReader
from .video_run import translate_video

BUNDLED = Path(__file__).parent / "assets" / "day2night.safetensors"


def run_demo(output: str | Path = "demo_day2night.mp4", *, seconds: float = 5.0, size: tuple[int, int] = (256, 448),
             device: str | None = None, temporal: str = "flow", overwrite: bool = True, progress: bool = True) -> dict:
    """Write OUTPUT (day | night side by side) and OUTPUT's .png still; returns the run report."""
    output = Path(output)
    day = output.with_name(output.stem + "_input.mp4")
    write_clip(day, seconds=seconds, size=size, mode="day")
    with open_engine(BUNDLED, device=device) as engine:
        report = translate_video(day, output, engine, side_by_side=True, temporal=temporal, overwrite=overwrite,
                                 progress=progress)
    frames = [f.rgb for f in VideoReader(output)]
    still = output.with_suffix(".png")
    write_image(still, np.ascontiguousarray(frames[len(frames) // 2]))
    report["still"] = str(still)
    report["input"] = str(day)
    print(f"demo: {output} (day | night), still {still}", file=sys.stderr)
    return report


def add_demo_args(p) -> None:
    p.add_argument("--output", default="demo_day2night.mp4")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--device", default=None)
    p.add_argument("--temporal", default="flow", choices=("off", "ema", "motion", "flow"))
    p.add_argument("--no-progress", action="store_true")


def cmd_demo(args) -> int:
    run_demo(args.output, seconds=args.seconds, device=args.device, temporal=args.temporal,
             progress=not args.no_progress)
    return 0


cmd_demo.add_args = add_demo_args
