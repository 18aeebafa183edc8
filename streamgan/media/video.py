"""PyAV video sources and sinks: RGB frames with their timestamps (interlaced video made
progressive); the other streams (audio, subtitles, cover art, attachments) remuxed untouched, or
re-encoded where the output container cannot hold them; the picture's shape and the tags kept."""

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import InputError, OutputError
from ..options import CRF, DEFAULT_PRESET, ENCODER_OF, Encoder
from .urls import is_url, stream_options

VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts", ".mts", ".flv", ".wmv", ".mpg",
                  ".mpeg", ".gif", ".y4m", ".3gp"}


@dataclass
class Frame:
    """One decoded frame: RGB uint8 (H, W, 3) with its presentation time."""

    rgb: np.ndarray | None
    pts: int | None
    time_base: Fraction | None
    index: int
    duration: int | None = None
    planes: tuple[np.ndarray, ...] | None = None  # the decoded Y, U, V planes (readers made with planar=True)
    arrival: float = 0.0  # perf_counter when the source handed it over (live latency starts here)
    epoch: int = 0  # reconnections of a live source before it (its timestamps restart at each)
    out_time: float | None = None  # seconds on a live output's clock (pipeline.Clock)
    residual: np.ndarray | None = None  # an HDR frame's SDR rounding, given back on the way out (--hdr keep)


# AVColorSpace -> swscale's coefficient sets (BT.601 is swscale's default for anything else)
_SWS_SPACE = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}
_UNSPECIFIED = 2


@dataclass(frozen=True)
class Colour:
    """A stream's YUV <-> RGB convention, as FFmpeg numbers it: matrix (AVColorSpace), range
    (1 limited, 2 full, 0 unknown), primaries and transfer (2 = unspecified)."""

    space: int = _UNSPECIFIED
    range: int = 0
    primaries: int = _UNSPECIFIED
    trc: int = _UNSPECIFIED

    @property
    def sws_space(self) -> int:
        return _SWS_SPACE.get(self.space, 5)

    @property
    def sws_range(self) -> int:
        return self.range if self.range in (1, 2) else 1

    def explicit(self) -> "Colour":
        """The same convention with the matrix and range it is decoded with written out (an untagged
        stream is converted with BT.601 limited range; its output is tagged so)."""
        space = self.space if self.space in _SWS_SPACE else 6
        return Colour(space, self.sws_range, self.primaries, self.trc)

    @classmethod
    def of(cls, frame) -> "Colour":
        return cls(int(frame.colorspace), int(frame.color_range), int(frame.color_primaries), int(frame.color_trc))


# planar formats the YUV frame path reads and writes as they are: name -> (bits, (chroma row shift, column shift))
PLANAR_FORMATS = {"yuv420p": (8, (1, 1)), "yuv422p": (8, (0, 1)), "yuv444p": (8, (0, 0)),
                  "yuv420p10le": (10, (1, 1)), "yuv422p10le": (10, (0, 1)), "yuv444p10le": (10, (0, 0)),
                  # FFmpeg's full-range (JPEG) names of the same layouts
                  "yuvj420p": (8, (1, 1)), "yuvj422p": (8, (0, 1)), "yuvj444p": (8, (0, 0))}


def same_layout(a: str, b: str) -> bool:
    """Planar formats with the same planes (yuvj420p is yuv420p tagged full range)."""
    return a.replace("yuvj", "yuv") == b.replace("yuvj", "yuv")
_MATRIX_NAMES = {1: "bt709", 5: "bt601", 6: "bt601", 9: "bt2020", 10: "bt2020"}


def matrix_name(colour: "Colour") -> str:
    """The kernels' name for a stream's matrix (untagged: BT.601, as swscale decodes it)."""
    return _MATRIX_NAMES.get(colour.explicit().space, "bt601")


