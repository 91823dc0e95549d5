"""Weight-free distribution measures that see regression to the mean (blur, lost texture).

A restoration that averages over plausible answers is smooth: its fine-scale statistics
shrink although its pixels stay close to the truth. These measures compare statistics of an
image with those of its reference instead of comparing pixels:

- :func:`laplacian_swd`: sliced Wasserstein distance between 7 x 7 patch sets of a Laplacian
  pyramid (Karras et al., ICLR 2018);
- :func:`spectrum_gap` (in :mod:`.spectrum`): signed gap of the radially averaged power
  spectrum at high frequencies (negative for blur, positive for noise);
- :func:`gradient_w1`: 1-D Wasserstein distance between gradient-magnitude distributions.

All take ``(x, ref)`` float images ``(B, C, H, W)`` in [0, 1] and return ``(B,)``: each image
is compared with its own reference. The 1-D Wasserstein distances use the exact formula for two
samples of equal size (``mean |sort(a) - sort(b)|``), which the tests check against
``scipy.stats.wasserstein_distance``.
"""

from __future__ import annotations

import torch

from indiflow._checks import check_int, check_tensor
from indiflow.metrics._checks import check_image, check_image_pair, check_min_size, compute_dtype
from indiflow.metrics._pyramid import coarsest_side, laplacian_pyramid, pyramid_levels


