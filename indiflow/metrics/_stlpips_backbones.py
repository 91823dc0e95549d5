"""The shift-tolerant AlexNet and VGG-16 trunks of ST-LPIPS (Ghildyal & Liu, ECCV 2022).

Both are the ImageNet classifiers made shift tolerant as in the paper: every stride-2
subsampling is replaced by a stride-1 operation followed by a blur pool (a 3 x 3 binomial
low-pass filter ``[1, 2, 1]ᵀ[1, 2, 1] / 16`` applied per channel after reflection padding of 2
pixels on every side, then subsampling by 2); AlexNet's first convolution also runs at stride 1
with the blur pool after it. The trunk is cut into five slices whose outputs are the features
LPIPS compares.

Child modules are named by their position in the original layer sequence (``"0"``, ``"1"``, ...)
inside ``slice1`` ... ``slice5``, because that is the layout of the released weight files: the
files then load with ``strict=True``, which checks that every stored tensor has a place and
every layer got its tensor.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

# Channels of the five compared feature maps.
ALEX_CHANNELS = (64, 192, 384, 256, 256)
VGG_CHANNELS = (64, 128, 256, 512, 512)

_BLUR_PAD = 2  # the weight files were trained with reflection padding of 2 around the 3x3 blur


class BlurPool(nn.Module):
    """Anti-aliased subsampling by 2: reflect-pad by 2, 3 x 3 binomial blur, keep every 2nd pixel.

    The filter is a buffer named ``filt`` (``(channels, 1, 3, 3)``) because the weight files
    store it; it is initialised to the binomial filter, which the stored one equals.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = taps[:, None] * taps[None, :] / 16.0
        self.register_buffer("filt", kernel.expand(channels, 1, 3, 3).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (_BLUR_PAD,) * 4, mode="reflect")
        return F.conv2d(padded, self.filt, stride=2, groups=x.shape[1])


def _relu() -> nn.ReLU:
    # Not in place: a slice's output is kept as a feature while the next slice runs on it.
    return nn.ReLU(inplace=False)


class SlicedTrunk(nn.Module):
    """A layer sequence cut into ``slice1`` ... ``slice5``; returns the five slice outputs."""

    def __init__(self, layers: list[nn.Module], cuts: tuple[int, ...], channels: tuple[int, ...]):
        super().__init__()
        self.channels = channels
        bounds = (0, *cuts, len(layers))
        for number, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:], strict=True), 1):
            named = OrderedDict((str(i), layers[i]) for i in range(start, stop))
            self.add_module(f"slice{number}", nn.Sequential(named))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for number in range(1, 6):
            x = getattr(self, f"slice{number}")(x)
            features.append(x)
        return features


def shift_tolerant_alexnet() -> SlicedTrunk:
    """AlexNet's five convolutions with stride-1 first convolution and blur pools.

    Layers: conv 11x11 (3->64, stride 1, zero pad 2), blur pool, ReLU | max pool 3x3 stride 1,
    blur pool, conv 5x5 (64->192, pad 2), ReLU | max pool 3x3 stride 1, blur pool, conv 3x3
    (192->384, pad 1), ReLU | conv 3x3 (384->256, pad 1), ReLU | conv 3x3 (256->256, pad 1),
    ReLU. ``|`` marks the five feature taps.
    """
    layers: list[nn.Module] = [
        nn.Conv2d(3, 64, kernel_size=11, stride=1, padding=2),
        BlurPool(64),
        _relu(),
        nn.MaxPool2d(kernel_size=3, stride=1),
        BlurPool(64),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),
        _relu(),
        nn.MaxPool2d(kernel_size=3, stride=1),
        BlurPool(192),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),
        _relu(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        _relu(),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),
        _relu(),
    ]
    return SlicedTrunk(layers, cuts=(3, 7, 11, 13), channels=ALEX_CHANNELS)


# VGG-16 configuration "D" up to relu5_3: numbers are 3x3 convolutions (pad 1) + ReLU,
# "pool" is max pool 2x2 at stride 1 followed by a blur pool.
_VGG16 = (64, 64, "pool", 128, 128, "pool", 256, 256, 256, "pool", 512, 512, 512, "pool")
_VGG16_TAIL = (512, 512, 512)


def shift_tolerant_vgg16() -> SlicedTrunk:
    """VGG-16 (configuration D) up to ``relu5_3`` with max pool 2x2 at stride 1 + blur pool.

    Feature taps after ``relu1_2``, ``relu2_2``, ``relu3_3``, ``relu4_3`` and ``relu5_3``.
    """
    layers: list[nn.Module] = []
    cuts: list[int] = []
    in_channels = 3
    for item in (*_VGG16, *_VGG16_TAIL):
        if item == "pool":
            cuts.append(len(layers))  # a slice ends right before each pooling stage
            layers += [nn.MaxPool2d(kernel_size=2, stride=1), BlurPool(in_channels)]
        else:
            layers += [nn.Conv2d(in_channels, item, kernel_size=3, padding=1), _relu()]
            in_channels = item
    return SlicedTrunk(layers, cuts=tuple(cuts), channels=VGG_CHANNELS)
