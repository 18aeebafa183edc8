"""``streamgan run``: the streaming pipeline (decode | translate | encode), for videos and images."""

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from engines.base import Engine, on_cuda

from ..errors import InputError, OptionError, OutputError, PipelineError
from ..media.files import atomic_path, check_output, file_identity, listing
from ..media.hdr import DEFAULT_TONEMAP, HDR_MODES, TONEMAPS, HdrConverter, describe, is_hdr
from ..media.images import expand_images, is_image
from ..media.sources import FileSource
from ..media.urls import is_url
from ..media.video import (
    NEW_CONTENT,
    PLANAR_FORMATS,
    VideoReader,
    VideoWriter,
    is_video,
    matrix_name,
    muxer_for,
    same_layout,
)
from ..options import encoder
from ..pipeline import Stage, run_offline
from ..temporal import TEMPORAL_MODES, make_smoother
from ..translate.content_check import ContentCheck
from ..translate.translator import TranslateOptions, Translator


def add_video_args(p) -> None:
    g = p.add_argument_group("video output")
    g.add_argument("--codec", default=None,
                   help="video encoder: libx264 (default; .webm: libvpx-vp9), libx264rgb, libx265, libvpx-vp9, "
                        "libsvtav1, mpeg4, ffv1, ...")
    g.add_argument("--crf", type=int, default=None,
                   help="constant rate factor, lower is better: default 18 for x264, 20 for x265, 31 for VP9 "
                        "(0 with x264: lossless)")
    g.add_argument("--preset", default=None, help="x264/x265 speed preset, ultrafast .. veryslow (default medium)")
    g.add_argument("--pix-fmt", default=None,
                   help="output pixel format (default: the input's chroma layout and bit depth, 8 or 10 bits, where "
                        "the codec has them; yuv444p for odd frame sizes; rgb24 for RGB encoders)")
    g.add_argument("--hdr", choices=HDR_MODES, default="sdr",
                   help="an HDR input (PQ or HLG): sdr (default) tone maps it to SDR BT.709 for the model and "
                        "writes SDR; keep maps the result back to the input's HDR; passthrough feeds its code "
                        "values as they are (models trained on HDR)")
    g.add_argument("--tonemap", choices=TONEMAPS, default=DEFAULT_TONEMAP,
                   help=f"the tone curve for an HDR input (default {DEFAULT_TONEMAP})")
    g = p.add_argument_group("video input")
    g.add_argument("--start", type=float, default=0.0, help="start at this time, in seconds (default 0)")
    g.add_argument("--duration", type=float, default=None, help="seconds to translate (default: to the end)")
    g.add_argument("--keep-partial", action="store_true",
                   help="on a truncated input, write the frames that decoded and say how many were lost "
                        "(default: refuse and write nothing)")
    g.add_argument("--side-by-side", action="store_true", help="write input | output side by side")
    g.add_argument("--deinterlace", choices=("auto", "off"), default="auto",
                   help="auto (default): interlaced video is made progressive (FFmpeg's bwdif, a frame for each "
                        "frame) before the model and written progressive; off: its frames go as they are")
    g = p.add_argument_group("temporal smoothing")
    g.add_argument("--temporal", choices=TEMPORAL_MODES, default="off",
                   help="off (default), ema, motion (motion-gated EMA) or flow (optical-flow guided)")
    g.add_argument("--temporal-strength", type=float, default=None,
                   help="from 0 (none) up to, not including, 1; default 0.7 for flow, 0.6 for ema and motion")
    g.add_argument("--stats-ema", type=float, default=None,
                   help="weight of previous frames' normalisation statistics, in [0, 1) (default 0.8 with "
                        "--temporal, else 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (the run report is still printed)")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors and warnings")
    from ..live.run import add_live_args
    add_live_args(p)
    g = p.add_argument_group("scale-out (pip install 'streamgan[ray]')")
    g.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run on Ray: no address = a local instance, 'auto' = the running cluster, or ray://host:port")
    g.add_argument("--cpus-per-worker", type=int, default=1,
                   help="CPU cores per actor when there are no GPUs (default 1)")
    g.add_argument("--workers", type=int, default=None, help="actors (default: one per GPU, or per CPU group)")
    g.add_argument("--segment-seconds", type=float, default=60.0,
                   help="split videos longer than twice this at keyframes into segments of about this length "
                        "(default 60 s)")
    g.add_argument("--lead-in", type=int, default=30,
                   help="frames translated before each segment to warm temporal state, then dropped (default 30)")
    g.add_argument("--retries", type=int, default=3, help="attempts per work item after a failure (default 3)")
    g.add_argument("--resume", action="store_true", help="finish an interrupted job (skip finished items)")