def wasserstein_1d(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """W1 between the empirical distributions of equal-size samples along the last dimension.

    ``W1 = mean_i |a_(i) - b_(i)|`` with ``a_(i)``, ``b_(i)`` sorted: exact for two empirical
    measures with the same number of equally weighted atoms (``scipy.stats.wasserstein_distance``
    gives the same for them, one pair at a time on the CPU).

    Args:
        a, b: float tensors of the same shape ``(..., N)``, ``N >= 1``.

    Returns:
        Shape ``a.shape[:-1]``.

    Raises:
        TypeError, ValueError: not float tensors, different shapes, or ``N = 0``.
    """
    for name, value in (("a", a), ("b", b)):
        check_tensor(name, value)
    if a.shape != b.shape or a.shape[-1] == 0:
        raise ValueError(
            "a and b must have the same shape with a non-empty last dimension (equal-size "
            f"samples), got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    return _w1_sorted(a, b)


def _w1_sorted(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.sort(dim=-1).values - b.sort(dim=-1).values).abs().mean(dim=-1)


def _patches(
    level: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, size: int
) -> torch.Tensor:
    """``(B, N, C, size, size)`` patches whose top-left corners are ``(rows[n], cols[n])``."""
    offsets = torch.arange(size, device=level.device)
    index_y = (rows[:, None] + offsets)[:, :, None]  # (N, size, 1)
    index_x = (cols[:, None] + offsets)[:, None, :]  # (N, 1, size)
    return level[:, :, index_y, index_x].permute(0, 2, 1, 3, 4)


def _normalise_jointly(
    patches_x: torch.Tensor, patches_ref: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Standardise both patch sets with the per-channel mean and std of their union.

    Statistics run over all patches and taps of both sets, per image and channel (population
    std). Returns the descriptors flattened to ``(B, N, C * size * size)``.
    """
    both = torch.cat([patches_x, patches_ref], dim=1)
    mean = both.mean(dim=(1, 3, 4), keepdim=True)
    std = both.std(dim=(1, 3, 4), keepdim=True, correction=0).clamp_min(1e-12)  # flat: zeros

    def standardise(patches: torch.Tensor) -> torch.Tensor:
        return ((patches - mean) / std).flatten(start_dim=2)

    return standardise(patches_x), standardise(patches_ref)


def _patch_corners(
    height: int, width: int, size: int, count: int, generator: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """All valid corners if there are at most ``count``, else ``count`` drawn uniquely."""
    rows, cols = height - size + 1, width - size + 1
    total = rows * cols
    if total <= count:
        flat = torch.arange(total)
    else:
        flat = torch.randperm(total, generator=generator)[:count]
    return (flat // cols).to(device), (flat % cols).to(device)


def laplacian_swd(
    x: torch.Tensor,
    ref: torch.Tensor,
    *,
    levels: int | None = None,
    patch_size: int = 7,
    patches: int = 2048,
    projections: int = 256,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sliced Wasserstein distance between Laplacian-pyramid patch sets (Karras et al. 2018).

    For each image pair and each pyramid level (see :func:`._pyramid.laplacian_pyramid`: 5 x 5
    binomial filter, mirror padding, finest level first, the last level the low-pass residual):

    1. take ``patch_size`` x ``patch_size`` neighbourhoods (all channels) at the same corners in
       ``x`` and ``ref``: every corner if the level has at most ``patches`` of them, else
       ``patches`` corners drawn without replacement;
    2. standardise both sets with the per-channel mean and standard deviation of their union
       (over all patches and taps of the level);
    3. project both sets on ``projections`` random unit directions and average the exact 1-D
       W1 distances between the projected sets over the directions.

    The result is the mean of the per-level values (Karras et al. report it times 10³).
    Differences from their metric, which compares two image collections: one image per set;
    shared corners (so ``laplacian_swd(x, x) = 0`` exactly); joint instead of per-set
    normalisation, which keeps the distance symmetric and keeps a level's loss of contrast
    visible (normalising a blurred image's fine level on its own scales it back to unit
    variance and hides most of the blur); one set of ``projections`` directions per level
    instead of 4 repeats of 128.

    Args:
        x: images ``(B, C, H, W)`` in [0, 1], at least 16 x 16.
        ref: reference images of the same shape.
        levels: pyramid levels; default: as many as keep the coarsest level's shorter side at
            least 16 pixels (Karras et al.'s 16 x 16 floor).
        patch_size: side of the square neighbourhoods (7 in Karras et al.).
        patches: most neighbourhoods per level and image.
        projections: random directions per level.
        generator: CPU generator for the corners and directions; default a fresh one seeded
            with 0, so that repeated calls agree.

    Returns:
        ``(B,)`` float32 tensor on ``x``'s device.

    Raises:
        TypeError, ValueError: invalid images, parameters, or a coarsest level smaller than a patch.
    """
    x, ref = check_image_pair(x, ref)
    check_min_size("laplacian_swd", x, 16, "Karras et al.'s 16-pixel coarsest pyramid level")
    size = check_int("patch_size", patch_size, 1)
    count = check_int("patches", patches, 2)
    directions = check_int("projections", projections, 1)
    n_levels = (
        pyramid_levels(x.shape[-2:], minimum=16)
        if levels is None
        else check_int("levels", levels, 1)
    )
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    elif not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    elif generator.device.type != "cpu":
        raise ValueError(
            f"laplacian_swd draws its corners and directions on the CPU; pass a CPU generator, "
            f"got one on {generator.device}"
        )
    coarsest = coarsest_side(x.shape[-2:], n_levels)
    if coarsest < max(size, 3):
        raise ValueError(
            f"{n_levels} levels of a {x.shape[-2]}x{x.shape[-1]} image end at {coarsest} pixels, "
            f"smaller than patch_size={size} (or 3); use fewer levels or a smaller patch"
        )
    pyr_x = laplacian_pyramid(x.float(), n_levels)
    pyr_ref = laplacian_pyramid(ref.float(), n_levels)
    per_level = []
    for level_x, level_ref in zip(pyr_x, pyr_ref, strict=True):
        rows, cols = _patch_corners(*level_x.shape[-2:], size, count, generator, x.device)
        desc_x, desc_ref = _normalise_jointly(
            _patches(level_x, rows, cols, size), _patches(level_ref, rows, cols, size)
        )
        dirs = torch.randn(desc_x.shape[-1], directions, generator=generator)
        dirs = (dirs / dirs.norm(dim=0, keepdim=True)).to(x.device)
        # (B, directions, N), contiguous because torch sorts a strided last dimension slowly
        proj_x = (desc_x @ dirs).transpose(1, 2).contiguous()
        proj_ref = (desc_ref @ dirs).transpose(1, 2).contiguous()
        per_level.append(_w1_sorted(proj_x, proj_ref).mean(dim=1))
    return torch.stack(per_level).mean(dim=0)


def gradient_magnitude(x: torch.Tensor) -> torch.Tensor:
    """Forward-difference gradient magnitude per channel, ``(B, C, H - 1, W - 1)``.

    ``g = sqrt((u[i, j+1] - u[i, j])² + (u[i+1, j] - u[i, j])²)`` for ``i < H - 1, j < W - 1``,
    in ``x``'s dtype.

    Raises:
        TypeError, ValueError: not a float ``(B, C, H, W)`` batch in [0, 1] of at least 2 x 2.
    """
    x = check_image("x", x)
    check_min_size("gradient_magnitude", x, 2, "one forward difference per axis")
    return _gradient_magnitude(x)


def _gradient_magnitude(x: torch.Tensor) -> torch.Tensor:
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    return torch.sqrt(dx.square() + dy.square())


def gradient_w1(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """1-D Wasserstein distance between the gradient-magnitude distributions of ``x`` and ``ref``.

    Per image, all ``C (H - 1)(W - 1)`` values of :func:`gradient_magnitude` form one sample;
    the distance is the exact W1 between the two equal-size samples,
    ``mean |sort(g_x) - sort(g_ref)|`` (what ``scipy.stats.wasserstein_distance`` computes).
    In the units of the image (0 to sqrt(2)); blur and noise both raise it.

    Args:
        x: images ``(B, C, H, W)`` in [0, 1], at least 2 x 2.
        ref: reference images of the same shape.

    Returns:
        ``(B,)`` float64 tensor on ``x``'s device (float32 on MPS).
    """
    x, ref = check_image_pair(x, ref)
    check_min_size("gradient_w1", x, 2, "one forward difference per axis")
    dtype = compute_dtype(x)
    g_x = _gradient_magnitude(x.to(dtype)).flatten(start_dim=1)
    g_ref = _gradient_magnitude(ref.to(dtype)).flatten(start_dim=1)
    return _w1_sorted(g_x, g_ref)
