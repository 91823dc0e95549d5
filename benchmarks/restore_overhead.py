"""Overhead of ``ind.restore`` (Euler, 20 steps) against a bare Algorithm 1 loop, per image.

Question: what does ``ind.restore`` (validation, eval-mode switch, ``no_grad``, the ``solve`` loop
and its single deferred finiteness check) cost on top of the network evaluations themselves?
Both run the same ``ind.nets.UNet`` (default configuration, random weights with a non-zero
output layer, eval mode, ``torch.no_grad``) on the same image with the same 20 calls; the bare
loop is ``x <- (d/t) F(x, t) + (1 - d/t) x``. Timings are interleaved (each repeat runs both, in
alternating order) and reported as medians and their ratio. Target (issue 10): <= 1.05.

On a shared machine the network calls themselves vary by several percent between runs, which
swamps the loop's own cost; so the time spent inside the network is also clocked, and the time
outside it (the loop's own overhead) is reported separately, together with the ratio it implies
for equal network time: ``(network + outside_restore) / (network + outside_bare)``.

    OMP_NUM_THREADS=1 python benchmarks/restore_overhead.py --size 128 --repeats 9
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

import indiflow as ind


class Clocked(nn.Module):
    """Runs ``net`` and adds the wall time of each call to ``seconds``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.seconds = 0.0

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        out = self.net(x_t, t)
        self.seconds += time.perf_counter() - start
        return out


def bare_algorithm1(net: nn.Module, y: torch.Tensor, steps: int) -> torch.Tensor:
    x, d = y, 1.0 / steps
    with torch.no_grad():
        for i in range(steps):
            t = 1.0 - i * d
            f = net(x, torch.full((x.shape[0],), t, dtype=x.dtype))
            x = (d / t) * f + (1 - d / t) * x
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128, help="image side, pixels")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = ind.nets.UNet().eval()
    with torch.no_grad():
        net.conv_out.weight.normal_(0.0, 0.02)  # a zero output layer would make F trivial
    net = Clocked(net)
    y = torch.rand(1, 3, args.size, args.size)
    controller = ind.FixedSteps(ind.TimeGrid.uniform(args.steps))
    methods = {
        "bare Algorithm 1": lambda: bare_algorithm1(net, y, args.steps),
        "ind.restore": lambda: ind.restore(net, y, ind.Euler(), controller),
    }
    gap = (methods["bare Algorithm 1"]() - methods["ind.restore"]()).abs().max().item()
    if gap > 1e-5:
        raise RuntimeError(f"ind.restore disagrees with the bare loop by {gap}")

    samples: dict[str, list[float]] = {name: [] for name in methods}
    outside: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    for r in range(args.repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            net.seconds = 0.0
            start = time.perf_counter()
            methods[name]()
            samples[name].append(time.perf_counter() - start)
            outside[name].append(samples[name][-1] - net.seconds)
    median = {name: statistics.median(v) for name, v in samples.items()}
    median_outside = {name: statistics.median(v) for name, v in outside.items()}
    base = median["bare Algorithm 1"]
    network = base - median_outside["bare Algorithm 1"]
    print(
        f"UNet() with {net.net.num_parameters():,} parameters, one {args.size}x{args.size} "
        f"image, Euler {args.steps} steps, {args.threads} thread(s), median of {args.repeats}, "
        f"torch {torch.__version__}; max |difference| {gap:.1e}"
    )
    print(
        f"{'method':<18} {'median s':>9} {'/ bare':>7} {'outside net ms':>15} "
        f"{'/ bare, equal net':>18}"
    )
    for name, m in median.items():
        equal_net = (network + median_outside[name]) / base
        print(
            f"{name:<18} {m:>9.3f} {m / base:>7.3f} {1e3 * median_outside[name]:>15.2f} "
            f"{equal_net:>18.4f}"
        )


if __name__ == "__main__":
    main()
