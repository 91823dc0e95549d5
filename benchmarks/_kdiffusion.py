"""Load k-diffusion's ``sampling`` module on its own, without the rest of the package.

k-diffusion 0.1.1.post1's package ``__init__`` imports torchvision (which does not load beside a
CPU-only torch here), and ``sampling.py`` does ``from . import utils``, whose module needs
torchvision and PIL. The samplers benchmarked here (euler, heun, dpm_2, lms, dpmpp_2m) use only
``utils.append_dims``, so ``sampling.py`` is executed inside a stub package whose ``utils`` holds
that one function, written here. ``sampling.py`` itself imports scipy, torchdiffeq, torchsde and
tqdm, which must be installed.

Where ``sampling.py`` comes from, in order:

* ``source``: a directory holding ``k_diffusion/sampling.py`` (an unpacked wheel), the
  ``k_diffusion`` package directory itself, or the wheel file
  (``pip download k-diffusion==0.1.1.post1 --no-deps -d wheels/``);
* an installed package located without importing it
  (``pip install --no-deps k-diffusion==0.1.1.post1``).
"""

from __future__ import annotations

import importlib.util
import sys
import types
import zipfile
from pathlib import Path

import torch

PACKAGE = "_bench_k_diffusion"


def append_dims(x: torch.Tensor, target_dims: int) -> torch.Tensor:
    """Append trailing singleton dimensions until ``x`` has ``target_dims`` dimensions."""
    missing = target_dims - x.ndim
    if missing < 0:
        raise ValueError(f"x has {x.ndim} dimensions, more than target_dims = {target_dims}")
    return x[(...,) + (None,) * missing]


def _sampling_source(source: str | Path | None) -> tuple[str, str]:
    """``(code, origin)`` of ``k_diffusion/sampling.py``."""
    if source is not None:
        path = Path(source)
        if path.is_file() and path.suffix == ".whl":
            with zipfile.ZipFile(path) as wheel:
                return wheel.read("k_diffusion/sampling.py").decode(), f"{path}!sampling.py"
        for candidate in (path / "k_diffusion" / "sampling.py", path / "sampling.py"):
            if candidate.is_file():
                return candidate.read_text(), str(candidate)
        raise FileNotFoundError(
            f"no k_diffusion/sampling.py under {path}; pass a k-diffusion wheel, an unpacked "
            "wheel or the k_diffusion package directory"
        )
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "k-diffusion not found: pip install --no-deps k-diffusion==0.1.1.post1 (or pass the "
            "wheel from pip download k-diffusion==0.1.1.post1 --no-deps)"
        )
    candidate = Path(next(iter(spec.submodule_search_locations))) / "sampling.py"
    return candidate.read_text(), str(candidate)


def load_sampling(source: str | Path | None = None) -> types.ModuleType:
    """k-diffusion's ``sampling`` module, executed inside a stub package (see the module)."""
    name = f"{PACKAGE}.sampling"
    if name in sys.modules:
        return sys.modules[name]
    code, origin = _sampling_source(source)
    package = types.ModuleType(PACKAGE)
    package.__path__ = []
    utils = types.ModuleType(f"{PACKAGE}.utils")
    utils.append_dims = append_dims  # type: ignore[attr-defined]
    package.utils = utils  # type: ignore[attr-defined]
    sampling = types.ModuleType(name)
    sampling.__file__ = origin
    sampling.__package__ = PACKAGE
    sys.modules[PACKAGE], sys.modules[utils.__name__], sys.modules[name] = package, utils, sampling
    try:
        exec(compile(code, origin, "exec"), sampling.__dict__)
    except BaseException:
        for key in (PACKAGE, utils.__name__, name):
            sys.modules.pop(key, None)
        raise
    return sampling
