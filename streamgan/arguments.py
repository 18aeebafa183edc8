"""Argument groups and their conversion to library calls, shared by run, webcam and bench."""

import argparse

from .errors import OptionError
from .translate.engine import BACKEND_CHOICES


def _engine_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--engine", required=required, help=".pth/.safetensors checkpoint, .onnx, .xml, .pt2 or .plan")
    p.add_argument("--backend", choices=BACKEND_CHOICES, default="auto",
                   help="runtime for checkpoints and .onnx (default auto: on a CPU the one measured fastest, "
                        "remembered)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when present)")
    p.add_argument("--arch", default=None, help="override the architecture read off a checkpoint")
    p.add_argument("--bn-stats", choices=("batch", "running"), default="batch",
                   help="batch-norm statistics: per image (default, as the official test.py) or the stored ones")
    p.add_argument("--dropout", action="store_true", help="keep dropout active (stochastic output)")
    p.add_argument("--precision", choices=("auto", "fp32", "fp16", "bf16"), default="auto",
                   help="torch / OpenVINO precision (default auto: fp16 on CUDA; on a CPU bf16 or int8 where "
                        "faster than fp32 and the run's frames stay >= 40 dB from it; int8 is calibrated "
                        "on them)")
    p.add_argument("--compile", action="store_true",
                   help="torch backend: run through torch.compile (slow first frame, faster after)")
    p.add_argument("--range", dest="input_range", default=None,
                   help="value range LO,HI of a third-party ONNX model (default -1,1 or its metadata)")
    p.add_argument("--const", action="append", default=[], metavar="NAME=VALUES",
                   help="constant value(s) for an extra ONNX input, comma separated")


def _tile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tile", type=int, default=None, help="tile size in px; 0 = full frame (default: auto)")
    p.add_argument("--overlap", type=int, default=None, help="tile overlap in px (default: from receptive field)")
    p.add_argument("--batch", type=int, default=4, help="tiles per inference call (default 4)")
    p.add_argument("--norm-stats", choices=("tile", "thumbnail", "exact"), default=None,
                   help="normalisation statistics when tiling: per tile, from a thumbnail, or exact (the "
                        "full-frame result, layer by layer; checkpoints only). Default: exact for checkpoints "
                        "on a CPU, thumbnail otherwise")
    p.add_argument("--thumbnail", type=int, default=1024,
                   help="long side of the statistics thumbnail (default 1024; frames up to this size get exact "
                        "statistics)")
    p.add_argument("--window", choices=("cosine", "linear"), default="cosine",
                   help="tile blend window (default cosine)")


def engine_kwargs(args) -> dict:
    """open_engine keyword arguments from the engine options (everything but the path), checked."""
    from .options import check_device
    from .translate.engine import parse_range
    check_device(args.device)
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
    on_gpu = args.device is not None and str(args.device).startswith("cuda")
    if backend == "openvino" and (args.dropout or args.compile or args.precision == "fp16" or on_gpu):
        raise OptionError("--backend openvino runs on the CPU in fp32 or bf16, without --dropout or --compile")
    return dict(device=args.device, backend=backend, arch=args.arch, bn_stats=args.bn_stats, dropout=args.dropout,
                precision=args.precision, compile=args.compile, input_range=parse_range(args.input_range),
                consts=consts)


def check_engine_args(args, paths: list[str] | None = None) -> None:
    """The engine files (``--engine``, or ``paths``) and options, checked before any work."""
    from .translate.engine import check_engine
    kw = engine_kwargs(args)
    for path in paths or [args.engine]:
        check_engine(path, kw["backend"])


def open_engine_from_args(args, **extra):
    from .translate.engine import open_engine
    return open_engine(args.engine, **engine_kwargs(args), **extra)


def translate_options(args, **extra):
    from .translate.translator import TranslateOptions
    return TranslateOptions(tile=args.tile, overlap=args.overlap, batch=args.batch,
                            norm_stats=args.norm_stats, thumbnail=args.thumbnail, window=args.window,
                            **extra)


def parse_size(text: str | None) -> tuple[int, int] | None:
    """'WxH' (--size, --max-size) -> (width, height); None stays None."""
    if text is None:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise OptionError(f"--size {text!r}: expected WxH such as 1280x720") from None
    if not (0 < w <= 16384 and 0 < h <= 16384):
        raise OptionError(f"--size {text!r}: width and height must be 1 to 16384")
    return w, h
