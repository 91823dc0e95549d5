"""Experiment configuration: one TOML file -> frozen dataclasses, and back to plain data.

API (what a command-line front end calls)::

    config = load_config("sr4_photos_cpu", overrides=["train.steps=10"])   # name or path
    config = parse_config(table, base_dir=None)    # from a plain dict (e.g. a checkpoint's)
    table = apply_overrides(table, ["train.steps=10", 'data.source="folders"'])
    config_to_dict(config) -> dict                 # plain data (what checkpoints store)
    config_to_toml(config) -> str                  # what ``config.toml`` beside them holds
    shipped_configs() -> list of names             # the experiments inside the package

Sections: ``[data]`` (:class:`~indiflow.training.sections.DataConfig`), ``[model]`` (exactly the
keyword arguments of ``ind.nets.UNet``), ``[train]``, ``[loss]``, ``[validation]``;
``docs/training.md`` lists every key. An unknown key is a ``ValueError`` naming the closest
valid key; a wrong type is a ``TypeError`` naming the key, the expected type and the value.
Relative folder paths are resolved against the folder of the TOML file (``load_config``) or
``base_dir`` (``parse_config``; default: the current directory).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import os
import sys
import typing
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from indiflow.training._schema import (
    check_keys,
    check_table,
    coerce,
    parse_dataclass,
)
from indiflow.training._toml import dumps as toml_dumps
from indiflow.training.sections import (
    Config,
    DataConfig,
    LossConfig,
    TrainConfig,
    ValidationConfig,
)
from indiflow.training.specs import degradation_table, parse_degradation

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": dict,
    "train": TrainConfig,
    "loss": LossConfig,
    "validation": ValidationConfig,
}
_PATH_KEYS = ("gt_dir", "lq_dir", "val_gt_dir", "val_lq_dir")


def shipped_configs() -> list[str]:
    """Names of the experiment configs shipped in ``indiflow/configs`` (sorted)."""
    folder = resources.files("indiflow") / "configs"
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_config(name_or_path: str | os.PathLike[str], overrides: Iterable[str] = ()) -> Config:
    """Read a TOML experiment config by shipped name (``"sr4_photos_cpu"``) or by path.

    Args:
        name_or_path: a path to a ``.toml`` file, or the name of a shipped config.
        overrides: ``"section.key=value"`` strings applied before parsing
            (see :func:`apply_overrides`).

    Raises:
        ValueError: no such file or shipped name, TOML syntax errors, or an invalid config.
        TypeError: a wrong-typed value.
    """
    path = Path(name_or_path)
    if path.is_file():
        text, base_dir = path.read_text(encoding="utf-8"), path.resolve().parent
    elif str(name_or_path) in shipped_configs():
        resource = resources.files("indiflow") / "configs" / f"{name_or_path}.toml"
        text, base_dir = resource.read_text(encoding="utf-8"), None
    else:
        raise ValueError(
            f"no config file {str(name_or_path)!r} and no shipped config of that name; "
            f"shipped configs: {', '.join(shipped_configs())}"
        )
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"config {str(name_or_path)!r} is not valid TOML: {err}") from err
    return parse_config(apply_overrides(table, overrides), base_dir=base_dir)


def apply_overrides(table: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``table`` with ``"section.key=value"`` overrides applied.

    The value is read as a TOML literal (``10``, ``2e-4``, ``true``, ``"folders"``,
    ``[1, 2]``, ``{kind = "jpeg", quality = 50}``); a value that is not valid TOML is taken as
    a bare string, so ``data.source=folders`` works. Dotted keys may go deeper than one level
    (``data.degradation.scale=2``). Unknown keys are reported when the result is parsed.

    Raises:
        ValueError: an override without ``=`` or without a ``section.`` prefix.
    """
    result = copy.deepcopy(dict(table))
    for override in overrides:
        if not isinstance(override, str) or "=" not in override:
            raise ValueError(f"an override reads section.key=value, got {override!r}")
        dotted, literal = (part.strip() for part in override.split("=", 1))
        keys = dotted.split(".")
        if len(keys) < 2 or not all(keys):
            raise ValueError(
                f"an override names section.key (e.g. train.steps=10), got {dotted!r} in "
                f"{override!r}"
            )
        try:
            value = tomllib.loads(f"value = {literal}")["value"]
        except tomllib.TOMLDecodeError:
            value = literal
        node = result
        for depth, key in enumerate(keys[:-1]):
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                where = ".".join(keys[: depth + 1])
                raise ValueError(f"cannot override {dotted}: {where} is not a table")
            node = child
        node[keys[-1]] = value
    return result


