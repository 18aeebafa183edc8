"""Output comparisons (Polygraphy style): PSNR and max error over a known value range."""

import math

import torch


def psnr(a: torch.Tensor, b: torch.Tensor, value_range: float = 2.0) -> float:
    """Peak signal-to-noise ratio in dB of ``a`` against ``b`` whose values span ``value_range``."""
    mse = (a.detach().float().cpu() - b.detach().float().cpu()).square().mean().item()
    if mse == 0:
        return math.inf
    return 10 * math.log10(value_range ** 2 / mse)


def max_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.detach().float().cpu() - b.detach().float().cpu()).abs().max().item()
