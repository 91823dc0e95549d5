"""A tiny training config and helpers to run training in forked child processes.

Children are forked (not spawned) from the test process, which has already imported torch: a
fresh interpreter would spend seconds importing torch on a loaded machine. A child runs
``train`` and reports through its exit code; the tests read the files it wrote.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from indiflow.training import apply_overrides, parse_config

TINY: dict[str, Any] = {
    "data": {
        "source": "bundled",
        "degradation": {"kind": "bicubic_sr", "scale": 2},
        "patch": 16,
        "length": 12,  # 3 global batches of 4 per epoch: runs cross epoch boundaries
    },
    "model": {
        "width": 8,
        "multipliers": [1, 2],
        "attention": [False, True],
        "heads": 2,
        "groups": 4,
        "time_dim": 16,
        "fourier_freqs": 4,
        # A fresh direct network outputs 0, so its loss falls steeply in a few steps, which
        # the tests use as the sign that training happens (a residual one starts at x_t).
        "output": "direct",
    },
    "train": {
        "steps": 10,
        "batch": 4,
        "lr": 2e-3,
        "warmup": 2,
        "ema": 0.9,
        "checkpoint_every": 2,
        "keep": 2,
        "log_every": 1,
        "seed": 3,
        "device": "cpu",
        "progress": False,
        "tensorboard": False,
    },
    "loss": {"noise": "constant", "eps": 0.02, "time": "mixture", "time_a": 0.5},
    "validation": {"every": 0},
}


def tiny_config(*overrides: str) -> Any:
    """The tiny config with ``section.key=value`` overrides."""
    return parse_config(apply_overrides(TINY, overrides))


def start_child(
    target: Callable[[], object], env: dict[str, str] | None = None
) -> multiprocessing.Process:
    """Start ``target()`` in a forked process with ``env`` added to its environment."""

    def main() -> None:
        os.environ.update(env or {})
        torch.set_num_threads(1)
        target()

    process = multiprocessing.get_context("fork").Process(target=main)
    process.start()
    return process


def join(process: multiprocessing.Process, timeout: float = 180) -> int:
    """Wait for a child; return its exit code (``-9`` if it was SIGKILLed)."""
    process.join(timeout=timeout)
    if process.is_alive():
        process.kill()
        raise TimeoutError("a training child process hung")
    return process.exitcode


def in_child(target: Callable[[], object], env: dict[str, str] | None = None) -> int:
    """Run ``target()`` in a forked process and return its exit code."""
    return join(start_child(target, env))


def kill_self() -> None:
    """SIGKILL this process: no cleanup, no flush, as a crash or an OOM killer would."""
    os.kill(os.getpid(), signal.SIGKILL)


def free_port() -> int:
    """A TCP port on the loopback interface that is free at the time of the call."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def state_of(path: Path) -> dict[str, Any]:
    """A checkpoint's dict, loaded like the engine loads it."""
    return torch.load(path, map_location="cpu", weights_only=True)
