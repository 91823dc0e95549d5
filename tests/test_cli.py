"""The console script's parser, shared option types, tables, and the evaluate verb."""

import argparse
import csv
import math
import subprocess
import sys

import pytest
import torch
from cli_helpers import random_images, run_cli
from cli_helpers import write_images as make_folder

import indiflow as ind
from indiflow.cli import build_parser, main
from indiflow.cli.arguments import nonnegative_int, positive_float, positive_int
from indiflow.cli.image_files import pair_images
from indiflow.cli.metric_names import METRICS, crop, parse_metric_names
from indiflow.cli.table import format_table, write_csv


def quantised(x):
    return torch.round(x * 255) / 255


# --- the command and its verbs ---


def test_python_dash_m_lists_the_verbs():
    result = subprocess.run(
        [sys.executable, "-m", "indiflow", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    for verb in ("train", "restore", "evaluate"):
        assert verb in result.stdout


@pytest.mark.parametrize(
    ("verb", "options"),
    [
        ("train", ["--out", "--resume", "--set"]),
        ("restore", ["--checkpoint", "--solver", "--grid", "--tile", "--overlap", "--noise"]),
        ("evaluate", ["--gt", "--pred", "--y-channel", "--crop-border", "--metrics", "--csv"]),
    ],
)
def test_each_verb_has_help(verb, options, capsys):
    status, out, _ = run_cli([verb, "--help"], capsys)
    assert status == 0
    assert out.startswith(f"usage: indiflow {verb}")
    for option in options:
        assert option in out


def test_no_verb_is_a_usage_error(capsys):
    status, _, err = run_cli([], capsys)
    assert status == 2
    assert err.startswith("usage: indiflow") and "required" in err


def test_unknown_verb_is_a_usage_error(capsys):
    status, _, err = run_cli(["fit"], capsys)
    assert status == 2
    assert "invalid choice: 'fit'" in err


def test_parser_has_exactly_the_four_verbs():
    parser = build_parser()
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(verbs.choices) == {"train", "restore", "evaluate", "export"}


# --- option types ---


@pytest.mark.parametrize(
    ("convert", "good", "value", "bad"),
    [
        (positive_int, "3", 3, ["0", "-1", "2.5", "x"]),
        (nonnegative_int, "0", 0, ["-1", "1e3", ""]),
        (positive_float, "1e-4", 1e-4, ["0", "-2", "nan", "inf", "x"]),
    ],
)
def test_number_types(convert, good, value, bad):
    assert convert(good) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match=repr(text)[1:-1] or "number"):
            convert(text)


def test_metric_names_accept_commas_and_case():
    assert parse_metric_names("PSNR, ssim,swd") == ["psnr", "ssim", "swd"]


@pytest.mark.parametrize("text", ["lpips", "psnr,fid", ","])
def test_unknown_metric_lists_the_valid_ones(text):
    with pytest.raises(argparse.ArgumentTypeError) as error:
        parse_metric_names(text)
    for name in METRICS:
        assert name in str(error.value)


def test_crop_removes_the_border_and_refuses_to_remove_everything():
    x = torch.arange(36.0).view(1, 1, 6, 6)
    assert torch.equal(crop(x, 2), x[..., 2:4, 2:4])
    assert crop(x, 0) is x
    with pytest.raises(ValueError, match="--crop-border 3 leaves nothing of a 6x6"):
        crop(x, 3)


# --- tables ---


def test_table_aligns_numbers_right_and_text_left():
    text = format_table(["image", "psnr"], [["a.png", 30.0], ["long_name.png", 7.25]], decimals=2)
    lines = text.splitlines()
    assert lines[0] == "image           psnr"
    assert lines[1] == "-------------  -----"
    assert lines[2] == "a.png          30.00"
    assert lines[3] == "long_name.png   7.25"


def test_table_rejects_a_short_row():
    with pytest.raises(ValueError, match="1 cells for 2 columns"):
        format_table(["a", "b"], [["x"]])


def test_csv_keeps_full_precision(tmp_path):
    path = tmp_path / "sub" / "t.csv"
    write_csv(path, ["image", "v"], [["a", 1 / 3], ["mean", 0.1 + 0.2]])
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["image", "v"]
    assert float(rows[1][1]) == 1 / 3 and float(rows[2][1]) == 0.1 + 0.2


# --- evaluate ---


def test_pairs_match_names_across_extensions(tmp_path):
    images = random_images(2)
    gt = make_folder(tmp_path / "gt", images, suffix=".bmp")
    pred = make_folder(tmp_path / "pred", images)
    pairs = pair_images(gt, pred)
    assert [(g.name, p.name) for g, p in pairs] == [
        ("img00.bmp", "img00.png"),
        ("img01.bmp", "img01.png"),
    ]


def test_evaluate_psnr_matches_a_hand_computation(tmp_path, capsys):
    clean = random_images(3, seed=1)
    noisy = {k: (v + 0.05 * torch.randn_like(v)).clamp(0, 1) for k, v in clean.items()}
    gt = make_folder(tmp_path / "gt", clean)
    pred = make_folder(tmp_path / "pred", noisy)
    table = tmp_path / "scores.csv"
    argv = ["evaluate", "--gt", str(gt), "--pred", str(pred), "--metrics", "psnr,ssim"]
    status, out, err = run_cli([*argv, "--csv", str(table)], capsys)
    assert status == 0, err
    rows = list(csv.DictReader(table.open()))
    assert [r["image"] for r in rows] == ["img00.png", "img01.png", "img02.png", "mean"]
    expected = []
    for name in sorted(clean):
        mse = (quantised(noisy[name]).double() - quantised(clean[name]).double()).square().mean()
        expected.append(10 * math.log10(1 / mse.item()))
    for row, value in zip(rows, expected, strict=False):
        assert float(row["psnr"]) == pytest.approx(value, abs=1e-9)
        assert 0 < float(row["ssim"]) < 1
        assert f"{value:.4f}" in out
    assert float(rows[-1]["psnr"]) == pytest.approx(sum(expected) / 3, abs=1e-9)
    assert out.splitlines()[0].split() == ["image", "psnr", "ssim"]
    assert "evaluate" in err  # the progress bar goes to stderr


def test_evaluate_forwards_crop_border_and_y_channel(tmp_path, capsys):
    clean = random_images(1, shape=(3, 24, 24), seed=2)
    noisy = {k: (v * 0.9 + 0.05) for k, v in clean.items()}
    gt = make_folder(tmp_path / "gt", clean)
    pred = make_folder(tmp_path / "pred", noisy)
    table = tmp_path / "t.csv"
    argv = ["evaluate", "--gt", str(gt), "--pred", str(pred), "--y-channel", "--crop-border", "4"]
    status, _, err = run_cli([*argv, "--csv", str(table)], capsys)
    assert status == 0, err
    row = next(csv.DictReader(table.open()))
    x, ref = quantised(noisy["img00"])[None], quantised(clean["img00"])[None]
    for name in ("psnr", "ssim"):
        metric = getattr(ind.metrics, name)
        assert float(row[name]) == pytest.approx(
            metric(x, ref, crop_border=4, y_channel=True).item(), abs=1e-9
        )
        assert float(row[name]) != pytest.approx(metric(x, ref).item(), abs=1e-6)


def test_evaluate_refuses_an_unknown_metric(tmp_path, capsys):
    gt = make_folder(tmp_path / "gt", random_images(1))
    argv = ["evaluate", "--gt", str(gt), "--pred", str(gt), "--metrics", "psnr,fid"]
    status, _, err = run_cli(argv, capsys)
    assert status == 2
    assert "usage: indiflow evaluate" in err and "unknown metric 'fid'" in err
    assert "gradient_w1" in err


@pytest.mark.parametrize("missing", ["--gt", "--pred"])
def test_evaluate_refuses_a_missing_folder(missing, tmp_path, capsys):
    folder = make_folder(tmp_path / "gt", random_images(1))
    paths = {"--gt": str(folder), "--pred": str(folder), missing: str(tmp_path / "nowhere")}
    status, _, err = run_cli(["evaluate", *[t for kv in paths.items() for t in kv]], capsys)
    assert status == 2
    assert f"argument {missing}" in err and "no such folder" in err


@pytest.mark.parametrize("extra_in", ["gt", "pred"])
def test_evaluate_names_an_image_without_partner(extra_in, tmp_path, capsys):
    images = random_images(3)
    gt = make_folder(tmp_path / "gt", images)
    pred = make_folder(tmp_path / "pred", images)
    (tmp_path / ("pred" if extra_in == "gt" else "gt") / "img01.png").unlink()
    status, out, err = run_cli(["evaluate", "--gt", str(gt), "--pred", str(pred)], capsys)
    assert status == 2 and out == ""
    assert err.startswith("indiflow: error: 1 image(s) of ")
    assert f"{tmp_path / extra_in} have no partner" in err and "img01.png" in err
    assert "Traceback" not in err


def test_evaluate_names_an_image_of_another_size(tmp_path, capsys):
    images = random_images(2)
    gt = make_folder(tmp_path / "gt", images)
    pred = make_folder(tmp_path / "pred", {**images, "img01": torch.rand(3, 16, 18)})
    status, _, err = run_cli(["evaluate", "--gt", str(gt), "--pred", str(pred)], capsys)
    assert status == 2
    assert "img01.png is 16x18 (H x W) but its ground truth" in err and "is 16x20" in err


def test_evaluate_refuses_two_images_of_one_name(tmp_path, capsys):
    images = random_images(1)
    gt = make_folder(tmp_path / "gt", images)
    make_folder(gt, images, suffix=".bmp")
    status, _, err = run_cli(["evaluate", "--gt", str(gt), "--pred", str(gt)], capsys)
    assert status == 2
    assert "two images named 'img00' (img00.bmp and img00.png)" in err


def test_evaluate_names_an_image_of_another_channel_count(tmp_path, capsys):
    images = random_images(2)
    gt = make_folder(tmp_path / "gt", images)
    pred = make_folder(tmp_path / "pred", {**images, "img01": torch.rand(1, 16, 20)})
    status, _, err = run_cli(["evaluate", "--gt", str(gt), "--pred", str(pred)], capsys)
    assert status == 2
    assert "img01.png has shape (1, 16, 20)" in err and "(3, 16, 20)" in err


def test_traceback_flag_shows_the_exception(tmp_path):
    images = random_images(2)
    gt = make_folder(tmp_path / "gt", images)
    pred = make_folder(tmp_path / "pred", {"img00": images["img00"]})
    with pytest.raises(ValueError, match="no partner"):
        main(["--traceback", "evaluate", "--gt", str(gt), "--pred", str(pred)])


def test_evaluate_all_metrics_rank_a_blurred_image_below_a_faithful_one(tmp_path, capsys):
    clean = random_images(2, shape=(3, 32, 32), seed=5)
    close = {k: (v + 0.01 * torch.randn_like(v)).clamp(0, 1) for k, v in clean.items()}
    blurred = {
        k: (v + v.roll(1, -1) + v.roll(1, -2) + v.roll((1, 1), (-2, -1))) / 4
        for k, v in clean.items()
    }
    gt = make_folder(tmp_path / "gt", clean)
    names = "psnr,ssim,stlpips,swd,spectrum,gradient_w1"
    scores = {}
    for label, images in (("close", close), ("blurred", blurred)):
        pred = make_folder(tmp_path / label, images)
        table = tmp_path / f"{label}.csv"
        argv = ["evaluate", "--gt", gt, "--pred", pred, "--metrics", names, "--csv", table]
        status, _, err = run_cli([*argv, "--device", "cpu"], capsys)
        assert status == 0, err
        rows = list(csv.DictReader(table.open()))
        assert list(rows[0]) == ["image", *names.split(",")]
        scores[label] = {k: float(v) for k, v in rows[-1].items() if k != "image"}
    for name in ("psnr", "ssim"):
        assert scores["close"][name] > scores["blurred"][name]
    for name in ("stlpips", "swd", "gradient_w1"):
        assert scores["close"][name] < scores["blurred"][name]
    assert scores["blurred"]["spectrum"] < 0  # blur removes high frequencies
