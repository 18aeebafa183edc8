"""Open any engine file by its suffix; generator checkpoints become torch engines."""

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from engines.base import Engine, EngineMeta
from engines.receptive import receptive_radius

from .checkpoints import load_generator
from .errors import EngineError, InputError, OptionError

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".safetensors")


def generator_meta(model: nn.Module) -> EngineMeta:
    """Engine metadata of a loaded generator (architecture, ranges, size multiple, radius)."""
    info = model.info
    return EngineMeta(arch=info.arch, input_range=tuple(info.input_range),
                      output_range=(-1.0, 1.0), in_channels=info.input_nc, out_channels=info.output_nc,
                      size_multiple=info.size_multiple, receptive_radius=receptive_radius(model),
                      extra={"name": info.name, "direction": info.direction, "norm": info.norm,
                             "ngf": info.ngf, "depth": info.depth})


def parse_range(text: str | None) -> tuple[float, float] | None:
    """'0,1' -> (0.0, 1.0); a clear error for anything else."""
    if text is None:
        return None
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise OptionError(f"--range {text!r}: expected LO,HI such as -1,1 or 0,1") from None
    if not lo < hi:
        raise OptionError(f"--range {text!r}: LO must be below HI")
    return lo, hi


def _open_checkpoint(path: Path, device, opts: dict) -> Engine:
    from engines.torch_backend import TorchEngine
    model = load_generator(path, arch=opts.get("arch"), bn_stats=opts.get("bn_stats", "batch"),
                           dropout=opts.get("dropout", False))
    meta = generator_meta(model)
    if opts.get("input_range"):
        meta.input_range = meta.output_range = opts["input_range"]
    return TorchEngine(model, meta, device=device, precision=opts.get("precision") or "auto",
                       compile=opts.get("compile", False))


def _open_onnx(path: Path, device, opts: dict) -> Engine:
    from engines.onnx_backend import OnnxEngine
    return OnnxEngine(path, device=device, input_range=opts.get("input_range"), consts=opts.get("consts"))


def _open_pt2(path: Path, device, opts: dict) -> Engine:
    from engines.aoti_backend import AOTIEngine
    return AOTIEngine(path, device=device)


def _open_plan(path: Path, device, opts: dict) -> Engine:
    from engines.tensorrt_backend import TensorRTEngine
    return TensorRTEngine(path, device=device)


BACKENDS: dict[str, Callable[[Path, object, dict], Engine]] = {
    **{s: _open_checkpoint for s in CHECKPOINT_SUFFIXES},
    ".onnx": _open_onnx, ".pt2": _open_pt2, ".plan": _open_plan, ".engine": _open_plan,
}


def open_engine(path: str | Path, device: str | torch.device | None = None, **opts) -> Engine:
    """The engine for ``path``: .plan TensorRT, .onnx ONNX Runtime, .pt2 AOTInductor, .pth/.safetensors torch.

    opts: arch, bn_stats, dropout, precision and compile (torch), input_range, consts (ONNX).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such engine or checkpoint")
    opener = BACKENDS.get(path.suffix.lower())
    if opener is None:
        raise EngineError(f"{path}: unknown engine type {path.suffix!r}",
                          hint=f"expected one of {', '.join(BACKENDS)}")
    return opener(path, device, opts)
