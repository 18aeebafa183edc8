"""Training CycleGAN and pix2pix generators with the official defaults."""

from .config import TrainConfig
from .trainer import train

__all__ = ["TrainConfig", "train"]
