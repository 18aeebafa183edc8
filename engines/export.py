"""Export an nn.Module generator: ONNX (opset >= 17) and torch.export programs for AOTInductor.

A generator with per-sample normalisation layers (StatNorm) is exported as StatsGenerator:
inputs (image, norm_stats, stats_mix), outputs (output, own_stats), so every artifact can tile
with one frame's thumbnail statistics. Otherwise: image -> output.
"""

import copy
import io
import json
import warnings
from pathlib import Path

import torch
from torch import nn

from .base import EngineMeta
from .errors import EngineError
from .normstats import StatsGenerator, stats_width

OPSET = 17


def exportable(module: nn.Module, fp16: bool = False, stats: bool = True,
               dtype: torch.dtype | None = None) -> tuple[nn.Module, int]:
    """(module to trace, stats width): a CPU copy in eval mode (``fp16``: half, or in ``dtype``),
    wrapped for statistics if needed (``stats=False``: never; its norms export as InstanceNormalization)."""
    m = copy.deepcopy(module).cpu().eval()
    dtype = torch.float16 if fp16 else dtype
    if dtype is not None:
        m = m.to(dtype)
    width = stats_width(m) if stats else 0
    return (StatsGenerator(m) if width else m), width


def example_inputs(width: int, shape: tuple[int, int, int, int], dtype=torch.float32) -> tuple:
    x = (torch.rand(shape) * 2 - 1).to(dtype)
    if not width:
        return (x,)
    return x, torch.zeros(shape[0], width), torch.zeros(1)


def io_names(width: int) -> tuple[list[str], list[str]]:
    if width:
        return ["image", "norm_stats", "stats_mix"], ["output", "own_stats"]
    return ["image"], ["output"]


def export_onnx(module: nn.Module, path: Path, meta: EngineMeta, *, shape=(1, 3, 64, 64), dynamic: bool = True,
                fp16: bool = False, opset: int = OPSET, stats: bool = True) -> bytes:
    """Write an ONNX file (metadata under key 'streamgan'); returns its bytes. Checked with onnx.checker.

    fp16: a half-precision graph whose normalisation statistics stay fp32 (casts), as TensorRT 11's
    strongly typed networks need. stats=False: the plain graph (image -> output), whose instance
    norms are single InstanceNormalization ops that runtimes fuse (OpenVINO: one MVN kernel).
    """
    import onnx
    if opset < 17:
        raise EngineError("ONNX export needs opset >= 17")
    m, width = exportable(module, fp16, stats)
    args = example_inputs(width, shape, torch.float16 if fp16 else torch.float32)
    inputs, outputs = io_names(width)
    axes = {"image": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch", 2: "height", 3: "width"}}
    if width:
        axes.update(norm_stats={0: "batch"}, own_stats={0: "batch"})
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(m, args, buf, dynamo=False, input_names=inputs, output_names=outputs,
                              dynamic_axes=axes if dynamic else None, opset_version=opset,
                              do_constant_folding=True)
    except Exception as exc:
        raise EngineError(f"the model does not export to ONNX: {str(exc).splitlines()[0][:200]}") from None
    model = onnx.load_from_string(buf.getvalue())
    meta.stats_width = width
    meta.precision = "fp16" if fp16 else "fp32"
    for key, value in (("streamgan", meta.to_json()), ("input_range", json.dumps(list(meta.input_range)))):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    path.write_bytes(data)
    return data


class ChannelsLast(nn.Module):
    """The generator with channels-last weights and input, so compiled convolutions run NHWC."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module.to(memory_format=torch.channels_last)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.module(image.contiguous(memory_format=torch.channels_last)).contiguous()


def export_program(module: nn.Module, multiple: int, device: torch.device, max_side: int = 4096,
                   max_batch: int = 64, dtype: torch.dtype = torch.float32,
                   shape: tuple[int, int, int, int] | None = None):
    """torch.export with dynamic batch and H, W in multiples of ``multiple`` (``dtype`` fp16/bf16:
    weights and image in it, statistics still fp32). ``shape`` (N, C, H, W): one fixed shape
    instead, the plain generator (image -> output, no statistics) channels-last end to end."""
    from torch.export import Dim
    if shape is not None:
        m, _ = exportable(module, stats=False, dtype=dtype)
        x = example_inputs(0, shape, dtype)[0]
        try:
            return torch.export.export(ChannelsLast(m).to(device), (x.to(device),)), 0
        except Exception as exc:
            raise EngineError(f"the model does not export with torch.export: {str(exc).splitlines()[0][:200]}") \
                from None
    m, width = exportable(module, dtype=dtype)
    m = m.to(device)
    side = 2 * multiple
    args = tuple(a.to(device) for a in example_inputs(width, (2, 3, side, side), dtype))
    b = Dim("batch", min=1, max=max_batch)
    h = multiple * Dim("h_blocks", min=1, max=max_side // multiple)
    w = multiple * Dim("w_blocks", min=1, max=max_side // multiple)
    dyn = [{0: b, 2: h, 3: w}]
    if width:
        dyn += [{0: b}, None]
    try:
        return torch.export.export(m, args, dynamic_shapes=tuple(dyn)), width
    except Exception as exc:
        raise EngineError(f"the model does not export with torch.export: {str(exc).splitlines()[0][:200]}") \
            from None
