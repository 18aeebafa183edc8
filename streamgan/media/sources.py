"""Where frames come from: a video file, a network stream, a camera (and, with ``streamgan serve``,
a browser). Every source hands ``Frame``s in order, each with its timestamp, its time base and the
moment it arrived, and says whether it is live: a live source's clock runs whether the pipeline
keeps up or not (a network stream, a camera, a file played at its own rate with ``--live``); an
offline one waits for the pipeline (a file).

Network streams are opened with PyAV under a timeout, both for opening and for every read (without
one, ``av.open`` and demuxing can block forever on RTSP/UDP/RTMP), and when a live input is lost it
is reopened with exponential backoff from 1 to 30 s; each loss and reconnect is one line. A frame's
``epoch`` counts the reconnections before it (timestamps restart at a reconnect).
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import InputError, OptionError
from .hdr import DEFAULT_TONEMAP, HdrConverter, describe, is_hdr
from .urls import NETWORK_SCHEMES, is_url, scheme_of, stream_options
from .video import (
    NEW_CONTENT,
    Colour,
    Frame,
    VideoInfo,
    VideoReader,
    decode_rgb,
    deinterlaced,
    interlacing,
    main_video,
    pixel_shape,
)

MAX_BACKOFF = 30.0


def open_url(url: str, timeout: float, listen: bool = False, fmt: str | None = None):
    """An input container on ``url``, or one ``InputError`` line naming it and why, within ``timeout``."""
    try:
        container = av.open(url, format=fmt, options=stream_options(url, timeout, listen),
                            timeout=(timeout, timeout))
    except av.error.ProtocolNotFoundError:
        raise InputError(f"{url}: this FFmpeg build (the one PyAV {av.__version__} ships) cannot read "
                         f"{scheme_of(url)}://", hint="relay it through a server that speaks RTMP or RTSP, "
                         "or an FFmpeg built with that protocol") from None
    except av.error.ExitError:
        raise InputError(f"{url}: nothing arrived within {timeout:g} s", hint="is the sender running? "
                         "(--timeout sets the wait)") from None
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(f"{url}: cannot open ({_why(exc)})") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{url}: the stream has no video")
    return container


def _why(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(": '")[0] if text else exc.__class__.__name__


def _info_of(stream, frame: av.VideoFrame | None) -> VideoInfo:
    cc = stream.codec_context
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    width, height = (frame.width, frame.height) if frame is not None else (cc.width, cc.height)
    colour = Colour.of(frame) if frame is not None else Colour()
    return VideoInfo(width, height, Fraction(rate) if rate else None, stream.time_base, 0, None,
                     int(getattr(frame, "rotation", 0) or 0), colour, frame.format.name if frame is not None else "",
                     sar=pixel_shape(stream), interlaced=interlacing(stream, frame))


class Source:
    """Frames in order (iterate once), ``info`` (size, rate, colour), ``live``, ``close()``."""

    live = True
    name = "source"
    info: VideoInfo
    audio = False  # it carries sound (a live run does not pass it through, and says so)
    hdr = None  # an hdr.HdrConverter when the input is HDR: frames are tone mapped to SDR
    note: str | None = None  # what the source did that the run should say

    def __init__(self) -> None:
        self.error: str | None = None  # why it ended early, when it did
        self.counters = {"received": 0, "losses": 0, "reconnects": 0}
        self._stop = threading.Event()

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        self._stop.set()

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FileSource(Source):
    """A video file: offline (every frame, as fast as the pipeline takes them), or with ``pace``
    live at its own rate, as a camera or a broadcast would hand it (frames the pipeline has not
    taken by the next one's time are the pipeline's to drop)."""

    def __init__(self, path: Path | str, start: float = 0.0, duration: float | None = None, pace: bool = False,
                 planar: bool = False, loop: bool = False):
        super().__init__()
        self.reader = VideoReader(path, start, duration, threads=not pace, planar=planar)
        self.info, self.live, self.loop, self.name = self.reader.info, pace, loop, str(path)
        self.audio = self.info.audio

    def __iter__(self) -> Iterator[Frame]:
        t0 = first = None
        lap_offset = 0.0  # seconds added to the timestamps of later laps of a looped file
        while True:
            last = 0.0
            for frame in self.reader:
                if self._stop.is_set():
                    return
                t = (float(frame.pts * frame.time_base) if frame.pts is not None else frame.index /
                     float(self.info.rate or 30)) + lap_offset
                if self.live:
                    if t0 is None:
                        t0, first = time.perf_counter(), t
                    wait = t0 + (t - first) - time.perf_counter()
                    if wait > 0 and self._stop.wait(wait):
                        return
                    if lap_offset:
                        frame.pts = round(t / frame.time_base)
                frame.arrival = time.perf_counter()
                self.counters["received"] += 1
                last = t
                yield frame
            if self.reader.error:
                self.error = self.reader.error
            if not (self.loop and self.live and not self.error):
                return
            lap_offset = last + self.reader.frame_interval


class StreamSource(Source):
    """A network stream (RTSP, RTMP, UDP, TCP, HTTP/HLS; SRT where FFmpeg has it), live.

    ``reconnect``: how many times a lost input is reopened (None: until stopped), with exponential
    backoff from 1 to 30 s; the first open is not retried (a URL that cannot be opened is one line
    within ``timeout``). ``listen``: streamgan is the server the sender connects to."""

    def __init__(self, url: str, timeout: float = 10.0, reconnect: int | None = None, listen: bool = False,
                 fmt: str | None = None, log=None):
        super().__init__()
        if timeout <= 0:
            raise OptionError("--timeout must be > 0")
        self.url, self.timeout, self.reconnect, self.listen, self.fmt = url, timeout, reconnect, listen, fmt
        self.name = url
        self.log = log or (lambda line: print(line, file=sys.stderr))
        self.container = open_url(url, timeout, listen, fmt)
        self.stream = main_video(self.container)
        self.audio = bool(self.container.streams.audio)
        self._first = self._first_frame()  # the size and colour come with it
        self.info = _info_of(self.stream, self._first)
        _sdr_for_live(self)
        _say_deinterlaced(self)

    def _decoded(self):
        """The stream's frames as they decode; a packet that does not decode (a stream joined
        between keyframes, a datagram lost) is skipped and counted, not taken for a loss."""
        for packet in self.container.demux(self.stream):
            try:
                yield from packet.decode()
            except av.error.InvalidDataError:
                self.counters["undecodable"] = self.counters.get("undecodable", 0) + 1

    def _first_frame(self) -> av.VideoFrame:
        try:
            for frame in self._decoded():
                return frame
        except av.error.ExitError:
            raise InputError(f"{self.url}: no frame within {self.timeout:g} s") from None
        except av.error.FFmpegError as exc:
            raise InputError(f"{self.url}: cannot read ({_why(exc)})") from None
        raise InputError(f"{self.url}: the stream ended before its first frame")

    def __iter__(self) -> Iterator[Frame]:
        epoch, index = 0, 0
        pending = self._first
        while not self._stop.is_set():
            why = "the stream ended"
            try:
                frames = self._decoded()
                if pending is not None:
                    frames, pending = itertools.chain([pending], frames), None
                if self.info.interlaced:
                    frames = deinterlaced(frames, self.stream)
                while not self._stop.is_set():
                    frame = next(frames, None)
                    if frame is None:
                        break
                    self.counters["received"] += 1
                    yield Frame(decode_rgb(frame, self.hdr)[0], frame.pts, self.stream.time_base, index,
                                frame.duration, arrival=time.perf_counter(), epoch=epoch)
                    index += 1
            except av.error.ExitError:
                why = f"nothing for {self.timeout:g} s"
            except (av.error.FFmpegError, OSError) as exc:
                why = _why(exc)
            if self._stop.is_set():
                return
            self.counters["losses"] += 1
            self.container.close()
            if not self._reopen(why):
                return
            epoch += 1

    def _reopen(self, why: str) -> bool:
        """Reopen after a loss, backing off 1, 2, 4 ... 30 s; False when the attempts run out."""
        delay, attempt = 1.0, 0
        while not self._stop.is_set():
            if self.reconnect is not None and attempt >= self.reconnect:
                self.error = f"{self.url}: input lost ({why}); gave up after {attempt} reconnect attempt(s)"
                return False
            attempt += 1
            self.log(f"input lost ({why}); reconnecting to {self.url} in {delay:g} s (attempt {attempt})")
            if self._stop.wait(delay):
                return False
            try:
                self.container = open_url(self.url, self.timeout, self.listen, self.fmt)
                self.stream = main_video(self.container)
                self.counters["reconnects"] += 1
                self.log(f"reconnected to {self.url}")
                return True
            except InputError as exc:
                why = str(exc).split(": ", 1)[-1]
                delay = min(MAX_BACKOFF, delay * 2)
        return False


class CameraSource(Source):
    """A camera (index or /dev/videoN) through OpenCV: the driver's queue shortened to one frame and
    MJPG asked for (720p30 on USB cameras); timestamps are capture times in microseconds."""

    def __init__(self, device: str, size: tuple[int, int] | None = None, fps: float | None = None,
                 timeout: float = 5.0):
        super().__init__()
        import cv2
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        self.cv2, self.name, self.timeout = cv2, f"camera {device}", timeout
        self.cap = cv2.VideoCapture(int(device) if str(device).isdigit() else device)
        if not self.cap.isOpened():
            raise InputError(f"camera {device!r}: cannot open it (no such device, file or stream)")
        self.cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self.cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
        if size:
            self.cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            self.cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        if fps:
            self.cap.set(cv2.CAP_PROP_FPS, fps)
        ok, bgr = self.cap.read()
        if not ok:
            self.cap.release()
            raise InputError(f"camera {device!r}: opened, but it gives no frames")
        self._first = bgr
        rate = fps or self.cap.get(cv2.CAP_PROP_FPS) or 30.0
        self.info = VideoInfo(bgr.shape[1], bgr.shape[0], Fraction(rate).limit_denominator(1001),
                              Fraction(1, 1_000_000), 0, None, 0, Colour(1, 1, 1, 1), "bgr24")

    def __iter__(self) -> Iterator[Frame]:
        t0 = time.perf_counter()
        index, bgr = 0, self._first
        while not self._stop.is_set():
            if bgr is None:
                ok, bgr = self.cap.read()
                if not ok:
                    self.error = f"{self.name} stopped delivering frames"
                    return
            now = time.perf_counter()
            self.counters["received"] += 1
            rgb = np.ascontiguousarray(bgr[:, :, ::-1])
            yield Frame(rgb, int((now - t0) * 1_000_000), Fraction(1, 1_000_000), index, arrival=now)
            index, bgr = index + 1, None

    def close(self) -> None:
        super().close()
        self.cap.release()


def open_source(spec: str, *, live: bool = False, start: float = 0.0, duration: float | None = None,
                timeout: float = 10.0, reconnect: int | None = None, listen: bool = False,
                fmt: str | None = None, size: tuple[int, int] | None = None, fps: float | None = None,
                planar: bool = False, loop: bool = False) -> Source:
    """The source ``spec`` names: a network URL, a camera (an index or /dev/videoN), or a video file
    (offline, or paced at its own rate with ``live``)."""
    if is_url(spec) and not (scheme_of(spec) in ("http", "https") and not live):
        return StreamSource(spec, timeout, reconnect, listen, fmt)
    if spec.isdigit() or spec.startswith("/dev/video"):
        return CameraSource(spec, size, fps)
    if "://" in spec and not is_url(spec):
        raise InputError(f"{spec}: not a stream streamgan reads",
                         hint=f"URLs it reads: {', '.join(s + '://' for s in NETWORK_SCHEMES)}")
    source = FileSource(spec if is_url(spec) else Path(spec), start, duration, pace=live, planar=planar, loop=loop)
    if live:
        _sdr_for_live(source, source.reader)
        _say_deinterlaced(source)
    return source


def _sdr_for_live(source: Source, reader: VideoReader | None = None) -> None:
    """A live HDR input (PQ, HLG) reaches the model tone mapped to SDR BT.709 (hdr.py's default),
    and the output is SDR BT.709: ``source.hdr`` converts, ``source.info`` says so."""
    trc = source.info.colour.trc
    if not is_hdr(trc):
        return
    source.hdr = HdrConverter(trc)
    if reader is not None:
        reader.hdr = source.hdr
    source.info = dataclasses.replace(source.info, colour=NEW_CONTENT)
    source.note = describe(trc, "sdr", DEFAULT_TONEMAP)


def _say_deinterlaced(source: Source) -> None:
    """An interlaced live input is deinterlaced (its reader's or ``StreamSource``'s frames go
    through bwdif, a frame later): ``source.note`` says so."""
    if source.info.interlaced:
        source.note = "; ".join(filter(None, [source.note, f"interlaced input ({source.info.interlaced}): "
                                                           "deinterlaced (bwdif; one frame of delay)"]))
