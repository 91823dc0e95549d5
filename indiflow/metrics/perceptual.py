"""ST-LPIPS: shift-tolerant learned perceptual distance (Ghildyal & Liu, ECCV 2022).

The network is built here with plain ``torch.nn`` (see :mod:`._stlpips_backbones`); only the
trained weight files come from the ``stlpips-pytorch`` wheel
(``stlpips_pytorch/weights/vST0.0/{alex,vgg}_shift_tolerant.pth``). They are located through the
import system without importing that package, whose modules import torchvision.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import torch
from torch import nn

from indiflow.metrics._checks import check_image_pair, check_min_size
from indiflow.metrics._stlpips_backbones import (
    SlicedTrunk,
    shift_tolerant_alexnet,
    shift_tolerant_vgg16,
)

_INSTALL_HINT = (
    'install the image extra: pip install -e ".[images]" (or pip install stlpips-pytorch)'
)
_NETS = {"alex": shift_tolerant_alexnet, "vgg": shift_tolerant_vgg16}
# Smallest input side for which every blur pool still has at least 3 pixels to reflect.
_MIN_SIDE = {"alex": 21, "vgg": 18}
_FEATURE_EPS = 1e-10  # added to the channel norm, as in LPIPS


def weights_path(net: str) -> Path:
    """Path of the ST-LPIPS weight file for ``net`` inside the installed ``stlpips-pytorch``.

    Raises:
        ImportError: the wheel is not installed, or it lacks the weight file.
    """
    spec = importlib.util.find_spec("stlpips_pytorch")  # finds the package, does not import it
    locations = [] if spec is None else list(spec.submodule_search_locations or [])
    if not locations:
        raise ImportError(
            f"ST-LPIPS needs the weight files of the stlpips-pytorch wheel; {_INSTALL_HINT}"
        )
    for root in locations:
        candidate = Path(root) / "weights" / "vST0.0" / f"{net}_shift_tolerant.pth"
        if candidate.is_file():
            return candidate
    raise ImportError(
        f"stlpips-pytorch is installed at {locations} but has no "
        f"weights/vST0.0/{net}_shift_tolerant.pth; reinstall it: {_INSTALL_HINT}"
    )


@functools.cache
def _state_dict(net: str) -> dict[str, torch.Tensor]:
    """The weight file's tensors, read once per process (CPU, read-only use)."""
    return torch.load(weights_path(net), map_location="cpu", weights_only=True)


class _ScalingLayer(nn.Module):
    """LPIPS input normalisation ``(v - shift) / scale`` for ``v`` in [-1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale


class _LinearHead(nn.Module):
    """Non-negative 1x1 convolution to one channel; ``model.0`` is training-time dropout."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Identity(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class STLPIPS(nn.Module):
    """Shift-tolerant LPIPS distance between images: lower is more similar, 0 for identical.

    For images ``x``, ``ref`` in [0, 1]: map to ``v = 2 u - 1``, normalise by the LPIPS
    scaling layer ``(v - shift) / scale`` (``shift = (-0.030, -0.088, -0.188)``,
    ``scale = (0.458, 0.448, 0.450)``), run the shift-tolerant trunk, and for each of its five
    feature maps ``f`` take ``f̂ = f / (‖f‖₂ over channels + 1e-10)``; then

        d(x, ref) = Σ_l  mean_{h,w}  Σ_c  w_{l,c} (f̂_l(x) - f̂_l(ref))²_{c,h,w}

    with the learned non-negative weights ``w_l``. Grey images (``C = 1``) are repeated to
    three channels. The module is in eval mode and its parameters do not require gradients,
    so it can serve as a loss (gradients reach the inputs) without touching its weights.

    Args:
        net: ``"alex"`` (the paper's default) or ``"vgg"``.

    Raises:
        ValueError: unknown ``net``.
        ImportError: ``stlpips-pytorch`` (which ships the weights) is not installed.
    """

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        if not isinstance(net, str) or net not in _NETS:
            raise ValueError(f"net must be one of {sorted(_NETS)}, got {net!r}")
        self.net_name = net
        self.scaling_layer = _ScalingLayer()
        self.net: SlicedTrunk = _NETS[net]()
        for index, channels in enumerate(self.net.channels):
            self.add_module(f"lin{index}", _LinearHead(channels))
        self.load_state_dict(_state_dict(net), strict=True)
        self.requires_grad_(False)
        self.eval()

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five unit-normalised feature maps of images ``x`` in [0, 1] (no validation)."""
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        trunk = self.net(self.scaling_layer(2.0 * x - 1.0))
        return [f / (f.square().sum(dim=1, keepdim=True).sqrt() + _FEATURE_EPS) for f in trunk]

    def forward(self, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """Distance per image.

        Args:
            x: images ``(B, C, H, W)`` in [0, 1], ``C`` in {1, 3}, at least 21 x 21 (alex)
                or 18 x 18 (vgg).
            ref: reference images of the same shape.

        Returns:
            ``(B,)`` tensor in the dtype of the module's parameters (float32 unless converted).
        """
        x, ref = check_image_pair(x, ref)
        if x.shape[1] not in (1, 3):
            raise ValueError(
                f"ST-LPIPS compares RGB (C = 3) or grey (C = 1) images, got C = {x.shape[1]}"
            )
        check_min_size("STLPIPS", x, _MIN_SIDE[self.net_name], "the blur pools of the trunk")
        dtype = self.scaling_layer.shift.dtype
        batch = x.shape[0]
        features = self.features(torch.cat([x, ref]).to(dtype))  # one pass through the trunk
        total = torch.zeros(batch, dtype=dtype, device=x.device)
        for index, both in enumerate(features):
            head = getattr(self, f"lin{index}")
            total = total + head((both[:batch] - both[batch:]).square()).mean(dim=(1, 2, 3))
        return total

    def extra_repr(self) -> str:
        return f"net={self.net_name!r}"
