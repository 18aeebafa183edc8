"""Where translated frames go in a live run: a video file (a recorder: what came before the stop is
kept, complete), a network stream (RTMP as flv, UDP/TCP/SRT as MPEG-TS, RTSP published to a
server), a window, a virtual camera (and, with ``streamgan serve``, a browser). A sink takes
``write(out, seconds, frame)``: the output picture, its timestamp on the output clock, and the
source frame it came from; ``close()`` finishes it properly (trailer written, session closed).
Offline file runs write through ``video.VideoWriter`` directly (every frame, the source's own
timestamps, audio remuxed)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import OutputError
from ..options import Encoder, live_bitrate
from .files import check_output, publish, temp_beside
from .urls import OUTPUT_FORMATS, is_url, scheme_of, stream_options
from .video import VideoInfo, VideoWriter

LIVE_TIME_BASE = Fraction(1, 90000)


class Sink:
    name = "sink"
    wants_stop = False  # set by a sink whose viewer asked to stop

    def write(self, out: np.ndarray, seconds: float, frame) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def abort(self) -> None:
        self.close()


class VideoSink(Sink):
    """A file or a network URL, encoded as frames come (opened at the first, whose size it takes).

    A file is written under a temporary name beside it and renamed when closed, so a recording
    stopped by Ctrl-C or ``--duration`` is complete up to the stop, and nothing is left when the
    run fails before its first frame."""

    def __init__(self, target: str, info: VideoInfo, encoder: Encoder, *, fmt: str | None = None,
                 overwrite: bool = False, timeout: float = 10.0):
        self.target, self.info, self.encoder, self.timeout = target, info, encoder, timeout
        self.url = is_url(target)
        self.fmt = fmt or (OUTPUT_FORMATS.get(scheme_of(target)) if self.url else None)
        if self.url and self.fmt is None:
            raise OutputError(f"{target}: streamgan cannot publish to {scheme_of(target)}://",
                              hint="rtmp://, rtsp://, srt://, udp:// or tcp:// (or --format)")
        if not self.url:
            check_output(Path(target), [], overwrite)
        self.name = target
        self.writer: VideoWriter | None = None
        self.tmp: Path | None = None
        self._last_pts = -1

    def _open(self, width: int, height: int) -> None:
        enc = self.encoder
        if enc.live and enc.bitrate is None and enc.crf is None:
            rate = float(self.info.rate or 30)
            enc = Encoder(enc.codec, enc.crf, enc.preset, enc.pix_fmt, enc.live, live_bitrate(width, height, rate))
        if self.url:
            where, options = self.target, stream_options(self.target, self.timeout, output=True)
            if scheme_of(where) == "udp" and "pkt_size" not in where:  # 7 TS packets a datagram
                where += ("&" if "?" in where else "?") + "pkt_size=1316"
        else:
            self.tmp = where = temp_beside(Path(self.target))
            options = None
        self.writer = VideoWriter(where, None, width, height, encoder=enc, info=self.info, rate=self.info.rate,
                                  time_base=LIVE_TIME_BASE, fmt=self.fmt, options=options)

    def write(self, out: np.ndarray, seconds: float, frame) -> None:
        if self.writer is None:
            self._open(out.shape[1], out.shape[0])
        pts = max(round(seconds / LIVE_TIME_BASE), self._last_pts + 1)
        self._last_pts = pts
        try:
            self.writer.write(out, pts)
        except Exception as exc:  # (PyAV raises OSError subclasses for a peer that went away)
            raise OutputError(f"{self.target}: writing failed ({getattr(exc, 'strerror', None) or exc})") from None

    @property
    def frames(self) -> int:
        return self.writer.frames if self.writer is not None else 0

    def close(self) -> None:
        """Finish the stream or file: the encoder flushed, the trailer written; a file is renamed
        into place (if it holds a frame)."""
        if self.writer is None:
            return
        writer, self.writer = self.writer, None
        try:
            writer.close()
        except Exception as exc:
            if self.tmp is not None:
                self.tmp.unlink(missing_ok=True)
            raise OutputError(f"{self.target}: finishing failed ({getattr(exc, 'strerror', None) or exc})") from None
        if self.tmp is not None:
            if writer.frames:
                publish(self.tmp, self.target)
            else:
                self.tmp.unlink(missing_ok=True)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)


class WindowSink(Sink):
    """An OpenCV window with an overlay (fps, latency, dropped); keys: q quit, s side by side,
    t temporal smoothing, space pause."""

    name = "window"

    def __init__(self, controls, overlay=None, title: str = "streamgan"):
        import cv2
        self.cv2, self.controls, self.overlay, self.title = cv2, controls, overlay, title

    def write(self, out: np.ndarray, seconds: float, frame) -> None:
        cv2 = self.cv2
        view = self.overlay(out) if self.overlay else out
        try:
            cv2.imshow(self.title, cv2.cvtColor(view, cv2.COLOR_RGB2BGR))
            key = cv2.waitKey(1) & 0xFF
        except cv2.error:
            raise OutputError("cannot open a window here (no display, or OpenCV without GUI support)",
                              hint="use --view browser (or --no-window), or install opencv-python "
                                   "instead of the headless build") from None
        c = self.controls
        if key == ord("q"):
            self.wants_stop = True
        elif key == ord("s"):
            c.side_by_side = not c.side_by_side
        elif key == ord("t"):
            c.temporal = not c.temporal
        elif key == ord(" "):
            c.paused = not c.paused

    def close(self) -> None:
        try:
            self.cv2.destroyAllWindows()
        except self.cv2.error:
            pass


class VirtualCamSink(Sink):
    """A virtual camera (v4l2loopback, OBS) through pyvirtualcam; frames resized to its size."""

    name = "virtual camera"

    def __init__(self, fps: float):
        try:
            import pyvirtualcam  # noqa: F401
        except ImportError:
            raise OutputError("--virtual-cam needs pyvirtualcam", hint="pip install 'streamgan[virtualcam]'") from None
        self.fps, self.cam = fps, None

    def write(self, out: np.ndarray, seconds: float, frame) -> None:
        import pyvirtualcam
        if self.cam is None:
            try:
                self.cam = pyvirtualcam.Camera(width=out.shape[1], height=out.shape[0], fps=self.fps)
            except RuntimeError as exc:
                raise OutputError(f"no virtual camera device ({exc})", hint="load v4l2loopback or start OBS") from None
        if (out.shape[1], out.shape[0]) != (self.cam.width, self.cam.height):
            import cv2
            out = cv2.resize(out, (self.cam.width, self.cam.height))
        self.cam.send(np.ascontiguousarray(out))

    def close(self) -> None:
        if self.cam is not None:
            self.cam.close()
