"""``streamgan demo``: render a synthetic day street clip and turn it into night with the bundled
day2night generator, through the full video pipeline. Works offline."""

import sys
from pathlib import Path

import numpy as np

from ..data.synthetic import write_clip
from ..errors import OptionError
from ..media.files import atomic_path, check_output
from ..media.images import write_image
from ..media.video import VideoReader
from ..offline.video import translate_video
from ..translate.engine import open_engine

BUNDLED = Path(__file__).parents[1] / "assets" / "day2night.safetensors"


def demo_files(output: Path) -> tuple[Path, Path]:
    """(the rendered day clip, the still) written beside OUTPUT."""
    return output.with_name(output.stem + "_input.mp4"), output.with_suffix(".png")


def run_demo(output: str | Path = "demo_day2night.mp4", *, seconds: float = 5.0, size: tuple[int, int] = (256, 448),
             device: str | None = None, temporal: str = "flow", overwrite: bool = False, progress: bool = True,
             quiet: bool = False) -> dict:
    """Write OUTPUT (day | night side by side), the day clip and OUTPUT's .png still beside it;
    returns the run report. Existing files are replaced only with ``overwrite``."""
    output = Path(output)
    if output.suffix.lower() not in (".mp4", ".mkv", ".mov"):
        raise OptionError(f"--output {output}: the demo writes a video; name it .mp4, .mkv or .mov")
    if not 0 < seconds <= 600:
        raise OptionError("--seconds must be in (0, 600]")
    day, still = demo_files(output)
    for path in (output, day, still):
        check_output(path, [], overwrite)
    with atomic_path(day) as tmp:
        write_clip(tmp, seconds=seconds, size=size, mode="day")
    with open_engine(BUNDLED, device=device) as engine:
        report = translate_video(day, output, engine, side_by_side=True, temporal=temporal, overwrite=overwrite,
                                 progress=progress, quiet=quiet)
    frames = [f.rgb for f in VideoReader(output)]
    write_image(still, np.ascontiguousarray(frames[len(frames) // 2]))
    report["still"] = str(still)
    report["input"] = str(day)
    if not quiet:
        print(f"demo: {output} (day | night), still {still}", file=sys.stderr)
    return report


def add_demo_args(p) -> None:
    p.add_argument("--output", "--out", default="demo_day2night.mp4",
                   help="the day | night video (default demo_day2night.mp4); the day clip and a still go beside it")
    p.add_argument("--seconds", type=float, default=5.0, help="length of the clip (default 5)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when present)")
    p.add_argument("--temporal", default="flow", choices=("off", "ema", "motion", "flow"),
                   help="temporal smoothing (default flow)")
    p.add_argument("--overwrite", action="store_true", help="replace the files of an earlier demo")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")


def cmd_demo(args) -> int:
    from ..options import check_device
    check_device(args.device)
    run_demo(args.output, seconds=args.seconds, device=args.device, temporal=args.temporal,
             overwrite=args.overwrite, progress=not args.no_progress, quiet=args.quiet)
    return 0


cmd_demo.add_args = add_demo_args