def planes_of(frame: av.VideoFrame) -> tuple[np.ndarray, ...]:
    """Views of a planar frame's Y, U, V planes, (rows, columns) of uint8 or uint16 samples."""
    bits, (sh, sw) = PLANAR_FORMATS[frame.format.name]
    dt = np.uint8 if bits == 8 else np.uint16
    out = []
    for i, p in enumerate(frame.planes):
        h = frame.height if i == 0 else -(-frame.height // (1 << sh))
        w = frame.width if i == 0 else -(-frame.width // (1 << sw))
        out.append(np.frombuffer(p, dt).reshape(h, p.line_size // dt().itemsize)[:, :w])
    return tuple(out)


NEW_CONTENT = Colour(1, 1, 1, 1)  # BT.709, limited range: what a sink without a source encodes
# exact rounding (+1.4 ms a 1080p frame over swscale's default)
_ROUNDED = av.video.reformatter.Interpolation.BILINEAR | av.video.reformatter.Interpolation.ACCURATE_RND
# decoding to RGB also interpolates chroma across (as the frame's chroma location sites it: H.264's
# "left" by default); without it swscale repeats a pair's sample and its packed-RGB output runs
# about 2 codes dark (measured on a photograph: 39 dB from the exact conversion, 73 dB with it;
# +2.7 ms a 1080p frame, 2-core EPYC). Not for rgb48le: FFmpeg 8.1's swscale writes zeros there
_DECODE = _ROUNDED | av.video.reformatter.Interpolation.FULL_CHR_H_INT


def to_rgb(frame: av.VideoFrame, fmt: str = "rgb24") -> np.ndarray:
    """RGB of a decoded frame (uint8, or uint16 with ``fmt`` rgb48le), converted with the frame's
    own matrix and range; its transfer and primaries are left as they are (code values)."""
    if frame.format.name == fmt:
        return frame.to_ndarray()
    c = Colour.of(frame)
    return frame.reformat(format=fmt, src_colorspace=c.sws_space, src_color_range=c.sws_range,
                          interpolation=_DECODE if fmt == "rgb24" else _ROUNDED).to_ndarray()


def decode_rgb(frame: av.VideoFrame, hdr=None, keep_residual: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """A decoded frame as the model takes it: RGB uint8; an HDR frame through ``hdr`` (an
    hdr.HdrConverter: tone mapped to SDR BT.709), with its rounding when ``keep_residual``."""
    if hdr is None:
        return to_rgb(frame), None
    return hdr.to_sdr(to_rgb(frame, "rgb48le"), keep_residual)


@dataclass
class VideoInfo:
    width: int
    height: int
    rate: Fraction | None
    time_base: Fraction
    frames: int  # from the container header; 0 when unknown
    duration: float | None
    rotation: int = 0
    colour: Colour = Colour()
    pix_fmt: str = ""
    end: float | None = None  # when the video stream ends (s), as the header or index says; None: not said
    container_end: float | None = None  # when the file's longest stream ends, as the container says
    format: str = ""  # the demuxer's name
    audio: bool = False  # the file has an audio stream
    codec: str = ""  # the video decoder's name
    sar: Fraction | None = None  # the pixels' shape (width:height) where not square: anamorphic video
    interlaced: str = ""  # "top field first" / "bottom field first" for interlaced video, else ""
    tags: dict = field(default_factory=dict)  # the file's tags (title, location, make, ...) an output keeps
    video_tags: dict = field(default_factory=dict)  # the picture's stream tags (language, timecode, ...)


# tags that describe a file rather than its content: an output is a new file and writes its own
# (what the ffmpeg command leaves out when it copies a file's tags); an encoded stream's encoder
ENCODED_TAGS = {"encoder", "duration"}  # of a stream encoded anew: its encoder and length are the new one's
FILE_TAGS = {"creation_time", "company_name", "product_name", "product_version", *ENCODED_TAGS}


def carried_tags(tags, leave: set[str]) -> dict:
    """``tags`` (a container's or a stream's metadata) without those named in ``leave`` (any case)."""
    return {k: v for k, v in dict(tags).items() if k.lower() not in leave}


def pixel_shape(stream) -> Fraction | None:
    """A video stream's sample aspect ratio (the container's, else the codec's) where its pixels
    are not square; None for square or unknown."""
    sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    return Fraction(sar) if sar and sar != 1 else None


# AVFieldOrder -> which field comes first (1 is progressive, 0 unknown)
_FIELD_ORDER = {2: "top field first", 3: "bottom field first", 4: "top field first", 5: "bottom field first"}


def interlacing(stream, frame: av.VideoFrame | None) -> str:
    """How a stream is interlaced, from its codec's field order and its first frame ("" where
    progressive)."""
    order = _FIELD_ORDER.get(int(stream.codec_context.field_order or 0), "")
    if not order and frame is not None and frame.interlaced_frame:
        order = "interlaced"
    return order


def in_order(c: av.container.InputContainer, s):
    """The frames of an AVI stream, timed in order from the first packet read (the file's start, or
    the keyframe a seek found): AVI stores decoding times only, and a stream with B-frames (H.264,
    DivX/Xvid) decodes with the times of the packets that happened to complete each frame (1, 4,
    3, 5, 2, ...: the encoder refused them). A frame each tick; an empty packet (a frame the
    capture repeated) holds the picture one tick more."""
    tick = max(1, round(1 / (float(s.average_rate or s.guessed_rate or 30) * s.time_base)))
    at = None
    for packet in c.demux(s):
        if at is None and packet.dts is not None:
            at = packet.dts
        if packet.size == 0 and packet.dts is not None:
            at += tick
            continue
        for frame in packet.decode():
            frame.pts, at = at, at + tick
            yield frame


class Onward:
    """Timestamps that go back (parts of recordings joined, a broadcast's discontinuity: a muxer
    refuses them) moved on, per stream, to just after the last: each part then follows the one
    before. ``jumps``: how many times they went back."""

    def __init__(self):
        self.shift, self.last, self.jumps = {}, {}, 0

    def frames(self, frames, tick: int):
        """Decoded frames of one stream, presentation times increasing (``tick``: a frame's
        period in its time base, where a frame says none)."""
        for f in frames:
            if f.pts is not None:
                f.pts = self._on(-1, f.pts, f.duration or tick)
            yield f

    def packets(self, packets):
        """Demuxed packets of several streams, each stream's decoding times increasing."""
        for p in packets:
            ts = p.dts if p.dts is not None else p.pts
            if ts is not None and p.size:
                moved = self._on(p.stream.index, ts, p.duration or 1) - ts
                p.dts = None if p.dts is None else p.dts + moved
                p.pts = None if p.pts is None else p.pts + moved
            yield p

    def _on(self, key, ts: int, step: int) -> int:
        shift, last = self.shift.get(key, 0), self.last.get(key)
        if last is not None and ts + shift <= last:
            shift = self.shift[key] = last + step - ts
            self.jumps += 1
        self.last[key] = ts + shift
        return ts + shift


# FFmpeg's bwdif: a progressive frame for each frame (the frame rate and timestamps kept), only
# frames flagged interlaced deinterlaced (progressive stretches of mixed content pass untouched)
DEINTERLACE = "mode=send_frame:parity=auto:deint=interlaced"


def deinterlaced(frames, stream):
    """``frames`` (decoded from ``stream``) made progressive by bwdif, one out for each in, in
    order: each is handed on once the frame after it is in (the last at the end)."""
    graph = av.filter.Graph()
    graph.link_nodes(graph.add_buffer(template=stream), graph.add("bwdif", DEINTERLACE),
                     graph.add("buffersink")).configure()

    def ready():
        while True:
            try:
                yield graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
    for frame in frames:
        graph.push(frame)
        yield from ready()
    graph.push(None)
    yield from ready()


def _tag_seconds(text: str | None) -> float | None:
    """Matroska's per-track DURATION tag ('HH:MM:SS.nnnnnnnnn') in seconds."""
    try:
        h, m, sec = (text or "").split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    except ValueError:
        return None


def _header_end(c: av.container.InputContainer, s) -> float | None:
    """When the video stream should end, by what the file itself claims: the stream's duration and
    frame count (an AVI's index may be rebuilt from what is left, its header count is not), or
    Matroska's DURATION tag. The latest claim: a cut-off file keeps the claims of the whole one."""
    start = float(s.start_time * s.time_base) if s.start_time is not None else 0.0
    claims = []
    if s.duration:
        claims.append(start + float(s.duration * s.time_base))
    rate = s.average_rate or s.guessed_rate
    # (an MP4's sample count takes in the frames its edit list leaves out: a copy cut at a frame
    # between keyframes, as `ffmpeg -ss 0.7 -c copy` makes one, holds the GOP before the cut)
    if s.frames and rate and not (s.duration and "mp4" in c.format.name):
        claims.append(start + s.frames / float(rate))
    tag = _tag_seconds(s.metadata.get("DURATION"))
    if tag:
        claims.append(start + tag)
    return max(claims) if claims else None


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def muxer_for(path: Path) -> str | None:
    """The FFmpeg muxer that writes files named like ``path`` (by suffix), None if there is none."""
    suffix = path.suffix.lower().lstrip(".")
    if not suffix:
        return None
    for name in sorted(av.formats_available):
        try:
            if suffix in av.ContainerFormat(name, "w").extensions:
                return name
        except (ValueError, av.error.FFmpegError):
            continue
    return None


URL_TIMEOUT = 10.0  # seconds a file read over HTTP(S) may wait to open and for each read


def open_input(path: Path | str) -> av.container.InputContainer:
    """Open a media file (or one served over HTTP(S), given as its URL) with one-line errors for
    the usual mistakes."""
    if is_url(str(path)):
        try:
            container = av.open(str(path), options=stream_options(str(path), URL_TIMEOUT),
                                timeout=(URL_TIMEOUT, URL_TIMEOUT))
        except (av.error.FFmpegError, OSError) as exc:
            raise InputError(f"{path}: cannot open ({getattr(exc, 'strerror', None) or exc})") from None
    else:
        if not path.exists():
            raise InputError(f"{path}: no such file")
        if path.is_file() and path.stat().st_size == 0:
            raise InputError(f"{path}: empty file")
        try:
            container = av.open(str(path))
        except (av.error.InvalidDataError, av.error.FFmpegError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: not a readable video ({exc.__class__.__name__})") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{path}: the file has no video stream")
    return container


def main_video(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    """The container's picture: FFmpeg's best video stream (several frames, the highest rate; not
    cover art), which need not be the first (an MKV can carry its poster as a one-frame MJPEG
    stream before the video)."""
    return container.streams.best("video") or container.streams.video[0]


def probe(path: Path | str) -> VideoInfo:
    with open_input(path) as c:
        s = main_video(c)
        cc = s.codec_context
        dur = float(s.duration * s.time_base) if s.duration else (
            c.duration / av.time_base if c.duration else None)
        rotation, colour, pix_fmt, first = 0, Colour(), "", None
        try:
            for first in c.decode(s):
                rotation, colour, pix_fmt = int(first.rotation or 0), Colour.of(first), first.format.name
                break
        except av.error.FFmpegError:
            pass
        container_end = (c.duration + (c.start_time or 0)) / av.time_base if c.duration else None
        return VideoInfo(cc.width, cc.height, s.average_rate or s.guessed_rate, s.time_base, s.frames or 0,
                         dur, rotation, colour, pix_fmt, _header_end(c, s), container_end, c.format.name,
                         bool(c.streams.audio), cc.name, pixel_shape(s), interlacing(s, first),
                         carried_tags(c.metadata, FILE_TAGS), carried_tags(s.metadata, ENCODED_TAGS))


class VideoReader:
    """Iterate ``Frame``s of the first video stream from ``start`` seconds for ``duration`` seconds.

    Decoding uses frame+slice threads. A decode error ends iteration; ``error`` then says why.
    ``planar``: frames carry views of their YUV planes (they keep the decoded frame alive) and no
    RGB (the YUV frame path converts on the GPU); only for inputs whose pix_fmt is in PLANAR_FORMATS.
    """

    def __init__(self, path: Path, start: float = 0.0, duration: float | None = None, threads: bool = True,
                 planar: bool = False):
        url = is_url(str(path))  # a file served over HTTP(S) keeps its URL (a Path would mangle it)
        self.path, self.start, self.duration, self.planar = (str(path) if url else Path(path)), start, duration, planar
        self.info = probe(self.path)
        self.threads = threads
        self.error: str | None = None
        self.decoded = 0
        self.end_time: float | None = None  # where the frames decoded so far end (s)
        self.hdr = None  # an hdr.HdrConverter: HDR frames are tone mapped for the model
        self.keep_residual = False  # ... and keep their rounding for the way back (--hdr keep)
        self.deinterlace = True  # interlaced video is made progressive (bwdif) before the model
        self.onward = Onward()  # where the last iteration's times went back, and how they were moved on
        self.resized: tuple[int, int, int] | None = None  # (frame, width, height) where the size first changed

    def _frames(self, c: av.container.InputContainer, s, onward: Onward | None = None):
        """The decoded frames of ``s``, deinterlaced where the video is interlaced, their times
        kept increasing by ``onward``."""
        frames = in_order(c, s) if self.info.format == "avi" else c.decode(s)
        if onward is not None:
            frames = onward.frames(frames, max(1, round(self.frame_interval / s.time_base)))
        return deinterlaced(frames, s) if self.deinterlace and self.info.interlaced else frames

    @property
    def frame_interval(self) -> float:
        return 1.0 / float(self.info.rate) if self.info.rate else 1 / 30

    def expected_frames(self) -> int:
        """Frames the header promises for the whole file (0 = unknown); only meaningful without a segment."""
        if self.start or self.duration is not None:
            return 0
        return self.info.frames

    def truncation(self) -> tuple[int | None, str] | None:
        """After iterating: (frames lost or None when unknown, why) if the input stopped before
        what its own header, index or segment promised; None if it delivered all of it.

        The end of the decoded frames is compared with the latest end the file claims for its
        video (stream duration, frame count, Matroska's track DURATION; 2.5 frames of slack), or,
        where it claims none, with the container's duration when no packet of any stream lies
        past the video's end (a cut stops every interleaved stream at once; a video that is just
        shorter than its audio is not cut). An MPEG-TS file, which claims no length, is cut when it
        ends inside a 188-byte packet."""
        if self.error:
            return None, self.error
        info, slack = self.info, 2.5 * self.frame_interval
        wanted = None if self.duration is None else self.start + self.duration
        claimed = info.end
        if claimed is None and info.container_end is not None and self.end_time is not None:
            claimed = info.container_end if not self._content_after(self.end_time + slack) else None
        if claimed is not None and self.end_time is not None:
            target = claimed if wanted is None else min(claimed, wanted)
            if target - self.end_time > slack:
                lost = round((target - self.end_time) / self.frame_interval)
                return lost, f"the file says its video lasts until {claimed:.2f} s, decoding stopped at " \
                             f"{self.end_time:.2f} s"
        if info.format == "mpegts" and isinstance(self.path, Path) and self.path.is_file():
            size = self.path.stat().st_size
            if size % 188 and size % 192:
                return None, f"it ends inside a transport-stream packet ({size} bytes)"
        if claimed is None and self.decoded < self.expected_frames():
            return self.expected_frames() - self.decoded, \
                f"the header promises {self.expected_frames()} frames, {self.decoded} decoded"
        return None

    def _content_after(self, t: float) -> bool:
        """Whether any packet of the file's other streams starts after ``t`` seconds."""
        with open_input(self.path) as c:
            others = [s for s in c.streams if s.type != "video"]
            if not others:
                return False
            try:
                c.seek(int(t * av.time_base), backward=True)
                for pkt in c.demux(*others):
                    if pkt.pts is not None and float(pkt.pts * pkt.time_base) > t:
                        return True
            except av.error.FFmpegError:
                pass
        return False

    def first_frame(self) -> av.VideoFrame | None:
        """The segment's first decoded frame (None where none decodes)."""
        try:
            with open_input(self.path) as c:
                s = main_video(c)
                if self.start > 0:
                    c.seek(int(self.start / s.time_base), stream=s, backward=True)
                for fr in self._frames(c, s):
                    if fr.pts is None or float(fr.pts * s.time_base) >= self.start - 1e-6:
                        return fr
        except av.error.FFmpegError:
            pass
        return None

    def spread(self, count: int, decode_at_most: int = 30) -> list[np.ndarray]:
        """``count`` RGB frames spread over the segment (near k/(count+1) of it, k = 1..count), as
        the model takes them: each found by a seek to the keyframe before its point and decoding on
        towards it, at most ``decode_at_most`` frames (content to check, not exact positions).
        Fewer where the file cannot seek or its length is unknown."""
        span = self.duration if self.duration is not None else \
            (self.info.end or self.info.container_end or self.info.duration or 0) - self.start
        if not span > 0 or isinstance(self.path, str):
            return []
        found = []
        try:
            with open_input(self.path) as c:
                s = main_video(c)
                for k in range(1, count + 1):
                    t = self.start + span * k / (count + 1)
                    c.seek(int(t / s.time_base), stream=s, backward=True)
                    last = None
                    for i, fr in enumerate(self._frames(c, s)):
                        last = fr
                        if i + 1 >= decode_at_most or (fr.pts is not None and float(fr.pts * s.time_base) >= t):
                            break
                    if last is not None:
                        found.append(decode_rgb(last, self.hdr)[0])
        except av.error.FFmpegError:
            pass
        return found

    def __iter__(self):
        end = None if self.duration is None else self.start + self.duration
        self.onward = Onward()  # (each iteration from its start: a looped file's laps are the source's to time)
        with open_input(self.path) as c:
            s = main_video(c)
            if self.threads:
                s.thread_type = "AUTO"
            if self.start > 0:
                c.seek(int(self.start / s.time_base), stream=s, backward=True)
            try:
                for fr in self._frames(c, s, self.onward):
                    t = None if fr.pts is None else float(fr.pts * s.time_base)
                    if t is not None and t < self.start - 1e-6:
                        continue
                    if end is not None and t is not None and t >= end - 1e-6:
                        break
                    if (fr.width, fr.height) != (self.info.width, self.info.height):  # a joined part of another
                        self.resized = self.resized or (self.decoded, fr.width, fr.height)  # size: scaled to the
                        fr = fr.reformat(width=self.info.width, height=self.info.height)  # first's, as ffmpeg does
                    if self.planar and fr.format.name in PLANAR_FORMATS:
                        yield Frame(None, fr.pts, s.time_base, self.decoded, fr.duration, planes=planes_of(fr))
                    else:
                        rgb, residual = decode_rgb(fr, self.hdr, self.keep_residual)
                        yield Frame(rgb, fr.pts, s.time_base, self.decoded, fr.duration, residual=residual)
                    self.decoded += 1
                    if t is not None:
                        ends = t + (float(fr.duration * s.time_base) if fr.duration else self.frame_interval)
                        self.end_time = ends if self.end_time is None else max(self.end_time, ends)
            except av.error.FFmpegError as exc:
                self.error = f"decode error after {self.decoded} frames: {exc}"


def _pix_fmt(codec: str, width: int, height: int, requested: str | None, source: str = "",
             min_bits: int = 8) -> tuple[str, str | None]:
    """The encoder's pixel format: ``requested``, else the source's chroma layout and bit depth
    (10 bits and more -> 10; at least ``min_bits``) where the codec has them, else the nearest it
    has, and a note saying so."""
    if requested:
        return requested, None
    formats = [f.name for f in (av.codec.Codec(codec, "w").video_formats or [])]
    if formats and "yuv420p" not in formats:  # an RGB encoder (libx264rgb, png)
        return ("rgb24" if "rgb24" in formats else formats[0]), None
    chroma = next((c for c in ("420", "422", "444") if c in source), {"nv16": "422", "nv24": "444"}.get(source, "420"))
    try:
        deep = bool(source) and max(c.bits for c in av.VideoFormat(source).components) > 8
    except (ValueError, av.error.FFmpegError):
        deep = False
    bits = max(min_bits, 10 if deep else 8)
    if (width % 2 or height % 2) and chroma != "444":
        want, note = f"yuv444p{'10le' if bits > 8 else ''}", \
            f"odd size {width}x{height}: encoding yuv444p to keep it (4:2:0 needs even sides)"
    else:
        want, note = f"yuv{chroma}p{'10le' if bits > 8 else ''}", None
    if not formats or want in formats:
        return want, note
    fallback = next(f for f in (f"yuv{chroma}p", "yuv420p10le" if bits > 8 else "yuv420p", "yuv420p")
                    if f in formats)
    return fallback, f"{codec} cannot encode {want} (the input's layout): encoding {fallback}"


class VideoWriter:
    """Encode RGB frames (their source pts kept, so VFR stays VFR) and remux the input's other
    streams (``Remuxer``: audio, subtitles, cover art) interleaved as the video advances.

    ``path`` is a file or a network URL (``fmt`` names the container then: flv, mpegts, rtsp;
    ``options`` are the container's). A live source's ``info`` (size, rate, colour) may be given
    without a reader to remux from, and a ``time_base`` for the timestamps written."""

    def __init__(self, path: Path | str, source: VideoReader | None, width: int, height: int, *,
                 encoder: Encoder | None = None, rate: Fraction | None = None, copy_streams: bool = True,
                 info: VideoInfo | None = None, time_base: Fraction | None = None, fmt: str | None = None,
                 options: dict | None = None, colour: Colour | None = None, hdr=None):
        self.path = path
        self.notes: list[str] = []
        enc = encoder or Encoder(crf=CRF["libx264"][2], preset=DEFAULT_PRESET)
        codec = enc.codec
        info = source.info if source else info
        self.rate = Fraction(rate).limit_denominator(1001) if rate else (
            info.rate if info and info.rate else Fraction(30))
        self.time_base = time_base or (info.time_base if info else 1 / self.rate)
        try:
            self.out = av.open(str(path), "w", format=fmt, options=options or {})
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise OutputError(f"{path}: cannot write here ({getattr(exc, 'strerror', None) or exc})") from None
        # a stream goes out 4:2:0 8-bit, what every player and server takes; a file keeps the input's layout
        fmt, note = _pix_fmt(codec, width, height, enc.pix_fmt, info.pix_fmt if info and not enc.live else "",
                             min_bits=10 if hdr is not None else 8)
        if note:
            self.notes.append(note)
        try:
            self.stream = self.out.add_stream(codec, rate=self.rate)
        except (av.error.FFmpegError, ValueError) as exc:
            self.out.close()
            raise OutputError(f"unknown or unavailable codec {codec!r} ({exc})") from None
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, fmt
        self.colour = colour or (info.colour.explicit() if info else NEW_CONTENT)
        self.hdr = hdr  # an hdr.HdrConverter: frames are mapped back to the input's HDR (--hdr keep)
        self.yuv = fmt.startswith(("yuv", "nv"))
        if self.yuv:  # encode with the source's matrix and range, and say so in the stream
            cc = self.stream.codec_context
            cc.colorspace, cc.color_range = self.colour.space, self.colour.range
            cc.color_primaries, cc.color_trc = self.colour.primaries, self.colour.trc
        self.stream.time_base = self.time_base
        self.stream.codec_context.time_base = self.time_base
        options = enc.options
        if enc.live:  # a joining player starts within ~2 s; the bitrate is the one asked for
            self.stream.codec_context.gop_size = max(1, round(2 * float(self.rate)))
            if enc.bitrate:
                self.stream.codec_context.bit_rate = enc.bitrate
        elif codec in ("libx264", "libx264rgb") and enc.preset == "medium":
            # x264 encodes a frame once the 40 frames after it are in (medium's rate-control
            # lookahead): the last 40 are encoded after the model has finished, on every run.
            # 20 (faster's) halves that tail (0.47 -> 0.21 s at 640x360 on 2 cores), with the
            # same size and PSNR within 0.3% and 0.02 dB on 60- and 240-frame stylised clips.
            options["x264-params"] = "rc-lookahead=20"
        if options:
            self.stream.options = options
        if info and info.rotation:
            self.stream.set_display_rotation(info.rotation)
        if info and info.sar:  # anamorphic video keeps its pixel shape (its display size)
            self.stream.codec_context.sample_aspect_ratio = info.sar
        if info:  # the file's tags (title, place, camera) and the picture's (language, a camera's timecode)
            self.out.metadata.update(info.tags)
            self.stream.metadata.update(info.video_tags)
        self.start_pts = None  # the output's zero on the input's clock: its first frame's, or
        self._remux = None
        if source and copy_streams:
            try:
                self._remux = Remuxer(source, self.out)
            except OutputError:
                self.out.close()
                raise
            self.notes += self._remux.notes
            self.start_pts = round(self._remux.origin / self.time_base)  # ... the streams' remuxed beside it
        self.frames = 0

    def frame_of(self, rgb: np.ndarray, residual: np.ndarray | None = None) -> av.VideoFrame:
        """An RGB picture as the frame this stream encodes (its pix_fmt, matrix and range)."""
        c = self.colour
        if self.hdr is not None:
            vf = av.VideoFrame.from_ndarray(self.hdr.to_hdr(rgb, residual), format="rgb48le")
        else:
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        if self.yuv:  # RGB -> YUV with the right coefficients (the encoder's default is BT.601);
            # the pixels are already in the stream's transfer and primaries: naming them here
            # would make swscale convert between them (and from "unspecified": 400 ms a 720p frame)
            vf = vf.reformat(format=self.stream.pix_fmt, dst_colorspace=c.sws_space, dst_color_range=c.range,
                             interpolation=_ROUNDED)
            vf.colorspace = c.space
        vf.color_primaries, vf.color_trc = c.primaries, c.trc
        return vf

    def write(self, rgb: np.ndarray | tuple[np.ndarray, ...], pts: int | None, duration: int | None = None,
              residual: np.ndarray | None = None) -> None:
        """Encode one frame: RGB (H, W, 3), or a tuple of planes already in the stream's pix_fmt,
        matrix and range (the YUV frame path: no conversion here). ``residual``: the input frame's
        SDR rounding (--hdr keep)."""
        if self.start_pts is None or (not self.frames and pts is not None and pts < self.start_pts):
            self.start_pts = pts or 0
        c = self.colour
        if isinstance(rgb, tuple):
            vf = av.VideoFrame(self.stream.width, self.stream.height, self.stream.pix_fmt)
            for dst, src in zip(planes_of(vf), rgb):
                dst[...] = src
            vf.colorspace, vf.color_range = c.space, c.range
        else:
            vf = self.frame_of(rgb, residual)
        vf.pts = (pts - self.start_pts) if pts is not None else self.frames
        vf.time_base = self.time_base
        if duration:
            vf.duration = duration
        for pkt in self.stream.encode(vf):
            self.out.mux(pkt)
        self.frames += 1
        if self._remux is not None:
            self._remux.until(float(vf.pts * self.time_base) + 0.5)

    def close(self) -> None:
        for pkt in self.stream.encode():
            self.out.mux(pkt)
        if self._remux is not None:
            self._remux.until(None)
            self._remux.finish()
            self._remux.close()
        self.out.close()

    def abort(self) -> None:
        if self._remux is not None:
            self._remux.close()
        self.out.close()


def _audio_encoder(out: av.container.OutputContainer) -> str | None:
    """The encoder of ``out``'s own audio codec, None where it holds no audio."""
    own = out.default_audio_codec
    for name in (ENCODER_OF.get(own), own):
        try:
            if name and name != "none" and av.codec.Codec(name, "w").type == "audio":
                return name
        except (ValueError, av.error.FFmpegError):
            continue
    return None


def _text_subtitle_encoder(out: av.container.OutputContainer, source) -> str | None:
    """The text subtitle format ``out`` holds for ``source``'s text subtitles (SubRip, MP4's
    mov_text, WebVTT; PyAV encodes text to text only), None where it holds none or they are bitmaps."""
    if not source.codec_context.codec.text_sub:
        return None
    held = out.supported_codecs
    return next((c for c in ("subrip", "mov_text", "webvtt") if c in held), None)


def _subtitle_stream(out: av.container.OutputContainer, codec: str, source):
    """A stream of the text subtitle ``codec`` in ``out`` for ``source``'s subtitles: text encoders
    take the cues' styles from the decoder's (ASS) header, known once it is open."""
    stream = out.add_stream(codec)
    stream.time_base = source.time_base
    if not source.codec_context.is_open:
        source.codec_context.open()
    stream.codec_context.subtitle_header = source.codec_context.subtitle_header or b""
    return stream


def _audio_stream(out: av.container.OutputContainer, codec: str, source) -> av.audio.AudioStream:
    """A stream of ``codec`` in ``out`` for ``source``'s audio: its channels, and its rate where the
    encoder takes it (else 48 kHz, or the encoder's highest); PyAV resamples what goes in."""
    rates = av.codec.Codec(codec, "w").audio_rates
    rate = source.rate if not rates or source.rate in rates else (48000 if 48000 in rates else max(rates))
    channels = source.layout.nb_channels
    options = {"mapping_family": "1"} if codec == "libopus" and channels > 2 else {}  # (surround Opus)
    stream = out.add_stream(codec, rate=rate, options=options)
    stream.layout = source.layout
    return stream


class Remuxer:
    """The source's streams besides its picture (audio, subtitles, cover art, attachments such as
    a Matroska file's subtitle fonts), muxed up to a given time, shifted by the start. A stream the
    output's container cannot hold is re-encoded, with a note: audio to the container's own codec
    (AAC into .webm: Opus), text subtitles to a text format it holds (MP4's mov_text into .mkv:
    SubRip); cover art and attachments are left out with a note, and so are data streams (a
    camera's telemetry: no muxer takes them back); any other stream it cannot hold is an error
    (nothing left out unsaid)."""

    def __init__(self, source, out: av.container.OutputContainer):
        """``source``: what the video was read with (a ``VideoReader``: its path, start and
        duration), or a file's path, all of it."""
        if isinstance(source, (str, Path)):
            path, start, duration = source, 0.0, None
        else:
            path, start, duration = source.path, source.start, source.duration
        self.inp, self.out = open_input(path), out
        self.start, self.end = start, (None if duration is None else start + duration)
        # the output's zero on the input's clock: the segment's start, else where the file's earliest
        # stream starts (a video that starts after its audio keeps its place against it; the ffmpeg
        # command's default too)
        self.origin = start if start > 0 else (self.inp.start_time or 0) / av.time_base
        picture = main_video(self.inp).index  # (translated: the writer's own stream)
        streams = [s for s in self.inp.streams if s.type in ("audio", "subtitle", "video") and s.index != picture]
        self.map, self.coded, self.notes = {}, {}, []  # coded: input index -> the stream it is re-encoded into
        data = [s.metadata.get("handler_name") or "data" for s in self.inp.streams
                if s.type == "data" and "timecode" not in s.metadata]  # (a timecode goes with the picture's tags)
        if data:
            self.notes.append(f"the input's data streams ({', '.join(data)}) are left out")
        attachments = self.inp.streams.attachments  # (no packets: the file is the stream's header)
        if attachments and out.format.name == "matroska":  # (the one muxer that holds them)
            for s in attachments:
                out.add_stream_from_template(s).metadata.update(s.metadata)  # (its file name and type)
        elif attachments:
            self.notes.append(f"the input's attachments ({', '.join(s.name or '?' for s in attachments)}) are "
                              f"left out: {out.format.name} cannot hold them (write .mkv)")
        for s in list(streams):
            name, kind = s.codec_context.name, s.type  # (read before the input closes: PyAV crashes after)
            try:
                self.map[s.index] = out.add_stream_from_template(s)
                self.map[s.index].disposition = s.disposition  # (a cover stays a cover)
                self.map[s.index].metadata.update(carried_tags(s.metadata, {"duration"}))  # (its language)
                continue
            except (ValueError, av.error.FFmpegError):
                pass
            fmt = out.format.name
            if kind == "video":  # another picture (cover art): kept where the container holds it
                streams.remove(s)
                self.notes.append(f"the input's other picture ({name}: cover art, a poster) is left out: {fmt} "
                                  "cannot hold it")
                continue
            audio = kind == "audio"
            codec = _audio_encoder(out) if audio else _text_subtitle_encoder(out, s)
            if codec is None:
                self.inp.close()
                raise OutputError(f"the output ({fmt}) cannot hold the input's {name} {kind} stream",
                                  hint=f"write .{'mkv' if fmt != 'matroska' else 'mp4'} instead")
            self.map[s.index] = self.coded[s.index] = (_audio_stream if audio else _subtitle_stream)(out, codec, s)
            self.map[s.index].metadata.update(carried_tags(s.metadata, ENCODED_TAGS))
            self.notes.append(f"{'audio' if audio else 'subtitles'}: {name} re-encoded as {codec} ({fmt} cannot "
                              f"hold {name})")
        if self.start > 0 and streams:
            self._seek(next((x for x in streams if x.type == "audio"), None))
        self.packets = Onward().packets(self.inp.demux(*streams)) if streams else iter(())
        self.pending = None

    def _seek(self, sound) -> None:
        """To the segment's start: by the ``sound`` stream where there is one (seeking by the
        picture's keyframes skips the sound before the first of them, in a file whose picture starts
        late), else as the container seeks."""
        if sound is not None:
            try:
                return self.inp.seek(int(self.start / sound.time_base), backward=True, stream=sound)
            except av.error.FFmpegError:
                pass
        self.inp.seek(int(self.start * av.time_base), backward=True)

    def until(self, t: float | None) -> None:
        while True:
            pkt = self.pending or next(self.packets, None)
            self.pending = None
            if pkt is None:
                return
            if pkt.size == 0:
                continue
            ts = pkt.pts if pkt.pts is not None else pkt.dts
            pt = None if ts is None else float(ts * pkt.time_base)
            if pt is not None and t is not None and pt > t:
                self.pending = pkt
                return
            before = self.start > 0 and pt is not None and pt < self.start - 1e-3
            after = self.end is not None and pt is not None and pt >= self.end
            if before or after:
                continue
            shift = int(round(self.origin / pkt.time_base))
            if pkt.pts is not None:
                pkt.pts -= shift
            if pkt.dts is not None:
                pkt.dts -= shift
            coded = self.coded.get(pkt.stream.index)
            if coded is not None and coded.type == "subtitle":
                self._subtitle(coded, pkt)
                continue
            if coded is not None:
                self._encode(coded, pkt.decode())
                continue
            pkt.stream = self.map[pkt.stream.index]
            self.out.mux(pkt)

    def _subtitle(self, stream, pkt) -> None:
        """One subtitle packet decoded and encoded in ``stream``'s text format, at its time."""
        cue = pkt.stream.codec_context.decode2(pkt)
        if cue is None:
            return
        out = stream.codec_context.encode_subtitle(cue)
        out.pts, out.dts, out.duration, out.time_base = pkt.pts, pkt.dts, pkt.duration, pkt.time_base
        out.stream = stream
        self.out.mux(out)

    def _encode(self, stream, frames) -> None:
        for frame in frames:
            for pkt in stream.encode(frame):
                self.out.mux(pkt)

    def finish(self) -> None:
        """The re-encoded streams' last samples (decoder and encoder flushed)."""
        for index, stream in self.coded.items():
            if stream.type == "audio":
                self._encode(stream, [*self.inp.streams[index].codec_context.decode(None), None])

    def close(self) -> None:
        self.inp.close()
