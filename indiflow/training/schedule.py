"""The learning-rate schedule: linear warm-up, then a cosine decay to zero."""

from __future__ import annotations

import math
from collections.abc import Callable


def warmup_cosine(warmup: int, total: int) -> Callable[[int], float]:
    """The factor on the peak learning rate before optimiser step ``s`` (0-based).

    ``f(s) = (s + 1) / warmup`` for ``s < warmup``, then
    ``f(s) = (1 + cos(pi * (s - warmup) / (total - warmup))) / 2``: 1 at the end of the warm-up,
    0 at ``s = total``. Returned as a plain function (``torch.optim.lr_scheduler.LambdaLR``
    saves no state for functions, so a resumed run follows the config it was given).

    Raises:
        ValueError: unless ``0 <= warmup`` and ``1 <= total``.
    """
    if warmup < 0 or total < 1:
        raise ValueError(f"need warmup >= 0 and total >= 1, got warmup={warmup}, total={total}")

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor
