"""``streamgan webcam``: a live filter. A capture thread keeps only the newest frame; each shown
frame's latency is measured from its capture to its display (not the loop period)."""

import json
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engines.base import Engine

from .errors import InputError, OptionError, OutputError
from .latency import LatencyLog, since_launch
from .temporal import make_smoother
from .translate import TranslateOptions, Translator


@dataclass
class Captured:
    rgb: np.ndarray
    t: float  # perf_counter at capture
    seq: int


class LatestFrameCapture:
    """Read frames in a thread, keep only the newest. A file plays in real time (at its fps)."""

    def __init__(self, source: str, size: tuple[int, int] | None = None, fps: float | None = None):
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        self.is_file = Path(source).is_file()
        index = int(source) if source.isdigit() else source
        self.cap = cv2.VideoCapture(index)
        if not self.cap.isOpened():
            raise InputError(f"camera {source!r}: cannot open it (no such device, file or stream)")
        if not self.is_file:
            self.cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            self.cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
            if size:
                self.cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
                self.cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
            if fps:
                self.cap.set(cv2.CAP_PROP_FPS, fps)
        self.fps = fps or self.cap.get(cv2.CAP_PROP_FPS) or 30.0
        self.size = size
        self.source = source
        self.lock = threading.Condition()
        self.latest: Captured | None = None
        self.offered = self.dropped = 0
        self.ended = False
        self.error: str | None = None
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.stop_flag = False

    def start(self) -> "LatestFrameCapture":
        self.thread.start()
        return self

    def _loop(self) -> None:
        t0 = time.perf_counter()
        n = 0
        while not self.stop_flag:
            ok, bgr = self.cap.read()
            if not ok:
                if not self.is_file:
                    self.error = f"camera {self.source!r} stopped delivering frames"
                break
            if self.is_file:  # real-time playback of a file standing in for a camera
                wait = t0 + n / self.fps - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            n += 1
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            if self.size and self.is_file and (rgb.shape[1], rgb.shape[0]) != self.size:
                rgb = cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA)
            with self.lock:
                if self.latest is not None:
                    self.dropped += 1
                self.latest = Captured(rgb, time.perf_counter(), self.offered)
                self.offered += 1
                self.lock.notify()
        with self.lock:
            self.ended = True
            self.lock.notify()

    def get(self, timeout: float = 5.0) -> Captured | None:
        """The newest frame not yet taken; None at the end of the source."""
        with self.lock:
            if not self.lock.wait_for(lambda: self.latest is not None or self.ended, timeout):
                self.error = self.error or f"camera {self.source!r}: no frame within {timeout:.0f} s"
                return None
            frame, self.latest = self.latest, None
            return frame

    def close(self) -> None:
        self.stop_flag = True
        self.thread.join(timeout=2)
        self.cap.release()
        with self.lock:
            if self.latest is not None:  # captured but never shown
                self.dropped += 1
                self.latest = None


