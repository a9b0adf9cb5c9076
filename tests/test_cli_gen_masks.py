"""``pconv gen-masks`` end to end, with real files in tmp_path."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from pconv_cli.cli import app
from pconv_cli.imaging import load_mask
from pconv_cli.masks import (
    PAPER_BAND_EDGES,
    MaskSetSpec,
    band_label,
    band_of,
    hole_ratio,
    preview_sheet,
    read_manifest,
)

runner = CliRunner()


def gen(*args: str):
    return runner.invoke(app, ["gen-masks", *args])


def test_per_band_border_both_makes_two_banded_sets(tmp_path):
    result = gen(str(tmp_path), "--size", "64", "--per-band", "2", "--border", "both",
                 "--seed", "5", "--workers", "1")
    assert result.exit_code == 0, result.output
    rows = read_manifest(tmp_path)
    assert len(rows) == 24
    labels = [band_label(a, b) for a, b in zip(PAPER_BAND_EDGES, PAPER_BAND_EDGES[1:],
                                               strict=False)]
    for border in (True, False):
        bands = [r.band for r in rows if r.border is border]
        assert sorted(bands) == sorted(labels * 2)
    assert len(read_manifest(tmp_path / "no-border")) == 12
    assert "(0.5,0.6]" in result.output


def test_no_border_holds_the_margin(tmp_path):
    result = gen(str(tmp_path), "--size", "80x64", "--per-band", "1", "--no-border",
                 "--margin", "6", "--workers", "1")
    assert result.exit_code == 0, result.output
    for row in read_manifest(tmp_path):
        valid = load_mask(row.path)
        assert valid.shape == (64, 80) and not row.border
        assert valid[:6].all() and valid[-6:].all() and valid[:, :6].all() and valid[:, -6:].all()


def test_count_writes_white_hole_pngs_matching_the_manifest(tmp_path):
    result = gen(str(tmp_path), "--size", "64", "--count", "5", "--workers", "1")
    assert result.exit_code == 0, result.output
    rows = read_manifest(tmp_path)
    assert [r.file for r in rows] == [f"{i:06d}.png" for i in range(5)]
    for row in rows:
        with Image.open(row.path) as img:
            assert img.mode == "L"
            pixels = np.asarray(img)
        assert row.hole_ratio == (pixels == 255).mean() == hole_ratio(load_mask(row.path))
        b = band_of(row.hole_ratio)
        expected = "" if b is None else band_label(PAPER_BAND_EDGES[b], PAPER_BAND_EDGES[b + 1])
        assert row.band == expected


def test_same_seed_gives_byte_identical_files(tmp_path):
    for name in ("a", "b"):
        result = gen(str(tmp_path / name), "--size", "64", "--count", "4", "--seed", "9")
        assert result.exit_code == 0, result.output
    for f in ("000000.png", "000003.png", "masks.csv"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


def test_generator_options_reach_the_recipe(tmp_path):
    result = gen(str(tmp_path), "--size", "64", "--count", "2", "--strokes", "2,3",
                 "--stroke-width", "0.02,0.03", "--rotation=-10,10", "--dilation", "0")
    assert result.exit_code == 0, result.output
    params = json.loads((tmp_path / "masks.json").read_text())["recipe"]["params"]
    assert params["strokes"] == [2, 3]
    assert params["stroke_width"] == [0.02, 0.03]
    assert params["rotation"] == [-10.0, 10.0]
    assert params["dilation"] == [0.0, 0.0]


def test_from_with_invert_keeps_the_holes(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    pixels = np.full((64, 64), 255, np.uint8)
    pixels[10:30, 20:50] = 0  # black = hole, as in the NVIDIA training masks
    Image.fromarray(pixels).save(src / "m.png")
    result = gen(str(tmp_path / "out"), "--from", str(src), "--invert", "--size", "64",
                 "--dilation", "0", "--rotation", "0", "--crop", "1")
    assert result.exit_code == 0, result.output
    (row,) = read_manifest(tmp_path / "out")
    assert row.source == "m.png"
    assert row.hole_pixels == 20 * 30
    out = np.asarray(Image.open(row.path))
    assert (out[10:30, 20:50] == 255).all() and out.sum() == 255 * 600


def test_preview_writes_a_sheet_and_no_set(tmp_path):
    sheet = tmp_path / "sheet.png"
    result = gen("--preview", str(sheet), "--size", "64", "--per-band", "3",
                 "--preview-count", "6")
    assert result.exit_code == 0, result.output
    assert sheet.is_file() and list(tmp_path.iterdir()) == [sheet]


def test_preview_without_a_count_shows_every_band(tmp_path):
    sheet = tmp_path / "sheet.png"
    result = gen("--preview", str(sheet), "--size", "64", "--preview-count", "12")
    assert result.exit_code == 0, result.output
    assert "preview of 12 masks" in result.output
    spec = MaskSetSpec(size=(64, 64))
    shown = preview_sheet(tmp_path / "again.png", spec, count=12)
    bands = {band_of(ratio) for _, ratio in shown}
    assert bands == set(range(len(PAPER_BAND_EDGES) - 1))


def test_rerun_reports_kept_files(tmp_path):
    args = (str(tmp_path), "--size", "64", "--count", "3", "--workers", "1")
    assert gen(*args).exit_code == 0
    result = gen(*args)
    assert result.exit_code == 0, result.output
    assert "0 written, 3 kept" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "32", "--count", "1"], "at least 64"),
        (["--per-band", "1", "--bands", "0.3,0.2"], "empty or inverted"),
        (["--count", "1", "--per-band", "1"], "not both"),
        ([], "--count N"),
        (["--per-band", "1", "--bands", "0.9,1.0", "--size", "64", "--stroke-width", "0.01",
          "--strokes", "1", "--circles", "0", "--arcs", "0", "--dilation", "0",
          "--max-attempts", "5"], "cannot reach"),
        (["--count", "1", "--strokes", "5,2"], "above high"),
        (["--count", "1", "--border", "both", "--no-border"], "contradict"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, args, message):
    result = gen(str(tmp_path / "out"), *args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_border_takes_yes_no_or_both(tmp_path):
    result = gen(str(tmp_path / "out"), "--count", "1", "--border", "some")
    assert result.exit_code == 2  # a usage error, reported by the option parser
    assert "yes" in result.output and "both" in result.output


def test_unwritable_output_folder_is_an_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = gen(str(blocker / "out"), "--size", "64", "--count", "2")
    assert result.exit_code == 1
    assert "cannot write" in result.output


def test_thin_masks_are_reproducible_and_thin(tmp_path):
    from scipy import ndimage

    args = ("--shape", "thin", "--size", "96", "--count", "4", "--seed", "9", "--workers", "1")
    assert gen(str(tmp_path / "a"), *args).exit_code == 0
    assert gen(str(tmp_path / "b"), *args).exit_code == 0
    for row in read_manifest(tmp_path / "a"):
        first = (tmp_path / "a" / row.file).read_bytes()
        assert first == (tmp_path / "b" / row.file).read_bytes()
        hole = ~load_mask(tmp_path / "a" / row.file)
        assert hole.any()
        # Lines 1–4 px wide and specks up to 6 px: almost every hole pixel lies within 2 px
        # of a valid one, and only crossings of two lines lie a little deeper.
        depth = ndimage.distance_transform_edt(hole)[hole]
        assert np.percentile(depth, 95) <= 2.5 and depth.max() <= 5


def test_thin_and_stroke_masks_do_not_mix_in_one_folder(tmp_path):
    assert gen(str(tmp_path), "--size", "64", "--count", "2", "--workers", "1").exit_code == 0
    result = gen(str(tmp_path), "--shape", "thin", "--size", "64", "--count", "2",
                 "--workers", "1")
    assert result.exit_code == 1
    assert "other settings" in result.output


@pytest.mark.parametrize("args", [("--per-band", "2"), ("--count", "2", "--artefacts", ".")])
def test_thin_only_options_are_refused_where_they_do_not_apply(tmp_path, args):
    shape = () if "--artefacts" in args else ("--shape", "thin")
    result = gen(str(tmp_path), "--size", "64", *shape, *args)
    assert result.exit_code == 1
    assert "--shape thin" in result.output