def translate_video(input: str | Path, output: str | Path, engine: Engine, *,
                    options: TranslateOptions | None = None, codec: str | None = None, crf: int | None = None,
                    preset: str | None = None, pix_fmt: str | None = None, start: float = 0.0,
                    duration: float | None = None, keep_partial: bool = False, side_by_side: bool = False,
                    overwrite: bool = False, temporal: str = "off", temporal_strength: float | None = None,
                    progress: bool = True, quiet: bool = False, lead_in_until: int | None = None,
                    copy_streams: bool = True, on_frame: Callable[[int], None] | None = None,
                    hdr: str = "sdr", tonemap: str = DEFAULT_TONEMAP, deinterlace: str = "auto") -> dict:
    """Translate a video file; audio and subtitle streams are copied. Returns a report dict.

    Decoding, translation and encoding run concurrently with bounded queues, so memory stays
    flat on any length. Frames in = frames out, or the run fails and writes nothing. ``progress``:
    the progress bar; the report is printed unless ``quiet``.
    Segments of a split video: frames before ``lead_in_until`` (pts) are translated to warm the
    temporal state and statistics, then dropped; ``copy_streams`` False leaves audio out;
    ``on_frame(n)`` is called after each translated frame. codec None: libx264, or the output
    container's own where it cannot hold H.264 (.webm: VP9); crf and preset None: the encoder's
    defaults (x264: crf 18, medium). ``deinterlace`` "auto": interlaced frames are made progressive.
    """
    input, output = (str(input) if is_url(str(input)) else Path(input)), Path(output)
    name = input.rsplit("/", 1)[-1] if isinstance(input, str) else input.name
    if start < 0 or (duration is not None and duration <= 0):
        raise OptionError("--start must be >= 0 and --duration > 0")
    enc, enc_notes = encoder(codec, crf, preset, pix_fmt, container=muxer_for(output))
    check_output(output, [input] if isinstance(input, Path) else [], overwrite)
    source = FileSource(input, start, duration)  # sources -> translate (Stage) -> the file's writer
    reader = source.reader
    reader.deinterlace = deinterlace == "auto"
    if reader.info.interlaced:
        enc_notes.append(f"interlaced input ({reader.info.interlaced}): " + (
            "deinterlaced (bwdif, a frame for each frame) before the model, written progressive"
            if reader.deinterlace else "not deinterlaced (--deinterlace off): its woven fields go to the model"))
    length = reader.info.end or reader.info.container_end
    if start and length is not None and start >= length:
        raise OptionError(f"--start {start:g}: {input} is only {length:.2f} s long")
    translator = Translator(engine, options)
    smoother = make_smoother(temporal, temporal_strength, device=engine.device if on_cuda(engine) else None)
    h, w = reader.info.height, reader.info.width
    total = reader.expected_frames() or (
        int(round((duration or reader.info.duration or 0) * float(reader.info.rate or 0))) or None)
    trc = reader.info.colour.trc
    hdr_in = is_hdr(trc) and hdr != "passthrough"
    if is_hdr(trc):
        enc_notes.append(describe(trc, hdr, tonemap))
    if hdr_in:  # frames reach the model tone mapped to SDR BT.709
        reader.hdr, reader.keep_residual = HdrConverter(trc, tonemap), hdr == "keep"
    with atomic_path(output) as tmp:
        writer = VideoWriter(tmp, reader, 2 * w if side_by_side else w, h, encoder=enc, copy_streams=copy_streams,
                             colour=NEW_CONTENT if hdr_in and hdr == "sdr" else None,
                             hdr=reader.hdr if hdr_in and hdr == "keep" else None)
        writer.notes[:0] = enc_notes
        yuv, yuv_db = (None, None) if smoother is not None or side_by_side or hdr_in else \
            yuv_format(engine, reader, writer, translator)
        reader.planar = yuv is not None
        check = None if yuv else ContentCheck(
            translator, samples=lambda: reader.spread(CHECK_SAMPLES if not total or total >= SHORT else 0),
            recheck_at=_recheck_at(total),
            key=None if isinstance(input, str) else
            f"{file_identity(input)}|{start}|{duration}|{hdr}|{tonemap}|{deinterlace}")
        stage = Stage(translator, smoother, side_by_side, yuv, check=check)

        def keep(frame) -> bool:  # a segment's lead-in warms the state and is not written
            return lead_in_until is None or frame.pts is None or frame.pts >= lead_in_until
        try:
            counts = run_offline(source, lambda out, f: writer.write(out, f.pts, f.duration, f.residual), stage,
                                 desc=name, total=total, progress=progress, keep=keep, on_frame=on_frame)
        except BaseException:
            writer.abort()
            raise
        lost = _lost_frames(reader, keep_partial, writer)
        if reader.onward.jumps:
            writer.notes.append(f"the input's times went back {reader.onward.jumps} time(s) (parts of recordings "
                                "joined, or a broadcast's break): each part is placed after the one before")
        if reader.resized:
            i, w0, h0 = reader.resized
            writer.notes.append(f"the picture's size changed at frame {i} ({w0}x{h0}): scaled to the first "
                                f"frame's {w}x{h}")
        if not writer.frames:
            writer.abort()
            what = f"the segment from {start:g} s" if start or duration is not None else "the input"
            raise PipelineError(f"{input}: {what} holds no video frames; nothing written")
        writer.close()
        frames_in = counts["frames_in"] - counts["lead_in"]
        if writer.frames != frames_in:
            raise PipelineError(f"{frames_in} frames in but {writer.frames} out; nothing written")
    end = time.perf_counter()
    report = _report(input, output, engine, reader, writer, frames_in, lost, counts["seconds"],
                     {**dict(translator.times), **counts["times"]})
    report["first_frame_after_launch_s"] = counts["first_frame_after_launch_s"]
    if counts["first_out"] is not None and frames_in > 1:  # after the first frame's one-time work
        report["steady_fps"] = (frames_in - 1) / max(end - counts["first_out"], 1e-9)
    report["plan"] = translator.decision
    report["precision_check"] = check.describe() if check else ""
    report["frame_path"] = (f"yuv planes, converted on the device (no swscale; first frame "
                            f"{yuv_db} dB to the RGB path)") if yuv else "rgb (swscale)"
    if not quiet:
        _print_report(report)
    if report["lost"] != 0:  # never silent, progress bar or not
        lost = "an unknown number of" if report["lost"] is None else report["lost"]
        print(f"warning: input truncated, {lost} frames lost ({report['truncation']}); partial output kept",
              file=sys.stderr)
    return report


