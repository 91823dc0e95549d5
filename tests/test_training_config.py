"""TOML configs: parsing into dataclasses, key and type errors, overrides, shipped configs."""

from __future__ import annotations

import math
import sys

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from training_tiny import TINY, tiny_config

from indiflow.degradations import JPEG, BicubicSR, GaussianBlur
from indiflow.interpolant import BrownianNoise, ConstantNoise
from indiflow.time_laws import MixtureTime, PowerTime, UniformTime
from indiflow.training import (
    apply_overrides,
    config_to_dict,
    config_to_toml,
    load_config,
    parse_config,
    shipped_configs,
    train,
)
from indiflow.training._toml import dumps
from indiflow.training.schedule import warmup_cosine

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_shipped_configs_load_by_name_and_round_trip_through_toml(tmp_path):
    names = shipped_configs()
    for wanted in ("sr4_photos_cpu", "deblur_photos_cpu", "sr4_photos_gpu", "deblur_photos_gpu"):
        assert wanted in names
    for name in names:
        config = load_config(name)
        path = tmp_path / f"{name}.toml"
        path.write_text(config_to_toml(config))
        assert load_config(path) == config
        assert parse_config(config_to_dict(config)) == config
    sr4 = load_config("sr4_photos_cpu")
    assert sr4.data.degradation == (BicubicSR(4),)
    assert sr4.loss.noise_schedule() == ConstantNoise(0.05)


def test_load_config_resolves_folders_against_the_file_and_applies_overrides(tmp_path):
    (tmp_path / "exp").mkdir()
    path = tmp_path / "exp" / "run.toml"
    path.write_text(
        '[data]\nsource = "folders"\ngt_dir = "gt"\nlq_dir = "../lq"\n'
        "[validation]\nevery = 0\n[train]\nsteps = 5\n"
    )
    config = load_config(path, overrides=["train.steps=7", "train.lr=1e-3"])
    assert config.data.gt_dir == str(tmp_path / "exp" / "gt")
    assert config.data.lq_dir == str(tmp_path / "lq")
    assert (config.train.steps, config.train.lr) == (7, 1e-3)


@pytest.mark.parametrize(
    ("override", "unknown", "closest"),
    [
        ("train.stpes=3", "train.stpes", "train.steps"),
        ("trian.steps=3", "trian", "train"),
        ("model.widht=8", "model.widht", "model.width"),
        ("loss.nosie='constant'", "loss.nosie", "loss.noise"),
        ("validation.evry=2", "validation.evry", "validation.every"),
        ("data.degradation.scael=4", "data.degradation.scael", "data.degradation.scale"),
        ('data.degradation.kind="bicubic"', "bicubic", "bicubic_sr"),
    ],
)
def test_an_unknown_key_names_the_closest_valid_one(override, unknown, closest):
    table = apply_overrides(TINY, [override])
    if "scael" in override:
        del table["data"]["degradation"]["scale"]
    with pytest.raises(ValueError, match="unknown") as error:
        parse_config(table)
    assert repr(unknown) in str(error.value)
    assert f"did you mean {closest!r}" in str(error.value)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ('train.steps="10"', "train.steps must be int, got str: '10'"),
        ("train.lr=true", "train.lr must be float, got bool: True"),
        ("train.channels_last=1", "train.channels_last must be bool, got int: 1"),
        ("data.patch=16.0", "data.patch must be int, got float: 16.0"),
        ("model.width=8.5", "model.width must be int, got float: 8.5"),
        ('data.degradation.scale="4"', "data.degradation.scale must be int, got str: '4'"),
        ("data.gt_dir=3", "data.gt_dir must be str | None, got int: 3"),
        ('data.degradation="bicubic"', "data.degradation must be a table"),
    ],
)
def test_a_wrong_type_names_the_key_the_expected_and_the_received_type(override, expected):
    with pytest.raises(TypeError) as error:
        parse_config(apply_overrides(TINY, [override]))
    assert expected in str(error.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (['train.autocast="fp32"'], "train.autocast must be one of 'none', 'bf16', 'fp16'"),
        (["train.batch=0"], "train.batch must be >= 1"),
        (["train.ema=1.0"], r"train.ema must lie in \[0, 1\)"),
        (["train.lr=0"], "train.lr must be > 0"),
        (['loss.noise="none"', "loss.eps=0.1"], 'needs loss.noise = "constant"'),
        (['loss.noise="brownian"', "loss.eps=0.0"], "needs loss.eps > 0"),
        (['loss.time="uniform"'], 'loss.time_a is used by, and needed for, loss.time = "mixture"'),
        (['loss.time="power"'], "loss.time_a is used by"),
        (['data.source="folders"'], "needs both data.gt_dir and data.lq_dir"),
        (['data.source="folders"', 'data.gt_dir="a"', 'data.lq_dir="b"', "validation.every=5"],
         "validation needs held-out pairs"),
        (['data.val_gt_dir="a"'], "give both data.val_gt_dir and data.val_lq_dir"),
        (["data.degradation=[]"], "needs a degradation"),
        (['data.degradation={scale = 2}'], "needs a kind"),
        (["data.degradation.scale=0"], "scale"),
    ],
)  # fmt: skip
def test_values_out_of_range_or_inconsistent_are_value_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        parse_config(apply_overrides(TINY, overrides))


