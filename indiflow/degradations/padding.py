"""Half-sample symmetric ("reflect") padding, the boundary rule of the blur degradations."""

from __future__ import annotations

import torch


def reflect_indices(n: int, radius: int, device: torch.device) -> torch.Tensor:
    """Source index of each of the ``n + 2 radius`` padded positions along one axis.

    Position ``i`` in ``[-radius, n + radius)`` reads ``i`` folded into ``[0, n)`` by mirroring
    about the pixel edges (period ``2 n``): ``d c b a | a b c d | d c b a``. This is
    ``scipy.ndimage``'s ``mode='reflect'`` and numpy's ``pad(mode='symmetric')``; it differs from
    ``torch.nn.functional.pad(mode='reflect')``, which mirrors about the edge pixels
    (``d c b | a b c d | c b a``), and it stays defined when ``radius >= n``.
    """
    i = torch.arange(-radius, n + radius, device=device).remainder(2 * n)
    return torch.where(i < n, i, 2 * n - 1 - i)


def pad_reflect(x: torch.Tensor, radius_h: int, radius_w: int) -> torch.Tensor:
    """Pad the last two axes of ``x`` by ``radius_h`` rows and ``radius_w`` columns each side."""
    rows = reflect_indices(x.shape[-2], radius_h, x.device)
    cols = reflect_indices(x.shape[-1], radius_w, x.device)
    return x.index_select(-2, rows).index_select(-1, cols)
