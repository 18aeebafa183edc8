"""Output comparisons (Polygraphy style): PSNR and max error over a known value range, and the
smooth random images they are measured on."""

import math

import torch
import torch.nn.functional as F


def psnr(a: torch.Tensor, b: torch.Tensor, value_range: float = 2.0) -> float:
    """Peak signal-to-noise ratio in dB of ``a`` against ``b`` whose values span ``value_range``."""
    mse = (a.detach().float().cpu() - b.detach().float().cpu()).square().mean().item()
    if mse == 0:
        return math.inf
    return 10 * math.log10(value_range ** 2 / mse)


def max_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.detach().float().cpu() - b.detach().float().cpu()).abs().max().item()


def smooth_image(channels: int, height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """(1, C, H, W) in [-1, 1]: bicubic-upsampled coarse noise plus fine detail, image-like input."""
    coarse = torch.rand(1, channels, 6, 6, generator=generator) * 2 - 1
    fine = torch.rand(1, channels, height, width, generator=generator) * 0.2 - 0.1
    return (F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False) + fine).clamp(-1, 1)
