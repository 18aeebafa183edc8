"""Rewrite a generator so its normalisation work runs as fused Triton kernels (CUDA).

By module pattern, not by class: in any nn.Sequential,
  norm, ReLU, ReflectionPad2d(p)  -> one instance_norm(activation="relu", pad=p)
  norm, ReLU                      -> one instance_norm(activation="relu")
  norm                            -> one instance_norm
and any module with a ``conv_block`` Sequential ending in a norm whose forward is
``x + conv_block(x)`` (the CycleGAN ResnetBlock shape) gets the residual add fused into that
last norm. Convolutions stay cuDNN. ``norm`` means StatNorm (see engines.normstats), so
thumbnail statistics and statistics collection keep working through the fused path.
"""

import torch
from torch import nn

import kernels

from .normstats import StatNorm


class FusedNorm(nn.Module):
    """StatNorm (+ReLU) (+reflect pad) (+residual) as one kernel launch."""

    def __init__(self, norm: StatNorm, relu: bool = False, pad: int = 0):
        super().__init__()
        self.norm, self.relu, self.pad = norm, relu, pad

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        n = self.norm
        stats = n.statistics(x, kernels.instance_norm_stats)
        mean, rstd = stats if stats is not None else (None, None)
        return kernels.instance_norm(x, n.weight, n.bias, eps=n.eps, activation="relu" if self.relu else None,
                                     residual=residual, mean=mean, rstd=rstd, pad=self.pad)


class FusedResidual(nn.Module):
    """x + body(x) with the body's last norm fused with the add."""

    def __init__(self, body: nn.Sequential, last: FusedNorm):
        super().__init__()
        self.body, self.last = body, last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last(self.body(x), residual=x)


def _fuse_sequence(layers: list[nn.Module]) -> list[nn.Module]:
    out, i = [], 0
    while i < len(layers):
        m = layers[i]
        if isinstance(m, StatNorm):
            relu = i + 1 < len(layers) and isinstance(layers[i + 1], nn.ReLU)
            pad = 0
            j = i + 1 + relu
            if relu and j < len(layers) and isinstance(layers[j], nn.ReflectionPad2d):
                p = layers[j].padding
                if len(set(p)) == 1:
                    pad, j = p[0], j + 1
            out.append(FusedNorm(m, relu, pad))
            i = j
        else:
            out.append(fuse_generator(m))
            i += 1
    return out


def _is_residual_block(m: nn.Module) -> bool:
    cb = getattr(m, "conv_block", None)
    return (isinstance(cb, nn.Sequential) and len(cb) > 0 and isinstance(cb[-1], StatNorm)
            and len(list(m.children())) == 1)


def _probe_residual(m: nn.Module) -> bool:
    """Check that forward really is x + conv_block(x) before rewriting it."""
    cb = m.conv_block
    conv = next((c for c in cb.modules() if isinstance(c, nn.Conv2d)), None)
    if conv is None:
        return False
    ch = conv.in_channels
    p = next(iter(cb.parameters()))
    x = torch.randn(1, ch, 8, 8, device=p.device, dtype=p.dtype)
    with torch.no_grad():
        return torch.allclose(m(x), x + cb(x))


def fuse_generator(module: nn.Module) -> nn.Module:
    """Return ``module`` with its norm/activation/pad/residual runs replaced by fused kernels."""
    if _is_residual_block(module) and _probe_residual(module):
        layers = _fuse_sequence(list(module.conv_block.children())[:-1])
        return FusedResidual(nn.Sequential(*layers), FusedNorm(module.conv_block[-1]))
    if isinstance(module, nn.Sequential):
        return nn.Sequential(*_fuse_sequence(list(module.children())))
    for name, child in module.named_children():
        setattr(module, name, fuse_generator(child))
    return module
