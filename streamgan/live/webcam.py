"""``streamgan webcam``: the live filter, a front-end of the live pipeline (``streamgan.pipeline``):
a camera (or a video file played at its own rate, or a stream URL) -> translate -> a window, a
recording, a virtual camera. The newest frame wins; each shown frame's latency is measured from
its capture to its display."""

from __future__ import annotations

import sys
import time

import cv2
import numpy as np

from engines.base import Engine

from ..errors import OptionError
from ..media.sinks import VideoSink, VirtualCamSink, WindowSink
from ..pipeline import Controls
from ..translate.translator import TranslateOptions
from .run import translate_live


class _Overlay:
    """fps, latency p50/p99 and dropped frames drawn on the shown picture."""

    def __init__(self, stats: dict):
        self.stats, self.t0, self.shown = stats, time.perf_counter(), 0

    def __call__(self, img: np.ndarray) -> np.ndarray:
        self.shown += 1
        lat = sorted(self.stats.get("recent", []))
        p50 = lat[len(lat) // 2] if lat else 0.0
        p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else 0.0
        fps = self.shown / max(time.perf_counter() - self.t0, 1e-6)
        text = f"{fps:5.1f} fps  latency p50 {p50:.0f} ms p99 {p99:.0f} ms"
        out = img.copy()
        cv2.putText(out, text, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, text, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        return out


def run_webcam(engine: Engine, camera: str = "0", *, size: tuple[int, int] | None = None, fps: float | None = None,
               window: bool = True, virtual_cam: bool = False, record: str | None = None,
               side_by_side: bool = False, frames: int | None = None, stats_json: str | None = None,
               options: TranslateOptions | None = None, temporal: str = "off",
               temporal_strength: float | None = None, overwrite: bool = False, skip_similar: float | None = None,
               duration: float | None = None, progress: bool = False, quiet: bool = False) -> dict:
    """Run the live filter until q, the end of a file source, ``frames`` shown or ``duration``
    seconds; returns the live report. A file plays at its own rate, standing in for a camera."""
    from ..media.sources import open_source
    from ..options import encoder
    if frames is not None and frames < 1:
        raise OptionError("--frames must be >= 1")
    enc = encoder(live=True)[0] if record else None
    controls = Controls(side_by_side=side_by_side)
    sinks = []
    if record:  # checked before the camera opens
        sinks.append(VideoSink(record, None, enc, overwrite=overwrite))
    stats: dict = {"recent": []}
    if window:
        sinks.append(WindowSink(controls, _Overlay(stats)))
    if virtual_cam:
        sinks.append(VirtualCamSink(fps or 30.0))
    source = open_source(camera, live=True, size=size, fps=fps)
    if size and (source.info.width, source.info.height) != size and not camera.isdigit():
        source.close()
        raise OptionError(f"--size {size[0]}x{size[1]}: {camera} is {source.info.width}x{source.info.height}",
                          hint="--size asks a camera for a capture size")
    for sink in sinks:
        if isinstance(sink, VideoSink):
            sink.info = source.info

    def seen(item: dict) -> None:  # the overlay's recent latencies
        recent = stats["recent"]
        recent.append(1000 * item["latency_s"])
        del recent[:-100]
    report = translate_live(source, sinks, engine, options=options, temporal=temporal,
                            temporal_strength=temporal_strength, controls=controls, duration=duration,
                            frames=frames, skip_similar=skip_similar, stats_json=stats_json, progress=progress,
                            quiet=quiet, on_written=seen)
    report["camera"], report["recorded"] = camera, record
    return report


def add_webcam_args(p) -> None:
    from ..arguments import _engine_args, _tile_args
    from ..temporal import TEMPORAL_MODES
    _engine_args(p)
    _tile_args(p)
    p.add_argument("--camera", default="0",
                   help="camera index (default 0), /dev/videoN, a video file (plays at its own rate) or a stream URL")
    p.add_argument("--size", default=None, help="capture size WxH (default: the camera's)")
    p.add_argument("--fps", type=float, default=None, help="capture rate (default: the camera's)")
    p.add_argument("--view", choices=("window", "browser", "none"), default=None,
                   help="where to show it: an OpenCV window, a page in a browser (the camera stays on this machine; "
                        "the URL is printed), or nowhere (default: window where OpenCV has a GUI, else browser)")
    p.add_argument("--no-window", action="store_true", help="the same as --view none")
    p.add_argument("--host", default="127.0.0.1", help="--view browser: address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="--view browser: port (default 8080)")
    p.add_argument("--token", default=None, help="--view browser: a token every request must carry")
    p.add_argument("--virtual-cam", action="store_true", help="send frames to a virtual camera (pyvirtualcam)")
    p.add_argument("--record", default=None, help="write what is shown to this video file (kept up to the stop)")
    p.add_argument("--overwrite", action="store_true", help="replace existing --record / --stats-json files")
    p.add_argument("--side-by-side", action="store_true", help="show input | output (key s toggles)")
    p.add_argument("--frames", type=int, default=None, help="stop after this many frames (default: until q)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: until q)")
    p.add_argument("--stats-json", default=None,
                   help="write received, translated, dropped and latency percentiles as JSON here")
    p.add_argument("--temporal", choices=TEMPORAL_MODES, default="off",
                   help="temporal smoothing: off (default), ema, motion or flow (key t toggles)")
    p.add_argument("--temporal-strength", type=float, default=None,
                   help="from 0 up to, not including, 1 (default: 0.7 for flow, 0.6 for ema and motion)")
    p.add_argument("--skip-similar", type=float, default=None, metavar="T",
                   help="reuse the last output for a frame that differs from the last translated one by less than T "
                        "(mean on 0..1 of small gray versions), counted as skipped (default: translate all)")
    p.add_argument("--progress", action="store_true", help="a progress line with fps, latency and drops")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")


def opencv_has_gui() -> bool:
    """Whether this OpenCV can open a window (opencv-python-headless, the default install, cannot)."""
    info = cv2.getBuildInformation()
    at = info.find("GUI:")
    return at >= 0 and info[at + 4:info.find("\n", at)].strip().upper() not in ("NONE", "")


def cmd_webcam(args) -> int:
    from ..arguments import check_engine_args, open_engine_from_args, translate_options
    from ..options import check_report
    check_engine_args(args)
    check_report(args.stats_json, args.overwrite, "--stats-json")
    if args.fps is not None and not 0 < args.fps <= 1000:
        raise OptionError("--fps must be in (0, 1000]")
    from ..arguments import parse_size
    size = parse_size(args.size)
    view = "none" if args.no_window else args.view or ("window" if opencv_has_gui() else "browser")
    if view == "browser":
        return _browser_view(args, size)
    # live: no torch.compile candidate in the automatic choice (its first compile would hold the camera)
    with open_engine_from_args(args, measure_compile=False) as engine:
        run_webcam(engine, args.camera, size=size, fps=args.fps, window=view == "window",
                   virtual_cam=args.virtual_cam, record=args.record, side_by_side=args.side_by_side,
                   frames=args.frames, stats_json=args.stats_json,
                   options=translate_options(args, stats_ema=0.8 if args.temporal != "off" else 0.0),
                   temporal=args.temporal, temporal_strength=args.temporal_strength, overwrite=args.overwrite,
                   skip_similar=args.skip_similar, duration=args.duration, progress=args.progress, quiet=args.quiet)
    return 0


def _browser_view(args, size) -> int:
    """The camera on this machine, translated, shown by a page (``streamgan serve`` with a local
    source): the URL is printed; Ctrl-C stops."""
    from ..arguments import open_engine_from_args, translate_options
    from ..media.sources import open_source
    from .serve import _need_webrtc, serve
    for flag, value in (("--record", args.record), ("--virtual-cam", args.virtual_cam),
                        ("--stats-json", args.stats_json), ("--frames", args.frames)):
        if value:
            raise OptionError(f"{flag} goes with --view window or none, not browser")
    _need_webrtc()
    source = open_source(args.camera, live=True, size=size, fps=args.fps)
    print("webcam: the camera stays on this machine; open the page below in a browser", file=sys.stderr)
    with open_engine_from_args(args, measure_compile=False) as engine:
        try:
            serve(engine, host=args.host, port=args.port, options=translate_options(args), token=args.token,
                  local=source)
        except KeyboardInterrupt:
            print("streamgan: stopped", file=sys.stderr)
        finally:
            source.close()
    return 0


cmd_webcam.add_args = add_webcam_args
