"""The torch backend: eager on CPU (bf16 where native and accurate), Triton-fused on CUDA."""

import copy
import dataclasses
import os

import torch
from torch import nn

from .base import Engine, EngineMeta
from .cache import cache_dir
from .cpuinfo import cpu_has_fast_bf16
from .errors import EngineError
from .metrics import PROBE_SIDE, psnr, smooth_image
from .normstats import given_stats, pack, stats_width
from .precision import best_ms, measured_once, probe_verdict


def bf16_probe(module: nn.Module, meta: EngineMeta) -> dict:
    """``precision.probe_verdict`` of ``module`` in bf16 against itself in fp32 on an image-like
    probe (both timed: a probe that finds bf16 unfaithful may be overruled by the run's frames,
    one that finds it slower is not)."""
    side = max(PROBE_SIDE, meta.size_multiple)
    x = smooth_image(meta.in_channels, side, side, torch.Generator().manual_seed(0))
    low = copy.deepcopy(module).to(torch.bfloat16)
    xb = x.to(torch.bfloat16)
    with torch.inference_mode():
        ref = module(x)
        lo, hi = meta.output_range
        db = psnr(low(xb), ref, hi - lo)
        return probe_verdict(best_ms({"bf16": lambda: low(xb), "fp32": lambda: module(x)}, rounds=2), {"bf16": db})


def bf16_verdict(module: nn.Module, meta: EngineMeta) -> dict:
    """``bf16_probe`` measured once per model (its weights), torch version and CPU: runs started
    together, and every later run, make the same choice."""
    import hashlib

    from .fastest import machine_tag
    digest = hashlib.sha256()
    for name, t in module.state_dict().items():
        digest.update(name.encode() + t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    key = f"{digest.hexdigest()[:24]}|{meta.in_channels}|{torch.__version__}|{machine_tag()}"
    return measured_once(cache_dir("choices") / "torch_precision.json", key, lambda: bf16_probe(module, meta))


def bf16_worth_it(module: nn.Module, meta: EngineMeta) -> bool:
    """bf16 on this CPU: it has native bf16, and the probe finds it faithful and faster."""
    return cpu_has_fast_bf16() and bf16_verdict(module, meta)["precision"] == "bf16"


class TorchEngine(Engine):
    """Runs an nn.Module. precision: "auto" (CPU: bf16 weights and activations where the CPU has
    native bf16 and, on a probe, the output stays >= 40 dB from fp32 and runs faster, else fp32;
    CUDA: fp16), "fp32", "fp16"
    (CUDA) or "bf16". ``fuse`` (default: on CUDA) swaps in the Triton kernels; ``compile`` runs
    the module through torch.compile instead. Normalisation statistics are always fp32.

    On CUDA, ``layout`` "nhwc" (default) runs the fused generator channels-last end to end (cuDNN's
    NHWC tensor-core convolutions, ``kernels.norm_nhwc`` between them), "nchw" the NCHW kernels;
    ``graphs`` (default on) replays each input shape as a CUDA graph (``engines.cudagraph``) when no
    statistics are given or collected."""

    def __init__(self, module: nn.Module, meta: EngineMeta, device: str | torch.device | None = None,
                 precision: str = "auto", fuse: bool | None = None, compile: bool = False,
                 layout: str = "nhwc", graphs: bool = True):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.module = module.to(self.device).eval()
        fused = False
        self.memory_format = torch.contiguous_format
        self.graphed = None
        if self.device.type == "cuda":
            precision = "fp16" if precision == "auto" else precision
            self.dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision, torch.float32)
            self.module = self.module.to(self.dtype)
            if layout not in ("nhwc", "nchw"):
                raise EngineError(f"layout {layout!r}: expected nhwc or nchw")
            if compile or layout == "nhwc":
                self.memory_format = torch.channels_last
            if compile:  # Inductor fuses on its own (our Triton ops would be opaque to it)
                self.module = self.module.to(memory_format=torch.channels_last)
            elif fuse is None or fuse:
                from .fuse import fuse_generator
                self.plain_module = copy.deepcopy(self.module)  # for exact tiling (host activations)
                self.module = fuse_generator(self.module.to(memory_format=self.memory_format))
                fused = True
                if graphs:
                    from .cudagraph import GraphedModule
                    self.graphed = GraphedModule(self.module)
        else:
            if precision == "auto" and cpu_has_fast_bf16():
                self.precision_probe = bf16_verdict(self.module, meta)
                precision = self.precision_probe["precision"]
            elif precision == "auto":
                precision = "fp32"
            if precision == "bf16":  # bf16 weights and activations, fp32 statistics
                self.dtype = torch.bfloat16
                self.module = self.module.to(torch.bfloat16)
            elif precision != "fp32":
                raise EngineError(f"precision {precision!r} is not supported on the CPU", hint="use auto, fp32 or bf16")
        if not fused:
            self.plain_module = self.module
        if compile:  # compiled kernels persist between runs (a second run of a model and size starts fast)
            os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir("inductor")))
        self.forward = torch.compile(self.module, dynamic=False) if compile else self.module
        backend = "torch-compile" if compile else "torch-fused" if fused else "torch"
        if fused:
            backend += f" ({layout}{', cuda graphs' if graphs else ''})"
        self.meta = dataclasses.replace(meta, backend=backend,
                                        precision=precision, stats_width=stats_width(self.module))

    def _run(self, x, stats, mix, collect=False):
        x = x.contiguous(memory_format=self.memory_format)
        own = None
        if self.graphed is not None and stats is None and not collect:
            with torch.inference_mode():
                y = self.graphed(x)
        else:
            with torch.inference_mode(), given_stats(self.module, stats, collect=collect) as layers:
                y = self.forward(x)
                own = pack([m.collected for m in layers]) if collect and layers else None
        return (y.float() if y.dtype == torch.bfloat16 else y), own