def _overlay(img: np.ndarray, log: LatencyLog, fps: float, dropped: int) -> np.ndarray:
    p50, p99 = log.recent("end_to_end")
    out = img.copy()
    text = f"{fps:5.1f} fps  latency p50 {p50:.1f} ms p99 {p99:.1f} ms  dropped {dropped}"
    cv2.putText(out, text, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _warm_up(translator: Translator, smoother, cap: "LatestFrameCapture") -> float:
    """Run the pipeline twice on a frame of the capture size before frames flow (kernel compilation,
    plans, the backend choice happen now, not on live frames); the smoother is reset after."""
    w, h = int(cap.cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    if w <= 0 or h <= 0:
        return 0.0
    t = time.perf_counter()
    frame = np.zeros((h, w, 3), np.uint8)
    frame[:] = (96, 128, 160)
    for _ in range(2):
        out = translator(frame)
        if smoother is not None:
            smoother(frame, out)
    if smoother is not None:
        smoother.reset()
    translator.reset()
    translator.times.clear()
    translator.frames = 0
    return time.perf_counter() - t


def run_webcam(engine: Engine, camera: str = "0", *, size: tuple[int, int] | None = None, fps: float | None = None,
               window: bool = True, virtual_cam: bool = False, record: str | None = None,
               side_by_side: bool = False, frames: int | None = None, stats_json: str | None = None,
               options: TranslateOptions | None = None, temporal: str = "off",
               temporal_strength: float | None = None, overwrite: bool = False) -> dict:
    """Run the live filter until q, the end of a file source, or ``frames`` shown; returns the stats."""
    if record:  # before the camera opens
        from .io_utils import check_output
        check_output(Path(record), [], overwrite)
    translator = Translator(engine, options)
    smoother = make_smoother(temporal, temporal_strength, device=engine.device if translator.cuda else None)
    use_temporal = smoother is not None
    cap = LatestFrameCapture(camera, size, fps)
    log, writer, vcam, shown, first_shown = LatencyLog(), None, None, 0, None
    paused, error = False, None
    rec_tmp = None
    warm = _warm_up(translator, smoother, cap)
    t_start = time.perf_counter()
    cap.start()
    try:
        while frames is None or shown < frames:
            item = cap.get()
            if item is None:
                error = cap.error
                break
            if paused:
                continue
            t0 = time.perf_counter()
            if use_temporal:
                smoother.ahead(item.rgb)  # its flow runs beside the model
            out = translator(item.rgb)
            t1 = time.perf_counter()
            if use_temporal:
                out, cut = smoother(item.rgb, out)
                if cut:
                    translator.reset()
            t2 = time.perf_counter()
            view = np.concatenate([item.rgb, out], axis=1) if side_by_side else out
            if record:
                if writer is None:
                    from .video import VideoWriter
                    rec_tmp = Path(record).with_name(f".{Path(record).stem}.partial{Path(record).suffix}")
                    writer = VideoWriter(rec_tmp, None, view.shape[1], view.shape[0], rate=cap.fps)
                    rec_shape = view.shape
                if view.shape != rec_shape:
                    view_rec = cv2.resize(view, (rec_shape[1], rec_shape[0]))
                else:
                    view_rec = view
                writer.write(view_rec, None)
            if virtual_cam:
                if vcam is None:
                    vcam = _open_virtual_cam(view.shape[1], view.shape[0], cap.fps)
                vcam.send(view)
            if window:
                elapsed = time.perf_counter() - t_start
                try:
                    cv2.imshow("streamgan", cv2.cvtColor(_overlay(view, log, shown / max(elapsed, 1e-6),
                                                                  cap.dropped), cv2.COLOR_RGB2BGR))
                    key = cv2.waitKey(1) & 0xFF
                except cv2.error:
                    raise OutputError("cannot open a window here (no display, or OpenCV without GUI support)",
                                      hint="use --no-window, or install opencv-python instead of the headless build")
                if key == ord("q"):
                    break
                if key == ord("s"):
                    side_by_side = not side_by_side
                if key == ord("t") and smoother is not None:
                    use_temporal = not use_temporal
                    smoother.reset()
                if key == ord(" "):
                    paused = not paused
            t3 = time.perf_counter()
            shown += 1
            if shown == 1:
                first_shown = since_launch()
            log.add_all({"wait": t0 - item.t, "translate": t1 - t0, "temporal": t2 - t1, "output": t3 - t2,
                         "end_to_end": t3 - item.t})
            for k, v in translator.last.items():
                log.add(f"translate.{k}", v)
    finally:
        cap.close()
        if writer is not None:
            writer.close()
            rec_tmp.replace(record)
        if vcam is not None:
            vcam.close()
        if window:
            try:
                cv2.destroyAllWindows()
            except cv2.error:
                pass
    elapsed = time.perf_counter() - t_start
    stats = {"frames": shown, "dropped": cap.dropped, "offered": cap.offered, "fps": shown / elapsed if elapsed else 0,
             "seconds": elapsed, "warm_up_s": warm, "first_shown_after_launch_s": first_shown,
             "latency_ms": log.summary(), "engine": engine.describe(),
             "camera": camera, "recorded": record if writer is not None else None}
    if stats_json:
        Path(stats_json).write_text(json.dumps(stats, indent=2))
    e2e = stats["latency_ms"].get("end_to_end", {})
    print(f"webcam: {shown} frames shown, {cap.dropped} dropped of {cap.offered}, {stats['fps']:.1f} fps, "
          f"latency p50 {e2e.get('p50', 0):.1f} ms p99 {e2e.get('p99', 0):.1f} ms", file=sys.stderr)
    if error:
        raise InputError(error + (f"; recording finalised at {record}" if writer is not None else ""))
    return stats


def _open_virtual_cam(width: int, height: int, fps: float):
    try:
        import pyvirtualcam
    except ImportError:
        raise OutputError("--virtual-cam needs pyvirtualcam", hint="pip install 'streamgan[virtualcam]'") from None
    try:
        return pyvirtualcam.Camera(width=width, height=height, fps=fps)
    except RuntimeError as exc:
        raise OutputError(f"no virtual camera device ({exc})", hint="load v4l2loopback or start OBS") from None


def add_webcam_args(p) -> None:
    from .cli_args import _engine_args, _tile_args
    from .temporal import TEMPORAL_MODES
    _engine_args(p)
    _tile_args(p)
    p.add_argument("--camera", default="0",
                   help="camera index (default 0), /dev/videoN, a video file (plays in real time) or URL")
    p.add_argument("--size", default=None, help="capture size WxH (default: the camera's)")
    p.add_argument("--fps", type=float, default=None, help="capture rate (default: the camera's)")
    p.add_argument("--no-window", action="store_true", help="show nothing (record, virtual camera or statistics)")
    p.add_argument("--virtual-cam", action="store_true", help="send frames to a virtual camera (pyvirtualcam)")
    p.add_argument("--record", default=None, help="write what is shown to this video file")
    p.add_argument("--overwrite", action="store_true", help="replace existing --record / --stats-json files")
    p.add_argument("--side-by-side", action="store_true", help="show input | output (key s toggles)")
    p.add_argument("--frames", type=int, default=None, help="stop after this many frames (default: until q)")
    p.add_argument("--stats-json", default=None, help="write fps, drops and latency percentiles as JSON here")
    p.add_argument("--temporal", choices=TEMPORAL_MODES, default="off",
                   help="temporal smoothing: off (default), ema, motion or flow (key t toggles)")
    p.add_argument("--temporal-strength", type=float, default=None,
                   help="from 0 up to, not including, 1 (default: 0.7 for flow, 0.6 for ema and motion)")


def parse_size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise OptionError(f"--size {text!r}: expected WxH such as 1280x720") from None
    if not (0 < w <= 16384 and 0 < h <= 16384):
        raise OptionError(f"--size {text!r}: width and height must be 1 to 16384")
    return w, h


def cmd_webcam(args) -> int:
    from .cli_args import open_engine_from_args, translate_options
    # live: no torch.compile candidate in the automatic choice (its first compile would hold the camera)
    with open_engine_from_args(args, measure_compile=False) as engine:
        run_webcam(engine, args.camera, size=parse_size(args.size), fps=args.fps, window=not args.no_window,
                   virtual_cam=args.virtual_cam, record=args.record, side_by_side=args.side_by_side,
                   frames=args.frames, stats_json=args.stats_json,
                   options=translate_options(args, stats_ema=0.8 if args.temporal != "off" else 0.0),
                   temporal=args.temporal, temporal_strength=args.temporal_strength, overwrite=args.overwrite)
    return 0


cmd_webcam.add_args = add_webcam_args
