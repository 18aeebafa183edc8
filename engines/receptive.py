"""Receptive radius of a convolutional generator, walked off its modules in definition order."""

import math

from torch import nn


def receptive_radius(module: nn.Module) -> int:
    """Pixels of context each output pixel sees on one side (ResNet-9 at 256: about 84).

    Convolutions add (k - 1) / 2 * dilation at the current stride; strided convs multiply the
    stride, transposed convs divide it. Padding layers add nothing. For the official ResNet and
    U-Net the definition order is the order of their longest path.
    """
    radius, jump = 0.0, 1.0
    for m in module.modules():
        if isinstance(m, nn.ConvTranspose2d):
            jump /= m.stride[0]
            radius += (m.kernel_size[0] - 1) / 2 * jump
        elif isinstance(m, nn.Conv2d):
            radius += (m.kernel_size[0] - 1) / 2 * m.dilation[0] * jump
            jump *= m.stride[0]
    return int(math.ceil(radius))


def measured_radius(run, channels: int, value_range: tuple[float, float], side: int = 256) -> int:
    """Receptive radius of a black-box image-to-image function, by experiment: one input pixel in
    the middle of a ``side`` x ``side`` image changes, and the farthest output pixel that moves by
    more than 1e-3 of the largest change bounds the context (global effects of per-image statistics
    are orders of magnitude smaller). ``side // 2`` means "at least that"."""
    import torch
    g = torch.Generator().manual_seed(0)
    lo, hi = value_range
    x = lo + (hi - lo) * torch.rand(1, channels, side, side, generator=g)
    y0 = run(x)
    x[..., side // 2, side // 2] = lo + hi - x[..., side // 2, side // 2]
    delta = (run(x) - y0).abs().amax(dim=(0, 1))
    moved = torch.nonzero(delta > 1e-3 * delta.max())
    if not len(moved):
        return 0
    centre = torch.tensor([side // 2, side // 2])
    return int((moved - centre).abs().max())


def measured_multiple(run, channels: int, value_range: tuple[float, float], side: int = 256) -> int:
    """The translation step a black-box generator is equivariant to (its total stride: 4 for a
    ResNet generator): the smallest power-of-two shift of the input that shifts the output's interior
    by the same amount (to 1% of the output's scale: far-away context leaves ~1e-3 behind, a shift
    off the grid changes the output by tens of percent). Tiles must sit on this grid."""
    import torch
    g = torch.Generator().manual_seed(1)
    lo, hi = value_range
    x = lo + (hi - lo) * torch.rand(1, channels, side, side, generator=g)
    y = run(x)
    inner = slice(side // 4, 3 * side // 4)
    for k in (1, 2, 4, 8, 16, 32):
        shifted = run(torch.roll(x, shifts=(k, k), dims=(2, 3)))
        a, b = torch.roll(y, shifts=(k, k), dims=(2, 3))[..., inner, inner], shifted[..., inner, inner]
        if (a - b).abs().max() <= 1e-2 * (y.abs().max() + 1e-6):  # off-grid shifts move it by ~50%
            return k
    return 64
