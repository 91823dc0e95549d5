"""The metric names of ``indiflow evaluate`` and the ``indiflow.metrics`` functions behind them.

The library exposes functions and modules, never a string registry; this module is the one place
that maps command-line names onto them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import torch

Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class MetricName:
    """How one command-line metric name is computed.

    Attributes:
        attribute: the function or module class in ``indiflow.metrics``.
        summary: what it measures, for ``--help``.
        better: ``"higher"``, ``"lower"`` or ``"closer to 0"``.
        fidelity: it takes ``crop_border`` and ``y_channel`` itself (PSNR, SSIM); the others get
            images whose borders the command line has cropped and ignore ``--y-channel``.
        is_module: a class instantiated once per run (it holds network weights).
    """

    attribute: str
    summary: str
    better: str = "lower"
    fidelity: bool = False
    is_module: bool = False


METRICS: dict[str, MetricName] = {
    "psnr": MetricName("psnr", "PSNR in dB", "higher", fidelity=True),
    "ssim": MetricName("ssim", "SSIM, 11x11 Gaussian window of sigma 1.5", "higher", fidelity=True),
    "stlpips": MetricName("STLPIPS", "shift-tolerant LPIPS, AlexNet", is_module=True),
    "swd": MetricName(
        "laplacian_swd", "sliced Wasserstein distance of Laplacian-pyramid 7x7 patches"
    ),
    "spectrum": MetricName(
        "spectrum_gap",
        "high-frequency gap of the radial power spectrum, blur < 0 < noise",
        "closer to 0",
    ),
    "gradient_w1": MetricName(
        "gradient_w1", "1-D Wasserstein distance of gradient-magnitude distributions"
    ),
}
DEFAULT_METRICS = ("psnr", "ssim")


def metric_help() -> str:
    """One line per metric: name, what it measures, which way is better."""
    width = max(map(len, METRICS))
    return "\n".join(
        f"  {name:<{width}}  {spec.summary}; {spec.better} is better"
        for name, spec in METRICS.items()
    )


def parse_metric_names(text: str) -> list[str]:
    """``--metrics`` type: comma-separated names, each one of ``METRICS``.

    Raises:
        argparse.ArgumentTypeError: naming the unknown metric and listing the valid ones.
    """
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(
            f"no metric named in {text!r}; valid: {', '.join(METRICS)}"
        )
    for name in names:
        if name not in METRICS:
            raise argparse.ArgumentTypeError(
                f"unknown metric {name!r}; valid metrics: {', '.join(METRICS)}"
            )
    return names


def crop(x: torch.Tensor, border: int) -> torch.Tensor:
    """``x[..., border:H-border, border:W-border]``; ValueError if nothing would be left."""
    if border == 0:
        return x
    height, width = x.shape[-2:]
    if 2 * border >= min(height, width):
        raise ValueError(
            f"--crop-border {border} leaves nothing of a {height}x{width} image; use a smaller one"
        )
    return x[..., border : height - border, border : width - border]


def build_metrics(
    names: list[str], *, crop_border: int, y_channel: bool, device: torch.device
) -> dict[str, Metric]:
    """Callables ``(x, ref) -> (B,)`` for ``names``, with the border and luma options applied.

    Modules (ST-LPIPS) are built once here, in evaluation mode, on ``device``.
    """
    from indiflow import metrics

    built: dict[str, Metric] = {}
    for name in dict.fromkeys(names):  # keeps order, drops repeats
        spec = METRICS[name]
        target = getattr(metrics, spec.attribute)
        if spec.is_module:
            target = target().to(device).eval()
        built[name] = _bind(target, spec, crop_border, y_channel)
    return built


def _bind(target: Callable, spec: MetricName, crop_border: int, y_channel: bool) -> Metric:
    if spec.fidelity:
        return lambda x, ref: target(x, ref, crop_border=crop_border, y_channel=y_channel)
    return lambda x, ref: target(crop(x, crop_border), crop(ref, crop_border))
