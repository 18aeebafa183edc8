"""Named generator presets (the official ``--netG`` values) as small factories."""

from collections.abc import Callable

from torch import nn

from .resnet import ResnetGenerator
from .unet import UnetGenerator

ARCHS: dict[str, Callable[..., nn.Module]] = {}


def register(name: str, family: str, **preset):
    def factory(**kw) -> nn.Module:
        cls = ResnetGenerator if family == "resnet" else UnetGenerator
        return cls(**{**preset, **kw})
    factory.family = family
    factory.preset = preset
    ARCHS[name] = factory


register("resnet_9blocks", "resnet", n_blocks=9)
register("resnet_6blocks", "resnet", n_blocks=6)
register("unet_256", "unet", num_downs=8)
register("unet_128", "unet", num_downs=7)


def build_generator(name: str, **kw) -> nn.Module:
    """Build a registered generator; ``kw`` (ngf, norm, n_blocks, ...) overrides the preset."""
    if name not in ARCHS:
        raise KeyError(f"unknown architecture {name!r}; known: {', '.join(ARCHS)}")
    return ARCHS[name](**kw)
