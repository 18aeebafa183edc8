"""Generators and discriminators with the official CycleGAN/pix2pix state_dict layouts."""

from .patchgan import NLayerDiscriminator
from .registry import ARCHS, build_generator
from .resnet import ResnetBlock, ResnetGenerator
from .unet import UnetGenerator, UnetSkipConnectionBlock

__all__ = ["ARCHS", "build_generator", "NLayerDiscriminator", "ResnetBlock", "ResnetGenerator",
           "UnetGenerator", "UnetSkipConnectionBlock"]
