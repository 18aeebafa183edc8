"""Network stream addresses: which URLs streamgan reads and writes through PyAV (FFmpeg), and the
options that bound every wait on them (without a timeout, ``av.open`` and demuxing can block
forever on RTSP/UDP/RTMP; the option names differ by protocol, and FFmpeg 5 renamed RTSP's
``stimeout`` to ``timeout``)."""

from __future__ import annotations

# URL schemes streamgan reads and writes through PyAV (FFmpeg), and the container each writes
NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "srt", "udp", "tcp", "http", "https", "rist")
OUTPUT_FORMATS = {"rtmp": "flv", "rtmps": "flv", "rtsp": "rtsp", "srt": "mpegts", "udp": "mpegts", "tcp": "mpegts",
                  "rist": "mpegts"}


def is_url(spec: str) -> bool:
    """``spec`` names a network stream (scheme://...), not a file."""
    scheme, sep, _ = str(spec).partition("://")
    return bool(sep) and scheme.lower() in NETWORK_SCHEMES


def scheme_of(url: str) -> str:
    return url.partition("://")[0].lower()


def _microseconds(seconds: float) -> str:
    return str(int(seconds * 1_000_000))


def stream_options(url: str, timeout: float, listen: bool = False, output: bool = False) -> dict[str, str]:
    """FFmpeg options that bound every wait on ``url`` by ``timeout`` seconds and keep latency low
    (the names differ by protocol; FFmpeg 5 renamed RTSP's ``stimeout`` to ``timeout``)."""
    scheme = scheme_of(url)
    opts: dict[str, str] = {}
    if scheme in ("rtsp", "rtsps"):
        opts["rtsp_transport"] = "tcp"
        if listen:  # (the seconds to wait for the sender; "timeout" is a client's socket timeout)
            opts.update(rtsp_flags="listen", listen_timeout=str(max(1, int(timeout))))
        else:
            opts["timeout"] = _microseconds(timeout)
    elif scheme in ("rtmp", "rtmps"):
        opts["rw_timeout"] = _microseconds(timeout)
        if listen:
            opts.update(listen="1", timeout=str(max(1, int(timeout))))
    elif scheme == "udp":
        if not output:  # a kernel buffer that rides out a busy moment (up to net.core.rmem_max)
            opts.update(timeout=_microseconds(timeout), overrun_nonfatal="1", fifo_size="100000",
                        buffer_size=str(4 << 20))
    elif scheme == "tcp":
        opts.update(timeout=_microseconds(timeout))
        if listen:
            opts["listen"] = "1"
    elif scheme in ("http", "https"):
        opts.update(rw_timeout=_microseconds(timeout))
        if not output:  # FFmpeg's own reconnects cover HTTP only
            opts.update(reconnect="1", reconnect_streamed="1", reconnect_delay_max="30")
    elif scheme == "srt":
        opts.update(timeout=_microseconds(timeout))
        if listen:
            opts["mode"] = "listener"
    if not output:  # start within a second (fflags=nobuffer is not set: over UDP it stopped
        # the MPEG-TS demuxer for good 48 frames after a looped sender's timestamps went on)
        opts.update(analyzeduration="1000000", probesize="1000000")
    return opts