def parse_config(
    table: Mapping[str, Any], *, base_dir: str | os.PathLike[str] | None = None
) -> Config:
    """Build a :class:`Config` from a plain table (a parsed TOML file or a checkpoint's).

    Raises:
        ValueError: an unknown section or key (naming the closest valid one), a value out of
            range, or a missing required key.
        TypeError: a value of the wrong type (naming the key, the expected and received type).
    """
    table = check_table(table, "the config")
    check_keys(table, SECTIONS, "", "config section")
    if "data" not in table:
        raise ValueError("the config needs a [data] section (source, degradation, patch, ...)")
    base = Path.cwd() if base_dir is None else Path(base_dir)
    data = dict(check_table(table["data"], "data"))
    if "degradation" in data:
        data["degradation"] = parse_degradation(data["degradation"], "data.degradation")
    for key in _PATH_KEYS:
        if isinstance(data.get(key), str):
            data[key] = str((base / data[key]).resolve())
    return Config(
        data=parse_dataclass(DataConfig, data, "data"),
        model=parse_model(table.get("model", {})),
        train=parse_dataclass(TrainConfig, table.get("train", {}), "train"),
        loss=parse_dataclass(LossConfig, table.get("loss", {}), "loss"),
        validation=parse_dataclass(ValidationConfig, table.get("validation", {}), "validation"),
    )


def parse_model(table: object) -> dict[str, Any]:
    """Check ``[model]`` against the signature of ``ind.nets.UNet`` and return its kwargs.

    Keys must be keyword arguments of ``UNet``; values are checked against its annotations
    where those are simple types (``int``, ``float``, ``str``, ...); ``UNet`` checks the rest.
    """
    from indiflow.nets import UNet

    table = check_table(table, "model")
    params = {
        name: p
        for name, p in inspect.signature(UNet).parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    check_keys(table, params, "model.", "config key (model keys are ind.nets.UNet arguments)")
    try:
        hints = typing.get_type_hints(UNet.__init__)
    except (NameError, TypeError):  # annotations we cannot evaluate: let UNet check
        hints = {}
    return {key: coerce(value, hints.get(key, Any), f"model.{key}") for key, value in table.items()}


def config_to_dict(config: Config) -> dict[str, Any]:
    """The config as plain data (dicts, lists, str, int, float, bool); ``None`` keys left out.

    ``parse_config(config_to_dict(c)) == c`` for every valid config ``c``.
    """
    if not isinstance(config, Config):
        raise TypeError(f"config must be an indiflow.training.Config, got {type(config).__name__}")
    out: dict[str, Any] = {}
    for name in SECTIONS:
        section = getattr(config, name)
        values = (
            section
            if name == "model"
            else {f.name: getattr(section, f.name) for f in dataclasses.fields(section)}
        )
        out[name] = {k: _plain(v) for k, v in values.items() if v is not None}
    out["data"]["degradation"] = [degradation_table(op) for op in config.data.degradation]
    return out


def config_to_toml(config: Config) -> str:
    """The config as TOML text that :func:`load_config` reads back to the same config."""
    return toml_dumps(config_to_dict(config))


def with_model(config: Config, model_kwargs: Mapping[str, Any]) -> Config:
    """A copy of ``config`` whose ``[model]`` is ``model_kwargs`` (checked like a TOML table)."""
    return dataclasses.replace(config, model=parse_model(dict(model_kwargs)))


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


__all__ = [
    "Config",
    "apply_overrides",
    "config_to_dict",
    "config_to_toml",
    "load_config",
    "parse_config",
    "shipped_configs",
    "with_model",
]