def test_a_section_that_is_not_a_table_is_a_type_error():
    with pytest.raises(TypeError, match="config key train must be a table"):
        parse_config({"data": TINY["data"], "train": 3})


def test_a_missing_section_and_a_missing_required_key_are_named():
    with pytest.raises(ValueError, match=r"needs a \[data\] section"):
        parse_config({"train": {"steps": 3}})
    table = apply_overrides(TINY, ['data.degradation={kind = "jpeg"}'])
    with pytest.raises(ValueError, match=r"missing the required key\(s\): quality"):
        parse_config(table)


def test_loss_section_builds_the_library_objects():
    base = tiny_config()
    assert base.loss.time_law() == MixtureTime(0.5)
    assert base.loss.noise_schedule() == ConstantNoise(0.02)
    table = apply_overrides(TINY, ['loss.time="power"', "loss.time_k=2"])
    del table["loss"]["time_a"]
    other = parse_config(apply_overrides(table, ['loss.noise="brownian"']))
    assert other.loss.noise_schedule() == BrownianNoise(0.02)
    assert other.loss.time_law() == PowerTime(2.0)
    plain = parse_config({"data": TINY["data"]})
    assert plain.loss.noise_schedule() is None and plain.loss.time_law() == UniformTime()


def test_degradation_arrays_compose_in_order_and_round_trip():
    config = tiny_config(
        'data.degradation=[{kind = "gaussian_blur", sigma = 1.5}, {kind = "jpeg", quality = 60}]'
    )
    assert config.data.degradation == (GaussianBlur(1.5), JPEG(60))
    table = config_to_dict(config)["data"]["degradation"]
    assert table == [{"kind": "gaussian_blur", "sigma": 1.5}, {"kind": "jpeg", "quality": 60}]


def test_apply_overrides_reads_toml_literals_and_leaves_the_input_alone():
    table = {"train": {"steps": 1}, "data": {"degradation": {"kind": "jpeg", "quality": 5}}}
    out = apply_overrides(
        table,
        [
            "train.steps=10",
            "train.lr = 2e-4",
            "train.compile=true",
            "data.source=folders",  # not TOML: taken as a bare string
            'data.gt_dir="a=b"',  # only the first "=" splits
            "data.degradation.quality=50",
            "model.multipliers=[1, 2]",
        ],
    )
    assert out["train"] == {"steps": 10, "lr": 2e-4, "compile": True}
    assert out["data"]["source"] == "folders" and out["data"]["gt_dir"] == "a=b"
    assert out["data"]["degradation"] == {"kind": "jpeg", "quality": 50}
    assert out["model"] == {"multipliers": [1, 2]}
    assert table == {"train": {"steps": 1}, "data": {"degradation": {"kind": "jpeg", "quality": 5}}}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.steps", "section.key=value"),
        ("steps=3", "names section.key"),
        ("train..steps=3", "names section.key"),
        ("train.steps.x=3", "train.steps is not a table"),
        (3, "section.key=value"),
    ],
)
def test_bad_overrides_are_value_errors(override, message):
    with pytest.raises(ValueError, match=message):
        apply_overrides(TINY, [override])


def test_load_config_rejects_unknown_names_and_bad_toml(tmp_path):
    with pytest.raises(ValueError, match="sr4_photos_cpu"):  # lists the shipped names
        load_config("no_such_experiment")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nsteps = 3\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(bad)


def test_config_functions_reject_non_configs():
    with pytest.raises(TypeError, match=r"indiflow\.training\.Config"):
        config_to_dict({"data": {}})
    with pytest.raises(TypeError, match=r"indiflow\.training\.Config"):
        train({"data": {}}, out_dir="unused")
    with pytest.raises(TypeError, match="the config must be a table"):
        parse_config([1, 2])


def test_a_missing_data_folder_is_a_value_error_naming_it(tmp_path):
    missing = tmp_path / "nowhere"
    config = tiny_config(
        'data.source="folders"', f'data.gt_dir="{missing}"', f'data.lq_dir="{tmp_path}"'
    )
    with pytest.raises(ValueError, match=r"data.gt_dir = '.*nowhere' does not exist"):
        train(config, out_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_fp16_autocast_needs_cuda(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("the check is for machines without CUDA")
    with pytest.raises(ValueError, match='"fp16" needs a CUDA device'):
        train(tiny_config('train.autocast="fp16"'), out_dir=tmp_path)


def test_warmup_cosine_matches_its_definition():
    factor = warmup_cosine(4, 14)
    assert [factor(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert factor(4) == 1.0
    assert factor(9) == pytest.approx(0.5)
    assert factor(14) == pytest.approx(0.0, abs=1e-15)
    for s in range(4, 15):
        assert factor(s) == pytest.approx((1 + math.cos(math.pi * (s - 4) / 10)) / 2)
    assert warmup_cosine(0, 1)(0) == 1.0
    with pytest.raises(ValueError, match="warmup >= 0"):
        warmup_cosine(-1, 10)


_scalars = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.text(),
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(min_size=1, max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


_tables = st.dictionaries(st.text(min_size=1), _values, max_size=4)


@given(st.dictionaries(st.text(min_size=1, max_size=8), _tables, max_size=3))
def test_the_toml_writer_round_trips_through_tomllib(sections):
    assert tomllib.loads(dumps(sections)) == sections
