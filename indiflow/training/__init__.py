"""Training engine: TOML configs, the InDI training loop, checkpoints, torchrun/DDP.

What a front end (``indiflow train``, a notebook, a script) calls::

    from indiflow.training import load_config, train, load_model

    config = load_config("sr4_photos_cpu", overrides=["train.steps=200"])  # name or .toml path
    result = train(config, out_dir="runs/sr4", resume="auto")   # "auto" | "never" | path
    model, noise, config = load_model(result.checkpoint)        # EMA weights by default
    x = ind.restore(model, y, ind.Euler(), ind.FixedSteps(ind.TimeGrid.uniform(20)), noise=noise)

Under ``torchrun --nproc_per_node=K`` the same ``train`` call runs one DDP rank per process.
``docs/training.md`` is the config reference.
"""

from indiflow.training.checkpoint import (
    CheckpointError,
    list_checkpoints,
    load_checkpoint,
    load_model,
    newest_valid_checkpoint,
)
from indiflow.training.config import (
    apply_overrides,
    config_to_dict,
    config_to_toml,
    load_config,
    parse_config,
    shipped_configs,
)
from indiflow.training.ema import EMA
from indiflow.training.export import export_weights, shipped_weights
from indiflow.training.loss import TrainingDiverged
from indiflow.training.sections import (
    Config,
    DataConfig,
    LossConfig,
    TrainConfig,
    ValidationConfig,
)
from indiflow.training.trainer import TrainResult, train

__all__ = [
    "EMA",
    "CheckpointError",
    "Config",
    "DataConfig",
    "LossConfig",
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "ValidationConfig",
    "apply_overrides",
    "config_to_dict",
    "config_to_toml",
    "export_weights",
    "list_checkpoints",
    "load_checkpoint",
    "load_config",
    "load_model",
    "newest_valid_checkpoint",
    "parse_config",
    "shipped_configs",
    "shipped_weights",
    "train",
]
