"""AOTInductor packages (.pt2): compiled ahead of time for the CPU or the GPU they were built on."""

import json
from pathlib import Path

import torch
from torch import nn

from .base import Engine, EngineMeta
from .errors import EngineError
from .export import export_program

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def build_pt2(module: nn.Module, path: Path, meta: EngineMeta, device: torch.device, fp16: bool = False,
              shape: tuple[int, int, int] | None = None, bf16: bool = False) -> Path:
    """Export and compile into ``path``; the metadata travels inside. Dynamic batch/H/W with the
    statistics inputs by default; ``shape`` (batch, H, W): that one shape, the plain generator
    channels-last (NHWC convolutions, no statistics), the fastest package for a known frame size.

    fp16 (CUDA only) halves weights and activations, statistics stay fp32. It is off by default:
    with torch 2.11 on an H100 loading such a package crashed (segfault in aoti_load_package).
    bf16 (CPU): bf16 weights and activations, statistics fp32 (what the CPU's torch and OpenVINO
    run where the CPU has native bf16).
    """
    fp16 = fp16 and device.type == "cuda"
    bf16 = bf16 and not fp16
    precision = "fp16" if fp16 else "bf16" if bf16 else "fp32"
    fixed = (shape[0], meta.in_channels, shape[1], shape[2]) if shape else None
    program, width = export_program(module, meta.size_multiple, device, dtype=DTYPES[precision], shape=fixed)
    if shape:
        meta.shapes = {k: list(shape[1:]) for k in ("min", "opt", "max")}
        meta.max_batch = shape[0]
        meta.extra = {**meta.extra, "layout": "channels_last"}
    meta.stats_width, meta.backend, meta.precision = width, "aotinductor", precision
    meta.extra = {**meta.extra, "device": str(device),
                  "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}
    try:
        torch._inductor.aoti_compile_and_package(
            program, package_path=str(path),
            inductor_configs={"aot_inductor.metadata": {"streamgan": meta.to_json()}})
    except Exception as exc:
        raise EngineError(f"AOTInductor compilation failed: {str(exc).splitlines()[0][:200]}") from None
    return path


def read_pt2_meta(path: Path) -> dict:
    return json.loads(_load(path).get_metadata().get("streamgan", "{}"))


def _load(path: Path):
    try:
        return torch._inductor.aoti_load_package(str(path))
    except Exception as exc:
        raise EngineError(f"{path}: not a loadable AOTInductor package for this machine "
                          f"({str(exc).splitlines()[0][:160]})",
                          hint="rebuild it here with streamgan build") from None


class AOTIEngine(Engine):
    def __init__(self, path: str | Path, device=None):
        path = Path(path)
        self.runner = _load(path)
        md = self.runner.get_metadata()
        key = md.get("AOTI_DEVICE_KEY", "cpu")
        if device is not None and torch.device(device).type != ("cuda" if key.startswith("cuda") else "cpu"):
            raise EngineError(f"{path}: built for {key}, asked to run on {device}", hint="rebuild for that device")
        self.device = torch.device("cuda" if key.startswith("cuda") else "cpu")
        self.meta = EngineMeta.from_dict(json.loads(md.get("streamgan", "{}")))
        self.meta.backend = "aotinductor"
        self.dtype = DTYPES.get(self.meta.precision, torch.float32)

    def _fixed(self, x: torch.Tensor) -> torch.Tensor:
        """A fixed-shape package: smaller frames padded (edge) to its shape and cropped back,
        batches split to its batch size; anything larger is one clear error."""
        (h, w), n = self.meta.shapes["max"], self.meta.max_batch or x.shape[0]
        xh, xw = x.shape[-2:]
        if xh > h or xw > w or x.shape[0] % n:
            raise EngineError(f"this .pt2 was built for batches of {n} at {h}x{w}, got {list(x.shape)}",
                              hint="build it for this size (--static --shapes HxW) or without --static")
        if (xh, xw) != (h, w):
            x = torch.nn.functional.pad(x.float(), (0, w - xw, 0, h - xh), mode="replicate").to(x.dtype)
        with torch.inference_mode():
            outs = [self.runner(x[i:i + n]) for i in range(0, x.shape[0], n)]
        y = torch.cat([o[0] if isinstance(o, (list, tuple)) else o for o in outs])
        return y[..., :xh, :xw]

    def _run(self, x, stats, mix, collect=False):
        if self.meta.shapes:
            return self._fixed(x), None
        with torch.inference_mode():
            if self.meta.stats_width:
                if stats is None:
                    stats = torch.zeros(x.shape[0], self.meta.stats_width, device=self.device)
                out = self.runner(x, stats, torch.tensor([mix], device=self.device))
                return out[0], out[1]
            out = self.runner(x)
            return (out[0] if isinstance(out, (list, tuple)) else out), None
