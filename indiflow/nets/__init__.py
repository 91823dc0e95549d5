"""Reference networks for InDI regressors ``F(x_t, t)``; training logic lives elsewhere."""

from indiflow.nets.toy_mlp import FourierTimeEmbedding, ToyMLP
from indiflow.nets.unet import UNet

__all__ = ["FourierTimeEmbedding", "ToyMLP", "UNet"]
