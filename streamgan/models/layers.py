"""Norm-layer factory with the official repository's conventions (networks.get_norm_layer)."""

from torch import nn

NORMS = ("instance", "batch", "none")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """instance: no parameters or buffers; batch: affine with running stats; none: Identity."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; expected one of {NORMS}")


def default_bias(norm: str) -> bool:
    """Official rule: convs carry a bias exactly when the norm is instance norm."""
    return norm == "instance"
