"""Receptive radius of a convolutional generator, walked off its modules in definition order."""

from __future__ import annotations

import math

import numpy as np

from .lazy import torch  # imported on first use (engines/lazy.py)


def receptive_radius(module: torch.nn.Module) -> int:
    """Pixels of context each output pixel sees on one side (ResNet-9 at 256: about 84).

    Convolutions add (k - 1) / 2 * dilation at the current stride; strided convs multiply the
    stride, transposed convs divide it. Padding layers add nothing. For the official ResNet and
    U-Net the definition order is the order of their longest path.
    """
    radius, jump = 0.0, 1.0
    for m in module.modules():
        if isinstance(m, torch.nn.ConvTranspose2d):
            jump /= m.stride[0]
            radius += (m.kernel_size[0] - 1) / 2 * jump
        elif isinstance(m, torch.nn.Conv2d):
            radius += (m.kernel_size[0] - 1) / 2 * m.dilation[0] * jump
            jump *= m.stride[0]
    return int(math.ceil(radius))


def measured_radius(run, channels: int, value_range: tuple[float, float], sides: tuple[int, ...] = (256,)) -> int:
    """Receptive radius of a black-box image-to-image function (numpy (1, C, H, W) in and out), by
    experiment: one input pixel in the middle of a ``side`` x ``side`` image changes, and the
    farthest output pixel that moves by more than 1e-3 of the largest change bounds the context
    (global effects of per-image statistics are orders of magnitude smaller). The next of
    ``sides`` is tried when the moved pixels reach the probe's edge or leave gaps (a dilated
    field may go on past the edge) or the graph will not run at that size; on the last,
    ``side // 2`` means "at least that"."""
    lo, hi = value_range
    for side in sides:
        x = (lo + (hi - lo) * np.random.default_rng(0).random((1, channels, side, side))).astype(np.float32)
        try:
            y0 = run(x)
        except Exception:  # too small for this graph (many downsamplings): the next size
            if side == sides[-1]:
                raise
            continue
        x[..., side // 2, side // 2] = lo + hi - x[..., side // 2, side // 2]
        delta = np.abs(run(x) - y0).max(axis=(0, 1))
        moved = np.argwhere(delta > 1e-3 * delta.max())
        if not len(moved):
            return 0
        distances = np.unique(np.abs(moved - side // 2).max(axis=1))  # rings around the pixel that moved
        radius = int(distances[-1])
        if radius < side // 2 - 1 and len(distances) == radius + 1:  # one block, inside the probe
            break
    return radius


def measured_multiple(run, channels: int, value_range: tuple[float, float], radius: int | None = None) -> int:
    """The translation step a black-box generator (numpy in and out) is equivariant to (its total
    stride: 4 for a ResNet generator): the smallest power-of-two shift of the input that shifts the
    output's interior by the same amount (to 1% of the output's scale: far-away context leaves ~1e-3
    behind, a shift off the grid changes the output by tens of percent). Tiles must sit on this grid.

    The interior is what lies farther than ``radius`` + the shift from every edge (where the shift
    wraps content around); with ``radius`` known, each shift runs on the smallest image with 32 px
    of interior (on 256 px if the graph will not run at that size), else on 256 px with the middle
    half as interior."""
    if radius is not None:
        try:
            return _measured_multiple(run, channels, value_range, radius)
        except Exception:  # a size the graph does not take (a U-Net 256 takes multiples of 256)
            radius = None
    return _measured_multiple(run, channels, value_range, radius)


def _measured_multiple(run, channels: int, value_range: tuple[float, float], radius: int | None) -> int:
    lo, hi = value_range
    rng = np.random.default_rng(1)
    base: dict[int, tuple] = {}
    for k in (1, 2, 4, 8, 16, 32):
        side = 256 if radius is None else 32 * -(-(2 * (radius + max(k, 8) + 1) + 32) // 32)
        if side not in base:
            x = (lo + (hi - lo) * rng.random((1, channels, side, side))).astype(np.float32)
            base[side] = x, run(x)
        x, y = base[side]
        margin = side // 4 if radius is None else radius + k + 1
        inner = slice(margin, side - margin)
        shifted = run(np.roll(x, shift=(k, k), axis=(2, 3)))
        a, b = np.roll(y, shift=(k, k), axis=(2, 3))[..., inner, inner], shifted[..., inner, inner]
        if np.abs(a - b).max() <= 1e-2 * (np.abs(y).max() + 1e-6):  # off-grid shifts move it by ~50%
            return k
    return 64
