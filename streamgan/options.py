"""Checks of what a user passes, made before any work starts: devices, encoder settings, output
paths of plots and reports. Each mistake is one ``OptionError`` / ``OutputError`` line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import OptionError, OutputError
from .media.files import check_output

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
# encoders that take a constant rate factor: its range and streamgan's default
CRF = {"libx264": (0, 51, 18), "libx264rgb": (0, 51, 18), "libx265": (0, 51, 20), "libvpx-vp9": (0, 63, 31),
       "libsvtav1": (0, 63, 30)}
PRESETS = {"libx264": X264_PRESETS, "libx264rgb": X264_PRESETS, "libx265": X264_PRESETS}
DEFAULT_PRESET = "medium"


@dataclass(frozen=True)
class Encoder:
    """A video encoder and the settings it takes (None: the encoder's own)."""

    codec: str = "libx264"
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    live: bool = False  # for a stream: no lookahead or B-frames (x264 zerolatency), a ~2 s GOP
    bitrate: int | None = None  # bits a second (live: the rate control, unless a crf is given)

    @property
    def options(self) -> dict[str, str]:
        """The encoder's private options for these settings."""
        opts = {}
        if self.crf is not None:
            opts["crf"] = str(self.crf)
            if self.codec == "libvpx-vp9" and not self.bitrate:
                opts["b"] = "0"  # constant quality (libvpx: crf alone caps the bitrate)
        if self.preset is not None:
            opts["preset"] = self.preset
        if self.codec == "libvpx-vp9":  # libvpx's default speed: ~0.15 s a 640x360 frame on 2 cores; a file:
            # 4x faster, -0.4 dB, +3% size at crf 31; live: its real-time mode (5 ms a frame)
            opts.update({"deadline": "realtime", "cpu-used": "8"} if self.live else {"cpu-used": "4"})
            opts["row-mt"] = "1"
        if self.live and self.codec in ("libx264", "libx264rgb", "libx265"):
            opts["tune"] = "zerolatency"
        if self.live and self.bitrate:  # a bounded rate: what a network path and a player's buffer need
            opts.update(maxrate=str(self.bitrate), bufsize=str(self.bitrate))
        return opts


LIVE_PRESET = "veryfast"


# FFmpeg's codec -> the encoder to write it with, where a container's own codec is taken (FFmpeg's
# native Opus and Vorbis encoders are experimental)
ENCODER_OF = {"h264": "libx264", "hevc": "libx265", "vp9": "libvpx-vp9", "vp8": "libvpx", "av1": "libsvtav1",
              "opus": "libopus", "vorbis": "libvorbis"}


def default_codec(container: str | None) -> str:
    """The video encoder of a file in ``container`` (a muxer name) where none is named: libx264
    wherever the container takes H.264, else the container's own (webm: libvpx-vp9)."""
    if not container:
        return "libx264"
    import io

    import av
    with av.open(io.BytesIO(), "w", format=container) as c:
        try:
            c.add_stream("libx264")
            return "libx264"
        except ValueError:
            own = c.default_video_codec
    if own in (None, "none", "gif"):  # (a GIF of 256 colours a frame is not a translation's picture)
        raise OptionError(f"a {container} file holds no video streamgan writes", hint="name the output .mp4, "
                          ".mkv, .mov or .webm")
    return ENCODER_OF.get(own, own)


def encoder(codec: str | None = None, crf: int | None = None, preset: str | None = None,
            pix_fmt: str | None = None, live: bool = False, bitrate: str | int | None = None,
            container: str | None = None) -> tuple[Encoder, list[str]]:
    """The encoder ``codec`` with these settings checked, and notes on settings it does not take
    (said, then ignored). ``codec`` None: ``default_codec(container)`` (libx264 but where the
    container cannot hold it). Defaults: crf and preset where the encoder has them (x264: crf 18,
    preset medium); ``live`` (a stream out, or a recording of a live input): preset veryfast and,
    unless a crf is given, the ``bitrate`` (None: chosen from the frame size when known)."""
    rate = parse_bitrate(bitrate)
    codec = codec or default_codec(container)
    import av
    try:
        found = av.codec.Codec(codec, "w")
    except Exception:
        raise OptionError(f"--codec {codec}: no such video encoder in this FFmpeg build",
                          hint="libx264, libx265, libvpx-vp9, mpeg4, ffv1, ... (ffmpeg -encoders)") from None
    if found.type != "video":
        raise OptionError(f"--codec {codec}: a {found.type} encoder, not a video one")
    notes = []
    if codec in CRF:
        lo, hi, default = CRF[codec]
        if crf is not None and not lo <= crf <= hi:
            raise OptionError(f"--crf {crf}: {codec} takes {lo} (best) to {hi}")
        crf = (None if live else default) if crf is None else crf
    elif crf is not None:
        notes.append(f"--crf does not apply to {codec}; its own rate control is used")
        crf = None
    if codec in PRESETS:
        if preset is not None and preset not in PRESETS[codec]:
            raise OptionError(f"--preset {preset}: {codec} presets are {', '.join(PRESETS[codec])}")
        preset = preset or (LIVE_PRESET if live else DEFAULT_PRESET)
    elif preset is not None:
        notes.append(f"--preset does not apply to {codec}")
        preset = None
    if pix_fmt is not None:
        formats = [f.name for f in (found.video_formats or [])]
        if formats and pix_fmt not in formats:
            raise OptionError(f"--pix-fmt {pix_fmt}: {codec} encodes {', '.join(formats)}")
        if not formats:
            try:
                av.VideoFormat(pix_fmt)
            except ValueError:
                raise OptionError(f"--pix-fmt {pix_fmt}: not a pixel format") from None
    if rate is not None and not live:
        notes.append("--bitrate applies to live outputs; files are encoded at --crf")
        rate = None
    return Encoder(codec, crf, preset, pix_fmt, live, rate), notes


def parse_bitrate(text: str | int | None) -> int | None:
    """'4M', '2500k', '800000' -> bits a second."""
    if text is None or isinstance(text, int):
        return text
    t = str(text).strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(t[-1:], 1)
    try:
        value = float(t[:-1] if scale > 1 else t) * scale
    except ValueError:
        raise OptionError(f"--bitrate {text}: expected bits a second such as 4M or 2500k") from None
    if not 10_000 <= value <= 1_000_000_000:
        raise OptionError(f"--bitrate {text}: expected 10k to 1000M")
    return int(value)


def live_bitrate(width: int, height: int, rate: float) -> int:
    """A default for a live stream: 0.1 bit a pixel a frame, at least 1 Mbit/s (640x360 at 30 fps:
    1 Mbit/s; 1280x720: 2.8; 1920x1080: 6.2)."""
    return max(1_000_000, int(0.1 * width * height * rate))


def check_device(device: str | None) -> None:
    """``cpu``, ``cuda`` or ``cuda:N`` that exists here (None: the default, always fine)."""
    if device is None:
        return
    kind, _, index = str(device).partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()) or (kind == "cpu" and index not in ("", "0")):
        raise OptionError(f"--device {device}: expected cpu, cuda or cuda:N")
    if kind == "cuda":
        from .translate.engine import _cuda_possible
        count = 0
        if _cuda_possible():
            import torch
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not count:
            raise OptionError(f"--device {device}: no CUDA device here (this torch: "
                              f"{_torch_build()})", hint="leave --device out to run on the CPU")
        if index and int(index) >= count:
            names = "cuda:0" if count == 1 else f"cuda:0 to cuda:{count - 1}"
            raise OptionError(f"--device {device}: this machine has {count} CUDA device(s): {names}")


def _torch_build() -> str:
    import importlib.metadata
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
    return f"{version}, {'a CPU-only build' if '+cpu' in version else 'no NVIDIA driver found'}"


PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".eps")


def check_plot(path: str | Path | None, overwrite: bool, inputs: list[Path] = ()) -> None:
    """A plot can be written at ``path``: a format matplotlib writes, a folder that exists, no
    file replaced without ``overwrite``."""
    if path is None:
        return
    path = Path(path)
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise OptionError(f"--plot {path}: the suffix picks the format; use one of {', '.join(PLOT_SUFFIXES)}")
    check_output(path, list(inputs), overwrite)


def check_report(path: str | Path | None, overwrite: bool, option: str = "--report") -> None:
    """A JSON report can be written at ``path`` (its folder exists; an existing file is replaced
    only with ``overwrite``)."""
    if path is None:
        return
    try:
        check_output(Path(path), [], overwrite)
    except OutputError as exc:
        raise OutputError(f"{option} {exc}", hint=exc.hint) from None
