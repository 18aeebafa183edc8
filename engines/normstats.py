"""Per-sample normalisation layers whose statistics can be collected, or given from outside.

Thumbnail instance normalisation (URST) needs every normalisation layer's (mean, rstd) from one
pass over a downscaled frame, then tiles normalised with those. ``StatNorm`` replaces
InstanceNorm2d (and BatchNorm2d used with per-image statistics) by module pattern; its
parameter and buffer names are those of the layer it replaces, so state_dict keys do not change.

Statistics travel packed: a (N, 2 * sum(C_l)) fp32 tensor, for each layer l its means then its
rstds, in module order. ``StatsGenerator`` exposes them as graph inputs/outputs for export.
"""

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from kernels import reference


class StatNorm(nn.Module):
    """Normalise each sample's channels over H, W; optional affine; stats own, collected or given."""

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = False):
        super().__init__()
        self.num_features, self.eps = num_features, eps
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.given: tuple[torch.Tensor, torch.Tensor] | None = None
        self.mix: torch.Tensor | None = None
        self.collect = False
        self.collected: tuple[torch.Tensor, torch.Tensor] | None = None

    @classmethod
    def replacing(cls, m: nn.Module) -> "StatNorm":
        """A StatNorm carrying ``m``'s affine parameters and (BatchNorm) buffers under the same names."""
        new = cls(m.num_features, m.eps, affine=getattr(m, "weight", None) is not None)
        if new.weight is not None:
            new.weight = m.weight
            new.bias = m.bias
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            buf = getattr(m, name, None)
            if isinstance(buf, torch.Tensor):
                new.register_buffer(name, buf)
        return new

    def statistics(self, x: torch.Tensor, stats_fn=reference.instance_norm_stats):
        """(mean, rstd) to normalise ``x`` with in the current mode; None = the layer's own,
        which the caller may compute fused with the normalisation."""
        if self.given is not None and self.mix is None and not self.collect:
            return self.given
        if self.given is None and not self.collect:
            return None
        mean, rstd = stats_fn(x, self.eps)
        if self.collect:
            self.collected = (mean, rstd)
        if self.given is None:
            return mean, rstd
        gm, gr = self.given
        if self.mix is None:
            return gm, gr
        return mean + self.mix * (gm - mean), rstd + self.mix * (gr - rstd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stats = self.statistics(x)
        if stats is None and (torch.jit.is_tracing() or x.device.type == "cpu" and not torch.compiler.is_compiling()):
            # native kernel (accumulates in fp32 for bf16); traced for ONNX: one InstanceNormalization op
            return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)
        mean, rstd = stats or (None, None)
        return reference.instance_norm(x, self.weight, self.bias, eps=self.eps, mean=mean, rstd=rstd)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, affine={self.weight is not None}"


def convert_norms(model: nn.Module, bn_stats: str = "batch") -> nn.Module:
    """Replace InstanceNorm2d (and BatchNorm2d when ``bn_stats == 'batch'``) by StatNorm, in place.

    By pattern, not by model class: any module tree benefits. ``bn_stats='running'`` keeps
    BatchNorm2d with its stored statistics (put the model in eval mode).
    """
    for name, child in model.named_children():
        if isinstance(child, nn.InstanceNorm2d) or (isinstance(child, nn.BatchNorm2d) and bn_stats == "batch"):
            setattr(model, name, StatNorm.replacing(child))
        else:
            convert_norms(child, bn_stats)
    return model


def stat_layers(model: nn.Module) -> list[StatNorm]:
    return [m for m in model.modules() if isinstance(m, StatNorm)]


def stats_width(model: nn.Module) -> int:
    """Length of the packed statistics vector (0: the model has no per-sample norm layers)."""
    return 2 * sum(m.num_features for m in stat_layers(model))


def pack(stats: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    return torch.cat([t.float() for pair in stats for t in pair], dim=1)


def unpack(packed: torch.Tensor, layers: list[StatNorm]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    out, i = [], 0
    for m in layers:
        c = m.num_features
        out.append((packed[:, i:i + c], packed[:, i + c:i + 2 * c]))
        i += 2 * c
    if i != packed.shape[1]:
        raise ValueError(f"statistics vector has {packed.shape[1]} values, the model needs {i}")
    return out


@contextmanager
def given_stats(model: nn.Module, packed: torch.Tensor | None, mix: torch.Tensor | None = None,
                collect: bool = False):
    """Within the block, the model's StatNorm layers use ``packed`` statistics (None: their own)."""
    layers = stat_layers(model)
    pairs = unpack(packed, layers) if packed is not None else [None] * len(layers)
    try:
        for m, pair in zip(layers, pairs):
            m.given, m.mix, m.collect, m.collected = pair, mix, collect, None
        yield layers
    finally:
        for m in layers:
            m.given, m.mix, m.collect = None, None, False


def collect_stats(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run ``model`` on ``x`` with its own statistics and return them packed, (N, width)."""
    with given_stats(model, None, collect=True) as layers:
        model(x)
        return pack([m.collected for m in layers])


class StatsGenerator(nn.Module):
    """forward(image, norm_stats, stats_mix) -> (output, own_stats), for export.

    stats_mix = 0: each sample uses its own statistics (plain per-image inference);
    stats_mix = 1: every layer uses ``norm_stats`` (thumbnail / global statistics).
    ``own_stats`` are the statistics the input itself produced (mix 0 makes them exact).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, norm_stats: torch.Tensor, stats_mix: torch.Tensor):
        with given_stats(self.model, norm_stats, mix=stats_mix, collect=True) as layers:
            out = self.model(image)
            return out, pack([m.collected for m in layers])
