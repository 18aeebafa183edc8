"""Command line: parse arguments, call library functions, print one line on user errors.

The ``streamgan`` command and the commands that are front-ends only (bench, demo, doctor, info);
each other command's handler lives with its stage (``COMMANDS``: module under streamgan, function)
and is imported only when that command runs. Imports every stage; no stage imports it."""

import argparse
import json
import os
import sys
from pathlib import Path

from ..arguments import (
    _engine_args,
    _tile_args,
    check_engine_args,
    engine_kwargs,
    open_engine_from_args,
    translate_options,
)
from ..errors import EngineError, Interrupted, StreamganError


def cmd_info(args) -> int:
    from .info import info
    facts = info(args.path)
    print(json.dumps(facts, indent=2, default=str) if args.json else _fmt(facts))
    return 0


def _fmt(d: dict, indent: str = "") -> str:
    lines = []
    for k, v in d.items():
        if isinstance(v, dict) and v:
            lines.append(f"{indent}{k}:")
            lines.append(_fmt(v, indent + "  "))
        else:
            lines.append(f"{indent}{k}: {v}")
    return "\n".join(lines)


def cmd_run(args) -> int:
    from ..offline.video import prepare_run
    from ..options import check_report
    ema = args.stats_ema if args.stats_ema is not None else (0.8 if args.temporal != "off" else 0.0)
    options = translate_options(args, stats_ema=ema)
    options.check()
    check_report(args.report, args.overwrite)
    if args.ray is not None:
        from ..scale.ray import run_ray_args
        report = run_ray_args(args, engine_kwargs(args), options)
    else:
        check_engine_args(args)
        work = prepare_run(args, args.defaults)
        with open_engine_from_args(args) as engine:
            report = work(engine, options)
    if args.report:
        from engines.cache import write_json
        write_json(Path(args.report), json.loads(json.dumps(report, default=str)))
    return 0


# Subcommands defined next to the library code they call: name -> (module, handler, help). Only
# the module of the command being run is imported (the others can import torch; ``run`` with an
# ONNX model on a CPU never needs it).
COMMANDS = {
    "demo": ("cli.demo", "cmd_demo", "turn a synthetic day clip into night with the bundled model (offline)"),
    "bench": ("cli.bench", "cmd_bench", "latency/throughput of engines through the pipeline stages"),
    "webcam": ("live.webcam", "cmd_webcam", "live filter on a camera (or a file played in real time)"),
    "serve": ("live.serve", "cmd_serve", "the live filter in a browser over WebRTC (WHIP/WHEP too)"),
    "eval-temporal": ("temporal.evaluate", "cmd_eval_temporal", "warping error (flicker) of translated videos"),
    "build": ("translate.build", "cmd_build", "compile a checkpoint or ONNX model to .onnx, .xml, .pt2 or .plan"),
    "train": ("train.cli", "cmd_train", "train a CycleGAN or pix2pix generator"),
    "doctor": ("cli.doctor", "cmd_doctor", "what this machine can run and how fast (paste it into a bug report)"),
}


EPILOGS = {"webcam": "keys in the window: q quit, s side by side, t temporal smoothing on/off, space pause"}


def _handler(name: str):
    import importlib
    module, fn, _ = COMMANDS[name]
    return getattr(importlib.import_module(f"streamgan.{module}"), fn)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s arguments are defined in full (all of them when None)."""
    from .. import __doc__ as about
    from .. import __version__
    parser = argparse.ArgumentParser(prog="streamgan", description=about)
    parser.add_argument("--version", action="version", version=f"streamgan {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="describe a checkpoint or engine file")
    p.add_argument("path", help="checkpoint (.pth/.safetensors) or engine (.onnx, .xml, .pt2, .plan)")
    p.add_argument("--json", action="store_true", help="print the facts as JSON")
    p.set_defaults(fn=cmd_info)

    p = sub.add_parser("run", help="translate images, a folder, a glob or a video")
    _engine_args(p)
    p.add_argument("--input", required=True,
                   help="image, folder, glob, video file, stream URL (rtsp, rtmp, udp, tcp, http(s), srt) or camera")
    p.add_argument("--output", "--out", required=True,
                   help="output file or folder (a folder for several inputs; a video into a folder keeps its name)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    _tile_args(p)
    from ..offline.video import add_video_args
    add_video_args(p)
    p.add_argument("--report", default=None, help="write the run report as JSON here")
    p.set_defaults(fn=cmd_run, defaults={a.dest: a.default for a in p._actions})

    for name, (_, _, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_, epilog=EPILOGS.get(name),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if command in (None, name):
            fn = _handler(name)
            fn.add_args(p)
            p.set_defaults(fn=fn)
    return parser


def _keep_freed_memory() -> None:
    """glibc: keep freed frame-sized buffers in the process for the next frame instead of giving
    them back to the kernel and faulting them in again (a 1080p float image is 25 MB; measured on
    the 640x360 style-transfer run: a third fewer page faults, ~0.1 s of 2.7 s). Linux/glibc only."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc
        return
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    mallopt(m_mmap_threshold, 32 << 20)  # glibc's largest; blocks below it come from the heap
    mallopt(m_trim_threshold, 1 << 30)
    mallopt(m_top_pad, 64 << 20)


def main(argv: list[str] | None = None) -> int:
    own_process = argv is None  # the streamgan command, not a caller's process
    if own_process:
        _keep_freed_memory()
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS or command in ("run", "info") else None)
    args = parser.parse_args(argv)
    code = _call(args, own_process)
    if own_process and sys.getprofile() is None and sys.gettrace() is None:  # (a profiler, a debugger or a
        _leave(code)  # coverage tracer writes its results once the process's code has returned)
    return code


def _leave(code: int):
    """The streamgan command's end, once its outputs are written, closed and renamed: threads are
    joined and Python's exit handlers run as at any exit, output is flushed, and the process ends
    without unloading the native libraries (OpenVINO's teardown alone took 0.10-0.14 s of every
    run's wall clock, ONNX Runtime's, OpenCV's and PyAV's another 0.05)."""
    import atexit
    import threading
    shutdown = getattr(threading, "_shutdown", None)  # what interpreter exit does first: join threads
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader gone, a stream closed: nothing more to say
            pass
    os._exit(code)


def _call(args, own_process: bool) -> int:
    try:
        return args.fn(args)
    except BrokenPipeError:  # the reader went away (`streamgan info G | head`): stop quietly, as cat does
        if own_process:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Interrupted as exc:  # a live run, its outputs finished
        print(f"streamgan: {exc}", file=sys.stderr)
        return exc.exit_code
    except (StreamganError, EngineError) as exc:
        hint = f" (hint: {exc.hint})" if getattr(exc, "hint", None) else ""
        print(f"streamgan: error: {exc}{hint}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        print("streamgan: interrupted; nothing was written at the output path", file=sys.stderr)
        if own_process:  # the partial output is already gone: leave without finalising the native
            # libraries' threads (torn down mid-work, 1 run in ~10 of the Ctrl-C test ended with
            # SIGABRT's or SIGINT's own status after this line instead of 130)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        return 130
