"""CycleGAN's ResnetGenerator, module-for-module the official layout (keys ``model.N.*``)."""

import torch
from torch import nn

from .layers import default_bias, norm_layer


class ResnetBlock(nn.Module):
    """x + conv_block(x); conv_block = pad, conv3, norm, relu, [dropout], pad, conv3, norm."""

    def __init__(self, dim: int, norm: str, use_dropout: bool, use_bias: bool):
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm_layer(norm, dim),
            nn.ReLU(True),
        ]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm_layer(norm, dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """7x7 stem, two stride-2 downsamplings, ``n_blocks`` residual blocks, two upsamplings, tanh."""

    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, norm: str = "instance",
                 use_dropout: bool = False, n_blocks: int = 9, use_bias: bool | None = None):
        super().__init__()
        bias = default_bias(norm) if use_bias is None else use_bias
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=bias), norm_layer(norm, ngf),
            nn.ReLU(True),
        ]
        for i in range(2):
            mult = 2 ** i
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
                       norm_layer(norm, ngf * mult * 2), nn.ReLU(True)]
        for _ in range(n_blocks):
            layers.append(ResnetBlock(ngf * 4, norm, use_dropout, bias))
        for i in range(2):
            mult = 2 ** (2 - i)
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1,
                                          output_padding=1, bias=bias),
                       norm_layer(norm, ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
