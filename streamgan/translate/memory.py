"""How much memory a frame needs: the automatic choice between full frame and tiles.

The model's activation footprint is measured once per engine on a small probe: on CUDA the
allocator's peak during one inference; on the CPU, for torch engines, from the size of every
layer's output (peak ~ input + output + workspace of the largest layer, 3x its output, plus the
frame's own input and output). Engines
whose memory torch cannot see fall back to a fixed pixel limit.
"""

from __future__ import annotations

from engines.base import Engine, on_cuda
from engines.lazy import torch  # imported on first use (engines/lazy.py)

_CPU_SHARE = 0.5  # of the memory the system reports available
_GPU_SHARE = 0.8  # of the device's free memory
_FALLBACK_PIXELS = 2560 * 1440


def available_bytes(device: torch.device) -> int:
    """Free device memory (CUDA) or MemAvailable (host), 0 if unknown."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _footprint_bytes(module: torch.nn.Module, x: torch.Tensor) -> int:
    """3x the largest layer output (its input, output and workspace) plus the frame's own input
    and output, which are held across the call. Against the peak resident memory measured while a
    frame runs (tests/streamgan/test_tiling.py): 1.16-1.2x for a ResNet of ngf 8 at 768 and 1024 px
    with glibc's mmap threshold fixed, so that the mark is the tensors' own (by default the heap's
    kept blocks add 30-55 MB that come and go between runs: 0.65-0.8x then); 3x the largest layer
    alone read 0.66-1.03x before (small models' 3-channel frames matter)."""
    sizes = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: sizes.append(out.numel() * out.element_size())
                                     if isinstance(out, torch.Tensor) else None)
             for m in module.modules() if not list(m.children())]
    try:
        with torch.inference_mode():
            y = module(x)
    finally:
        for h in hooks:
            h.remove()
    return 3 * max(sizes, default=0) + x.numel() * x.element_size() + y.numel() * y.element_size()


def bytes_per_pixel(engine: Engine) -> float | None:
    """Measured activation bytes per input pixel of ``engine`` (None: cannot be measured here)."""
    side = max(64, 2 * engine.meta.size_multiple)
    if engine.host:  # a runtime's own memory, which torch cannot see
        return None
    x = torch.zeros(1, engine.meta.in_channels, side, side)
    if engine.device.type == "cuda":
        torch.cuda.synchronize(engine.device)
        base = torch.cuda.memory_allocated(engine.device)
        torch.cuda.reset_peak_memory_stats(engine.device)
        engine.infer(x)
        torch.cuda.synchronize(engine.device)
        return (torch.cuda.max_memory_allocated(engine.device) - base) / side ** 2
    module = getattr(engine, "plain_module", None)
    if module is None:
        return None
    param = next(module.parameters())
    return _footprint_bytes(module, x.to(param.device, param.dtype)) / side ** 2


def full_frame_decision(engine: Engine, height: int, width: int) -> tuple[bool, str]:
    """(whether the padded frame fits whole, the reason in words for the run report)."""
    per_px = bytes_per_pixel(engine)
    if per_px is None:
        fits = height * width <= _FALLBACK_PIXELS
        return fits, (f"{'full frame' if fits else 'tiles'}: {height}x{width} against the "
                      f"{_FALLBACK_PIXELS / 1e6:.1f} Mpx limit (this engine's memory use cannot be measured)")
    need = per_px * height * width
    share = _GPU_SHARE if on_cuda(engine) else _CPU_SHARE
    budget = available_bytes(engine.device) * share
    fits = need <= budget
    where = "free on the GPU" if on_cuda(engine) else "of available RAM"
    return fits, f"{'full frame' if fits else 'tiles'}: activations ~{need / 1e9:.2f} GB at {height}x{width} " \
                 f"({per_px:.0f} B/px measured), budget {budget / 1e9:.1f} GB ({share:.0%} {where})"
