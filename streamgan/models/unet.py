"""pix2pix's UnetGenerator: nested skip blocks, keys ``model.model.N.*`` as in the official code."""

import torch
from torch import nn

from .layers import default_bias, norm_layer


class UnetSkipConnectionBlock(nn.Module):
    """down (lrelu, conv, norm) -> submodule -> up (relu, convT, norm); cat([x, y]) unless outermost."""

    def __init__(self, outer_nc: int, inner_nc: int, input_nc: int | None = None,
                 submodule: nn.Module | None = None, outermost: bool = False, innermost: bool = False,
                 norm: str = "batch", use_dropout: bool = False, use_bias: bool | None = None):
        super().__init__()
        self.outermost = outermost
        bias = default_bias(norm) if use_bias is None else use_bias
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=bias)
        if outermost:
            layers = [downconv, submodule, nn.ReLU(True),
                      nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1), nn.Tanh()]
        elif innermost:
            layers = [nn.LeakyReLU(0.2, True), downconv, nn.ReLU(True),
                      nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2, padding=1, bias=bias),
                      norm_layer(norm, outer_nc)]
        else:
            layers = [nn.LeakyReLU(0.2, True), downconv, norm_layer(norm, inner_nc), submodule,
                      nn.ReLU(True),
                      nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1, bias=bias),
                      norm_layer(norm, outer_nc)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """U-Net with ``num_downs`` stride-2 levels (8 = unet_256, 7 = unet_128); sides % 2**num_downs."""

    def __init__(self, input_nc: int = 3, output_nc: int = 3, num_downs: int = 8, ngf: int = 64,
                 norm: str = "batch", use_dropout: bool = False, use_bias: bool | None = None):
        super().__init__()
        if num_downs < 5:
            raise ValueError("a U-Net needs num_downs >= 5")
        kw = dict(norm=norm, use_bias=use_bias)
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, **kw)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, use_dropout=use_dropout, **kw)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, **kw)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, **kw)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, **kw)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block,
                                             outermost=True, **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
