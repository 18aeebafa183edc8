"""Exact tiled inference: the full-frame result at any size with device memory bounded by a tile.

The network runs layer by layer on activations kept in host memory. Every convolution (and
transposed convolution) is computed block by block: the block's input plus the kernel's halo is
moved to the device, convolved, and the output block comes back. Normalisation layers see the
whole activation, so their statistics are those of the full frame (for instance norm and per-image
batch norm alike); element-wise layers, padding, upsampling and skip concatenations run on the
host tensors. Unlike overlapping network tiles this needs no receptive-field halo, so it is exact
for U-Nets whose receptive field spans the frame. Cost: the activations of one layer on the host,
one host <-> device round trip per convolution block.
"""

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn


def _blocks(length: int, size: int) -> list[tuple[int, int]]:
    return [(a, min(a + size, length)) for a in range(0, length, size)]


def _conv2d_blocks(conv: nn.Conv2d, x: torch.Tensor, block: int, device: torch.device) -> torch.Tensor:
    """``conv(x)`` for host ``x``, one output block at a time on ``device`` (zero padding only)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    n, _, h, w = x.shape
    oh, ow = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    weight = conv.weight.to(device)
    bias = conv.bias.to(device) if conv.bias is not None else None
    out = torch.empty(n, conv.out_channels, oh, ow, dtype=x.dtype)
    for oy0, oy1 in _blocks(oh, max(1, block // sh)):
        for ox0, ox1 in _blocks(ow, max(1, block // sw)):
            # input rows [iy0, iy1) (in padded coordinates) that the output block reads
            iy0, iy1 = oy0 * sh - ph, (oy1 - 1) * sh - ph + dh * (kh - 1) + 1
            ix0, ix1 = ox0 * sw - pw, (ox1 - 1) * sw - pw + dw * (kw - 1) + 1
            tile = x[:, :, max(iy0, 0):min(iy1, h), max(ix0, 0):min(ix1, w)].to(device)
            tile = F.pad(tile, (max(0, -ix0), max(0, ix1 - w), max(0, -iy0), max(0, iy1 - h)))
            y = F.conv2d(tile, weight, bias, (sh, sw), 0, (dh, dw), conv.groups)
            out[:, :, oy0:oy1, ox0:ox1] = y.to(out.device)
    return out


def _conv_t2d_blocks(conv: nn.ConvTranspose2d, x: torch.Tensor, block: int, device: torch.device) -> torch.Tensor:
    """``conv(x)`` (transposed) for host ``x``, one input block (plus halo) at a time on ``device``."""
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, conv.padding
    (oph, opw), (dh, dw) = conv.output_padding, conv.dilation
    n, _, h, w = x.shape
    oh = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    ow = (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    weight = conv.weight.to(device)
    out = torch.empty(n, conv.out_channels, oh, ow, dtype=x.dtype)
    halo_y, halo_x = -(-dh * (kh - 1) // sh) + 1, -(-dw * (kw - 1) // sw) + 1
    for iy0, iy1 in _blocks(h, max(1, block // sh)):
        for ix0, ix1 in _blocks(w, max(1, block // sw)):
            ly0, lx0 = max(0, iy0 - halo_y), max(0, ix0 - halo_x)
            tile = x[:, :, ly0:min(h, iy1 + halo_y), lx0:min(w, ix1 + halo_x)].to(device)
            y = F.conv_transpose2d(tile, weight, None, (sh, sw), 0, 0, conv.groups, (dh, dw))
            # output rows this input block owns: [iy0 * sh - ph, iy1 * sh - ph), the last block to the end
            oy0, oy1 = max(0, iy0 * sh - ph), (oh if iy1 == h else iy1 * sh - ph)
            ox0, ox1 = max(0, ix0 * sw - pw), (ow if ix1 == w else ix1 * sw - pw)
            qy, qx = oy0 + ph - ly0 * sh, ox0 + pw - lx0 * sw  # where they sit in the local output
            part = y[:, :, qy:qy + oy1 - oy0, qx:qx + ox1 - ox0]
            if part.shape[-2:] != (oy1 - oy0, ox1 - ox0):  # output_padding rows no input reaches
                part = F.pad(part, (0, ox1 - ox0 - part.shape[-1], 0, oy1 - oy0 - part.shape[-2]))
            out[:, :, oy0:oy1, ox0:ox1] = part.to(out.device)
    if conv.bias is not None:
        out += conv.bias.detach().to(out.dtype).view(1, -1, 1, 1)
    return out


@contextmanager
def blockwise_convolutions(module: nn.Module, block: int, device: torch.device):
    """Within the block, ``module``'s convolutions take host tensors and compute on ``device``
    ``block`` x ``block`` output pixels at a time (other layers run where their input lives)."""
    patched = []
    for m in module.modules():
        if type(m) is nn.Conv2d and m.padding_mode == "zeros" and isinstance(m.padding, tuple):
            m.forward = (lambda c: lambda x: _conv2d_blocks(c, x, block, device))(m)
        elif type(m) is nn.ConvTranspose2d:
            m.forward = (lambda c: lambda x, output_size=None: _conv_t2d_blocks(c, x, block, device))(m)
        else:
            continue
        patched.append(m)
    try:
        yield
    finally:
        for m in patched:
            del m.forward


def exact_tiled(module: nn.Module, x: torch.Tensor, block: int, device: torch.device) -> torch.Tensor:
    """``module(x)`` with activations on the host and convolutions in ``block``-pixel pieces on
    ``device``: the full-frame output, whatever the frame size."""
    host = x.detach().to("cpu", next(module.parameters()).dtype)
    params = {p.device for p in module.parameters()}
    with torch.inference_mode(), blockwise_convolutions(module, block, device):
        if params != {torch.device("cpu")}:  # the remaining layers (norm affine, ...) run on the host
            module_cpu = module.to("cpu")
            try:
                return module_cpu(host)
            finally:
                module.to(next(iter(params)))
        return module(host)
