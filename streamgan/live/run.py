"""Live runs: a live source (a network stream, a camera, a file played at its own rate) through the
live pipeline into sinks (a file recorded, a network stream, a window, a virtual camera). The
front-end of ``streamgan run`` with a URL or ``--live``, and of ``streamgan webcam``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from engines.base import Engine

from ..errors import Interrupted, OptionError, PipelineError
from ..media.sinks import Sink, VideoSink
from ..media.sources import Source
from ..pipeline import Controls, Stage, run_live
from ..temporal import make_smoother
from ..translate.content_check import ContentCheck
from ..translate.translator import TranslateOptions, Translator


def warm_up(translator: Translator, smoother, width: int, height: int) -> float:
    """Run the pipeline twice on a flat frame of the source's size before frames flow (kernel
    compilation, plans and the backend choice happen now, not on live frames); the smoother is
    reset after. Returns the seconds it took."""
    t = time.perf_counter()
    frame = np.full((height, width, 3), (96, 128, 160), np.uint8)
    for _ in range(2):
        out = translator(frame)
        if smoother is not None:
            smoother(frame, out)
    engine = translator.engine  # the precisions the first real frame is checked at, opened now
    chosen = engine.meta.precision
    for precision in engine.precisions():
        if precision not in (chosen, "int8"):  # (live runs do not try int8: ContentCheck)
            engine.set_precision(precision)
            translator(frame)
    engine.set_precision(chosen)
    if smoother is not None:
        smoother.reset()
    translator.reset()
    translator.times.clear()
    translator.frames = 0
    return time.perf_counter() - t


def translate_live(source: Source, sinks: list[Sink], engine: Engine, *, options: TranslateOptions | None = None,
                   temporal: str = "off", temporal_strength: float | None = None, side_by_side: bool = False,
                   controls: Controls | None = None, duration: float | None = None, frames: int | None = None,
                   skip_similar: float | None = None, stats_json: str | Path | None = None, progress: bool = True,
                   quiet: bool = False, on_written=None) -> dict:
    """Translate a live ``source`` into ``sinks`` until it ends, ``duration`` seconds of it have
    passed, ``frames`` were written, or a viewer or Ctrl-C stops it; the sinks are then finished
    properly (a recording kept complete up to the stop, a stream's session closed). Returns (and
    with ``stats_json`` writes) the live report; Ctrl-C raises ``Interrupted`` (exit 130) after."""
    if duration is not None and duration <= 0:
        raise OptionError("--duration must be > 0")
    if skip_similar is not None and not 0 <= skip_similar < 1:
        raise OptionError("--skip-similar must be in [0, 1)")
    translator = Translator(engine, options)
    smoother = make_smoother(temporal, temporal_strength, device=engine.device if translator.cuda else None)
    controls = controls or Controls(side_by_side=side_by_side)
    # one frame at a time, every core on it: overlapping frames in the engine (its throughput
    # streams) translated 15% more frames but doubled the latency (bundled model, 640x360 at 30 fps
    # over UDP, 2 cores: p50 87 -> 190 ms, p99 106 -> 244 ms)
    # the precision is checked on the first real frame (inside the warm-up); not again later: an fp32
    # translation in mid-stream stalls it (bundled model, 640x360 over UDP on 2 cores, a recheck at the
    # 300th frame: a frame dropped at 15 fps and p99 112 -> 155 ms; at 30 fps p99 115 -> 172 ms)
    check = ContentCheck(translator, int8=False)
    stage = Stage(translator, smoother, controls=controls, overlap=False, check=check)
    try:
        warm = warm_up(translator, smoother, source.info.width, source.info.height)
        report = run_live(source, sinks, stage, duration=duration, skip_similar=skip_similar, progress=progress,
                          frames=frames, on_written=on_written)
    except KeyboardInterrupt:  # during the warm-up
        report = None
    finally:  # whatever ended the run: a recording is kept up to here, a stream's session closed
        source.close()
        for sink in sinks:
            sink.close()
    kept = [s.name for s in sinks if isinstance(s, VideoSink) and not s.url and Path(s.name).exists()]
    stopped = "stopped" + (f"; the recording up to the stop is in {', '.join(kept)}" if kept else "")
    if report is None:
        raise Interrupted(stopped)
    report.update(warm_up_s=warm, engine=engine.describe(), backend=engine.meta.backend,
                  precision=engine.meta.precision, precision_check=check.describe(), outputs=[s.name for s in sinks])
    if stats_json:
        from engines.cache import write_json
        write_json(Path(stats_json), json.loads(json.dumps(report, default=str)))
    if not quiet:
        print_live_report(report)
    if report["interrupted"]:
        raise Interrupted(stopped)
    if source.error:
        raise PipelineError(source.error + (f"; the recording up to it is in {', '.join(kept)}" if kept else ""))
    return report


def print_live_report(r: dict) -> None:
    e2e = r["latency_ms"].get("end_to_end", {})
    lat = f"latency p50 {e2e['p50']:.0f} / p95 {e2e['p95']:.0f} / p99 {e2e['p99']:.0f} ms" if e2e else "no latency"
    src = r["source"]
    again = f", {src['reconnects']} reconnects" if src.get("losses") else ""
    print(f"live: received {r['received']}, translated {r['translated']}, skipped {r['skipped']}, dropped "
          f"{r['dropped']}, repeated {r['repeated']}, written {r['written']}; {r['fps']:.1f} fps; {lat} "
          f"(arrival to written){again} ({r['engine']})", file=sys.stderr)
    if r.get("precision_check"):
        print(f"precision: {r['precision_check']}", file=sys.stderr)


def live_sinks(outputs: list[str], info, *, codec: str | None = None, crf: int | None = None,
               preset: str | None = None, pix_fmt: str | None = None, bitrate: str | None = None,
               fmt: str | None = None, overwrite: bool = False, timeout: float = 10.0) -> tuple[list[Sink], list[str]]:
    """Video sinks for live ``outputs`` (files recorded, URLs streamed), checked now; and notes."""
    from ..media.urls import is_url
    from ..media.video import muxer_for
    from ..options import encoder
    files = [muxer_for(Path(out)) for out in outputs if not is_url(out)]  # (a recording in .webm: VP9)
    enc, notes = encoder(codec, crf, preset, pix_fmt, live=True, bitrate=bitrate, container=(files or [None])[0])
    return [VideoSink(out, info, enc, fmt=fmt, overwrite=overwrite, timeout=timeout) for out in outputs], notes


def add_live_args(p) -> None:
    """Options of a live run (``run`` with a URL, a camera or --live; ``webcam``)."""
    g = p.add_argument_group("live and streams (an input or output URL: rtsp, rtmp, srt, udp, tcp, http(s)/HLS)")
    g.add_argument("--live", action="store_true",
                   help="play a file input at its own rate as a live source (implied by an output URL): "
                        "the newest frame wins, frames the model cannot keep up with are dropped and counted")
    g.add_argument("--timeout", type=float, default=10.0,
                   help="seconds to wait for a stream to open, and for each read, before calling it lost (default 10)")
    g.add_argument("--reconnect", type=int, default=None,
                   help="how many times to reopen a lost input, backing off 1 to 30 s (default: until Ctrl-C)")
    g.add_argument("--listen", action="store_true",
                   help="be the server the input's sender connects to (rtmp://, rtsp://, tcp:// addresses)")
    g.add_argument("--format", dest="container", default=None,
                   help="container of an output URL (default flv for rtmp, mpegts for udp/tcp/srt, rtsp for rtsp)")
    g.add_argument("--bitrate", default=None,
                   help="bit rate of a live output, e.g. 4M (default 0.1 bit a pixel a frame, at least 1M)")
    g.add_argument("--skip-similar", type=float, default=None, metavar="T",
                   help="reuse the last output for a frame whose small gray version differs from the last translated "
                        "one by less than T (mean on 0..1, e.g. 0.01); counted as skipped (default: translate all)")
    g.add_argument("--stats-json", default=None,
                   help="write the live report (received, translated, skipped, dropped, latency p50/p95/p99) here")


def prepare_live(args, defaults: dict):
    """Check a live ``run`` (a URL in or out, or --live) before any work and open its source (a URL
    that cannot be opened is one line within --timeout). Returns the work to do with the engine."""
    from ..media.sources import FileSource, open_source
    from ..media.urls import is_url
    from ..media.video import is_video
    from ..options import check_report
    for dest, flag in (("keep_partial", "--keep-partial"), ("ray", "--ray")):
        if getattr(args, dest) != defaults.get(dest):
            raise OptionError(f"{flag} does not apply to a live run")
    if not is_url(args.output) and not is_video(Path(args.output)):
        raise OptionError(f"{args.output}: a live run records to a video file (.mp4, .mkv, ...) or streams to a URL")
    check_report(args.stats_json, args.overwrite, "--stats-json")
    if is_url(args.input) and args.start:
        raise OptionError("--start does not apply to a stream (it starts now)")
    # the output and its encoder checked before connecting; the sink takes the source's size and
    # colour once it is open
    sinks, notes = live_sinks([args.output], None, codec=args.codec, crf=args.crf, preset=args.preset,
                              pix_fmt=args.pix_fmt, bitrate=args.bitrate, fmt=args.container,
                              overwrite=args.overwrite, timeout=args.timeout)
    source = open_source(args.input, live=True, start=args.start, timeout=args.timeout, reconnect=args.reconnect,
                         listen=args.listen)
    if isinstance(source, FileSource) and args.duration is not None:
        source.reader.duration = None  # a live file plays until --duration of its clock has passed
    for sink in sinks:
        sink.info = source.info
    if source.audio:
        notes.append("the live input's audio is not passed through (the output has video only)")
    if source.note:
        notes.append(source.note)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)

    def work(engine, options):
        return translate_live(source, sinks, engine, options=options, temporal=args.temporal,
                              temporal_strength=args.temporal_strength, side_by_side=args.side_by_side,
                              duration=args.duration, skip_similar=args.skip_similar, stats_json=args.stats_json,
                              progress=not args.no_progress, quiet=args.quiet)
    return work


def is_live_run(args) -> bool:
    """A stream URL in (HTTP(S) is a file unless --live) or out, a camera in, or --live."""
    from ..media.urls import is_url, scheme_of
    streamed_in = is_url(args.input) and scheme_of(args.input) not in ("http", "https")
    return args.live or streamed_in or is_url(args.output) or args.input.isdigit() or \
        args.input.startswith("/dev/video")
