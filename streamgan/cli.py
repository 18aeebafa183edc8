"""Command line: parse arguments, call library functions, print one line on user errors."""

import argparse
import json
import sys
from pathlib import Path

from .errors import EngineError, OptionError, StreamganError


def _engine_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--engine", required=required, help=".pth/.safetensors checkpoint, .onnx, .xml, .pt2 or .plan")
    p.add_argument("--backend", choices=("auto", "torch", "openvino", "onnxruntime"), default="auto",
                   help="runtime for checkpoints and .onnx (auto: on a CPU the one measured fastest, remembered)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when present)")
    p.add_argument("--arch", default=None, help="override the architecture read off a checkpoint")
    p.add_argument("--bn-stats", choices=("batch", "running"), default="batch",
                   help="batch-norm statistics: per image (official test.py) or stored running ones")
    p.add_argument("--dropout", action="store_true", help="keep dropout active (stochastic output)")
    p.add_argument("--precision", choices=("auto", "fp32", "fp16", "bf16"), default="auto",
                   help="torch / OpenVINO precision (auto: bf16 where the CPU has it and it stays >= 40 dB)")
    p.add_argument("--compile", action="store_true",
                   help="torch backend: run through torch.compile (slow first frame, faster after)")
    p.add_argument("--range", dest="input_range", default=None,
                   help="value range LO,HI of a third-party ONNX model (default -1,1 or its metadata)")
    p.add_argument("--const", action="append", default=[], metavar="NAME=VALUES",
                   help="constant value(s) for an extra ONNX input, comma separated")


def _tile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tile", type=int, default=None, help="tile size in px; 0 = full frame (default: auto)")
    p.add_argument("--overlap", type=int, default=None, help="tile overlap in px (default: from receptive field)")
    p.add_argument("--batch", type=int, default=4, help="tiles per inference call")
    p.add_argument("--norm-stats", choices=("tile", "thumbnail", "exact"), default=None,
                   help="normalisation statistics when tiling: per tile, from a thumbnail (default), or exact "
                        "(full-frame result, layer by layer; checkpoints with --backend torch)")
    p.add_argument("--thumbnail", type=int, default=1024,
                   help="long side of the statistics thumbnail (frames up to this size get exact statistics)")
    p.add_argument("--window", choices=("cosine", "linear"), default="cosine", help="blend window")


def engine_kwargs(args) -> dict:
    """open_engine keyword arguments from the engine options (everything but the path)."""
    from .engine import parse_range
    consts = {}
    for item in args.const:
        name, sep, values = item.partition("=")
        if not sep:
            raise OptionError(f"--const {item!r}: expected NAME=VALUES")
        try:
            consts[name] = [float(v) for v in values.split(",")]
        except ValueError:
            raise OptionError(f"--const {item!r}: values must be numbers") from None
    backend = args.backend
    if getattr(args, "norm_stats", None) == "exact" and backend == "auto":
        backend = "torch"  # exact tiles run the torch module layer by layer
    return dict(device=args.device, backend=backend, arch=args.arch, bn_stats=args.bn_stats, dropout=args.dropout,
                precision=args.precision, compile=args.compile, input_range=parse_range(args.input_range),
                consts=consts)


def open_engine_from_args(args):
    from .engine import open_engine
    return open_engine(args.engine, **engine_kwargs(args))


def translate_options(args, **extra):
    from .translate import TranslateOptions
    return TranslateOptions(tile=args.tile, overlap=args.overlap, batch=args.batch,
                            norm_stats=args.norm_stats, thumbnail=args.thumbnail, window=args.window,
                            **extra)


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
    from .video_run import run_any
    ema = args.stats_ema if args.stats_ema is not None else (0.8 if args.temporal != "off" else 0.0)
    options = translate_options(args, stats_ema=ema)
    if args.ray is not None:
        from .ray_run import run_ray_args
        report = run_ray_args(args, engine_kwargs(args), options)
    else:
        with open_engine_from_args(args) as engine:
            report = run_any(args, engine, options)
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2, default=str))
    return 0


def _commands() -> dict:
    """Subcommands defined next to the library code they call: name -> (handler, help)."""
    from .bench import cmd_bench
    from .build import cmd_build
    from .demo import cmd_demo
    from .temporal_eval import cmd_eval_temporal
    from .train.cli import cmd_train
    from .webcam import cmd_webcam
    return {"demo": (cmd_demo, "turn a synthetic day clip into night with the bundled model (offline)"),
            "bench": (cmd_bench, "latency/throughput of engines through the pipeline stages"),
            "webcam": (cmd_webcam, "live filter on a camera (or a file played in real time)"),
            "eval-temporal": (cmd_eval_temporal, "warping error (flicker) of translated videos"),
            "build": (cmd_build, "compile a checkpoint or ONNX model to .onnx, .pt2 or .plan"),
            "train": (cmd_train, "train a CycleGAN or pix2pix generator")}


def build_parser() -> argparse.ArgumentParser:
    from . import __doc__ as about
    from . import __version__
    parser = argparse.ArgumentParser(prog="streamgan", description=about)
    parser.add_argument("--version", action="version", version=f"streamgan {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="describe a checkpoint or engine file")
    p.add_argument("path")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_info)

    p = sub.add_parser("run", help="translate images, a folder, a glob or a video")
    _engine_args(p)
    p.add_argument("--input", required=True, help="image, folder, glob or video file")
    p.add_argument("--output", required=True, help="output file or folder")
    p.add_argument("--overwrite", action="store_true")
    _tile_args(p)
    from .video_run import add_video_args
    add_video_args(p)
    p.add_argument("--report", default=None, help="write the run report as JSON here")
    p.set_defaults(fn=cmd_run)

    for name, (fn, help_) in _commands().items():
        p = sub.add_parser(name, help=help_)
        fn.add_args(p)
        p.set_defaults(fn=fn)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except (StreamganError, EngineError) as exc:
        hint = f" (hint: {exc.hint})" if getattr(exc, "hint", None) else ""
        print(f"streamgan: error: {exc}{hint}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        print("streamgan: interrupted; nothing was written at the output path", file=sys.stderr)
        return 130