CHECK_SAMPLES = 2  # frames spread over a file that the precision is checked on, besides its first
SHORT = 12  # ... unless it is shorter than this: checking them would cost more than bf16 saves it


def _recheck_at(total: int | None) -> int:
    """The frame whose output is checked again: three quarters into a file of known length (the
    last frame of a short one), else the 300th."""
    return max(2, (3 * total) // 4) if total else 300


def yuv_format(engine: Engine, reader: VideoReader, writer: VideoWriter,
               translator: Translator) -> tuple[dict | None, float | None]:
    """The YUV frame path's format (kernels.yuv arguments) when this run can take it, with its
    first frame's dB to the RGB path (>= YUV_AGREEMENT_DB, else the RGB path runs and a note says
    why); else (None, None).

    Taken on CUDA when the output keeps the input's planar format (the default 4:2:0 for 4:2:0
    input, or --pix-fmt naming it) and frames go whole through the model. STREAMGAN_YUV_PATH=off
    turns it off; =on takes it off CUDA too (the kernels then need TRITON_INTERPRET=1: tests)."""
    info, force = reader.info, os.environ.get("STREAMGAN_YUV_PATH", "auto")
    if force == "off" or (not on_cuda(engine) and force != "on"):
        return None, None
    if info.pix_fmt not in PLANAR_FORMATS or not same_layout(writer.stream.pix_fmt, info.pix_fmt):
        return None, None
    if not translator.yuv_ready(info.height, info.width):
        return None, None
    bits, sub = PLANAR_FORMATS[info.pix_fmt]
    from kernels.yuv import SITES
    # where chroma sits: these codecs' default is "left" (swscale reads a frame's own location,
    # PyAV does not show it: a stream tagged otherwise fails the first-frame check below)
    site = SITES["left" if info.codec in ("h264", "hevc", "mpeg2video", "mpeg4", "vvc") else "center"]
    fmt = dict(matrix=matrix_name(info.colour), full_range=info.colour.explicit().range == 2, bits=bits, sub=sub,
               site=site)
    db = yuv_agreement(reader, writer, translator, fmt)
    if db is not None and db < YUV_AGREEMENT_DB:
        writer.notes.append(f"frame path: rgb (swscale), as the YUV path's first frame was {db:.1f} dB from the RGB "
                            f"path's (below {YUV_AGREEMENT_DB:g})")
        return None, None
    return fmt, db


YUV_AGREEMENT_DB = 45.0  # the YUV frame path's first frame against the RGB path's, each plane


def yuv_agreement(reader: VideoReader, writer: VideoWriter, translator: Translator, fmt: dict) -> float | None:
    """dB of the YUV frame path's output planes of the first frame to the RGB path's (swscale
    decoding, the model, the writer's swscale encoding), the worst plane; None where no frame
    decodes. The translator's frame count and times are left as they were."""
    from engines.metrics import psnr

    from ..media.video import planes_of, to_rgb
    from ..translate.content_check import kept_state
    frame = reader.first_frame()
    if frame is None:
        return None
    peak = 2.0 ** fmt["bits"] - 1
    with kept_state(translator):
        via_rgb = planes_of(writer.frame_of(translator(to_rgb(frame))))
        translator.submit_planes(planes_of(frame), fmt)
        (_, via_yuv), = translator.flush()
    return round(min(999.0, *(psnr(a, b, peak) for a, b in zip(via_yuv, via_rgb))), 1)


def _lost_frames(reader: VideoReader, keep_partial: bool, writer: VideoWriter) -> tuple[int | None, str | None]:
    """(frames the input promised but did not deliver, why): (0, None) when it delivered them all;
    None frames when how many is unknown. Refuses a partial result unless asked."""
    cut = reader.truncation()
    if cut is None:
        return 0, None
    if not keep_partial:
        writer.abort()
        raise PipelineError(f"{reader.path}: truncated or corrupt ({cut[1]}); nothing written",
                            hint="pass --keep-partial to keep the frames that decoded")
    return cut


def _report(input: Path, output: Path, engine: Engine, reader: VideoReader, writer: VideoWriter, frames_in: int,
            lost: tuple[int | None, str | None], elapsed: float, stages: dict[str, float]) -> dict:
    return {
        "input": str(input), "output": str(output), "frames_in": frames_in, "frames_out": writer.frames,
        "lost": lost[0], "truncation": lost[1],
        "seconds": elapsed, "fps": frames_in / elapsed if elapsed > 0 else 0.0,
        "ms_per_frame": {k: 1000 * v / max(frames_in, 1) for k, v in stages.items()},
        "notes": writer.notes, "engine": engine.describe(), "backend": engine.meta.backend,
        "precision": engine.meta.precision,
    }


def _print_report(r: dict) -> None:
    stages = ", ".join(f"{k} {v:.1f}" for k, v in r["ms_per_frame"].items())
    first = r.get("first_frame_after_launch_s")
    start = f"first frame {first:.2f} s after launch, " if first is not None else ""
    steady = f", {r['steady_fps']:.1f} after the first" if r.get("steady_fps") else ""
    print(f"frames in {r['frames_in']}, out {r['frames_out']}, {r['fps']:.1f} fps{steady} ({r['engine']}); "
          f"{start}ms/frame: {stages}", file=sys.stderr)
    if r.get("plan"):
        print(f"plan: {r['plan']}", file=sys.stderr)
    if r.get("precision_check"):
        print(f"precision: {r['precision_check']}", file=sys.stderr)
    for note in r["notes"]:
        print(f"note: {note}", file=sys.stderr)


def folder_output(output: Path) -> bool:
    """Check a folder run's output is (or can be) a folder; True when the run creates it."""
    if is_video(output) or is_image(output) or (output.exists() and not output.is_dir()):
        raise OutputError(f"{output}: a folder of videos needs an output folder, not a file name",
                          hint="pass a folder name such as out/")
    return not output.exists()


def translate_folder(videos: list[Path], output: Path, engine: Engine, **video_kw) -> dict:
    """Translate every video into ``output``/NAME. A video that fails is reported and the rest go on;
    the run then fails (non-zero exit) naming them. Finished videos are complete files; a folder
    the run created is removed again if nothing was written into it."""
    created = folder_output(output)
    output.mkdir(parents=True, exist_ok=True)
    reports, failed = [], []
    try:
        for v in videos:
            try:
                reports.append(translate_video(v, output / v.name, engine, **video_kw))
            except (InputError, PipelineError) as exc:  # a bad video; the others still go
                failed.append(v.name)
                print(f"streamgan: error: {exc}", file=sys.stderr)
    finally:
        if created and not any(output.iterdir()):
            output.rmdir()
    if failed:
        raise PipelineError(f"{len(failed)} of {len(videos)} videos failed ({', '.join(failed)}); "
                            f"{len(reports)} written to {output}")
    return {"videos": reports}


def video_kwargs(args) -> dict:
    """translate_video keyword arguments from the video options."""
    return dict(codec=args.codec, crf=args.crf, preset=args.preset, pix_fmt=args.pix_fmt, start=args.start,
                duration=args.duration, keep_partial=args.keep_partial, side_by_side=args.side_by_side,
                overwrite=args.overwrite, temporal=args.temporal, temporal_strength=args.temporal_strength,
                hdr=args.hdr, tonemap=args.tonemap, deinterlace=args.deinterlace)


# options that only mean something for videos: (dest, flag)
VIDEO_ONLY = (("codec", "--codec"), ("crf", "--crf"), ("preset", "--preset"), ("pix_fmt", "--pix-fmt"),
              ("start", "--start"), ("duration", "--duration"), ("keep_partial", "--keep-partial"),
              ("side_by_side", "--side-by-side"), ("temporal", "--temporal"),
              ("temporal_strength", "--temporal-strength"), ("stats_ema", "--stats-ema"), ("hdr", "--hdr"),
              ("tonemap", "--tonemap"), ("deinterlace", "--deinterlace"))


# options that only mean something for live runs: (dest, flag)
LIVE_ONLY = (("timeout", "--timeout"), ("reconnect", "--reconnect"), ("listen", "--listen"),
             ("container", "--format"), ("bitrate", "--bitrate"), ("skip_similar", "--skip-similar"),
             ("stats_json", "--stats-json"))


def _say_left_out(folder: Path, quiet: bool) -> None:
    """A note naming what in ``folder`` is not translated: folders in it (not walked) and files
    that are neither images nor videos (hidden ones aside)."""
    from .images import some
    left = sorted(f"{q.name}/" if q.is_dir() else q.name for q in folder.iterdir()
                  if not q.name.startswith(".") and (q.is_dir() or not (is_video(q) or is_image(q))))
    if left and not quiet:
        print(f"note: left out of {folder}: {some(left)} ({len(left)}: folders in it are not walked, and only "
              "images and videos are translated)", file=sys.stderr)


def prepare_run(args, defaults: dict) -> Callable[[Engine, TranslateOptions], dict]:
    """Check ``streamgan run``'s input, output and options before any work (the engine is not
    open yet): a mistake is one line and nothing is written. Returns the work to do with the
    engine: a video file, a folder of videos, or images. ``defaults``: the parser's, to tell the
    options a user set (those that cannot apply to images are named in one note)."""
    from .images import image_outputs, translate_images
    for name, value, verb in (("input", args.input, "read"), ("output", args.output, "written")):
        if value == "-":  # (a pipe cannot be sought, nor written to a temporary name and renamed)
            raise OptionError(f"--{name} -: standard {name} is not {verb}",
                              hint=f"name a file, or a stream: --{name} udp://127.0.0.1:5000 (see docs/live.md)")
    inp, out = Path(args.input), Path(args.output)
    progress, quiet = not args.no_progress, args.quiet
    if args.temporal_strength is not None and not 0 <= args.temporal_strength < 1:
        raise OptionError("--temporal-strength must be in [0, 1)")
    if args.stats_ema is not None and not 0 <= args.stats_ema < 1:
        raise OptionError("--stats-ema must be in [0, 1)")
    from ..live.run import is_live_run, prepare_live
    if is_live_run(args):
        return prepare_live(args, defaults)
    for dest, flag in LIVE_ONLY:
        if getattr(args, dest) != defaults.get(dest):
            print(f"note: {flag} applies to live runs (a URL in or out, a camera, --live); ignored", file=sys.stderr)
    video_kw = dict(progress=progress, quiet=quiet, **video_kwargs(args))
    if is_url(args.input) or (inp.is_file() and not is_image(inp)):  # a video file (or one served over HTTP)
        inp = args.input if is_url(args.input) else inp
        if out.is_dir():  # like cp: a file into a folder keeps its name
            out = out / (inp.rsplit("/", 1)[-1] if isinstance(inp, str) else inp.name)
        if is_image(out):
            raise OutputError(f"{out}: a video is written to a video file", hint="name it .mp4, .mkv, .mov, ...")
        container = muxer_for(out)
        if container is None:
            raise OutputError(f"{out}: no container is named by this suffix",
                              hint="name the output .mp4, .mkv, .mov, .webm, ...")
        encoder(args.codec, args.crf, args.preset, args.pix_fmt, container=container)
        check_output(out, [inp] if isinstance(inp, Path) else [], args.overwrite)
        return lambda engine, options: translate_video(inp, out, engine, options=options, **video_kw)
    files = listing(args.input)
    if files is not None and inp.is_dir():
        _say_left_out(inp, quiet)
    if files is not None:  # a folder or a glob: its videos, its images, or both
        videos = [p for p in files if is_video(p)]
        if videos:
            encoder(args.codec, args.crf, args.preset, args.pix_fmt)
            folder_output(out)
            if not any(is_image(p) for p in files):
                return lambda engine, options: translate_folder(videos, out, engine, options=options, **video_kw)
            for p in [*expand_images(args.input), *videos] if out.is_dir() else []:  # a folder of both:
                check_output(out / p.name, [p], args.overwrite)  # every output checked before any work

            def both(engine, options) -> dict:  # the images, then the videos, into one folder
                images = translate_images(args.input, out, engine, options, overwrite=args.overwrite,
                                          progress=progress, quiet=quiet)
                return {"images": images, **translate_folder(videos, out, engine, options=options, **video_kw)}
            return both
    if not inp.exists() and files is None:
        raise InputError(f"{inp}: no such file")
    inputs = expand_images(args.input)  # clear error for empty folders and patterns
    image_outputs(inputs, out, create=False)
    unused = [flag for dest, flag in VIDEO_ONLY if getattr(args, dest) != defaults.get(dest)]
    if unused:
        print(f"note: {', '.join(unused)} {'does' if len(unused) == 1 else 'do'} not apply to images; ignored",
              file=sys.stderr)
    return lambda engine, options: translate_images(args.input, out, engine, options, overwrite=args.overwrite,
                                                    progress=progress, quiet=quiet)
