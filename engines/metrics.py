"""Output comparisons (Polygraphy style): PSNR and max error over a known value range, and the
smooth random images they are measured on. Comparisons take tensors or numpy arrays alike."""

from __future__ import annotations

import math

import numpy as np

from .lazy import torch  # imported on first use (engines/lazy.py)


def _host(a) -> np.ndarray:
    return np.asarray(a, np.float64) if isinstance(a, np.ndarray) else a.detach().double().cpu().numpy()


def psnr(a, b, value_range: float = 2.0) -> float:
    """Peak signal-to-noise ratio in dB of ``a`` against ``b`` whose values span ``value_range``."""
    mse = float(np.mean(np.square(_host(a) - _host(b))))
    if mse == 0:
        return math.inf
    return 10 * math.log10(value_range ** 2 / mse)


def max_error(a, b) -> float:
    return float(np.abs(_host(a) - _host(b)).max())


PROBE_SIDE = 128  # host engines' probes (OpenVINO's bf16 check, the measured backend choice) are this size


def probe_image(channels: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """(1, C, H, W) float32 in [-1, 1], image-like, in numpy: linearly upsampled coarse noise plus
    fine detail (the host engines' probes run without torch)."""
    rng = np.random.default_rng(seed)
    img = rng.uniform(-1, 1, (channels, 6, 6))
    for axis, n in ((2, width), (1, height)):
        pos = np.clip((np.arange(n) + 0.5) * 6 / n - 0.5, 0, 5)
        i0 = np.floor(pos).astype(int)
        f = pos - i0
        img = np.take(img, i0, axis) * (1 - _along(f, axis)) + np.take(img, np.minimum(i0 + 1, 5), axis) * \
            _along(f, axis)
    img += rng.uniform(-0.1, 0.1, img.shape)
    return np.clip(img, -1, 1)[None].astype(np.float32)


def _along(v: np.ndarray, axis: int) -> np.ndarray:
    return v.reshape([-1 if a == axis else 1 for a in range(3)])


def smooth_image(channels: int, height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """(1, C, H, W) in [-1, 1]: bicubic-upsampled coarse noise plus fine detail, image-like input."""
    coarse = torch.rand(1, channels, 6, 6, generator=generator) * 2 - 1
    fine = torch.rand(1, channels, height, width, generator=generator) * 0.2 - 0.1
    return (torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
            + fine).clamp(-1, 1)
