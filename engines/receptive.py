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
