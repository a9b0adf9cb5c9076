"""``pconv detect`` and ``pconv export`` of a detector through the command line."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from detect_helpers import bright_detector, save_detector, scratched
from PIL import Image
from typer.testing import CliRunner

from pconv_cli.cli import app
from pconv_cli.detect import DEFAULT_DETECTOR_PATH
from pconv_cli.imaging import load_mask

runner = CliRunner()


@pytest.fixture(scope="module")
def detector_ckpt(tmp_path_factory) -> Path:
    return save_detector(tmp_path_factory.mktemp("det") / "bright.pt", bright_detector())


@pytest.fixture(scope="module")
def detector_onnx(detector_ckpt, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("det-onnx") / "bright.onnx"
    result = runner.invoke(app, ["export", str(detector_ckpt), "--onnx", str(path)])
    assert result.exit_code == 0, result.output
    assert "pconv detect IN OUT --onnx" in result.output
    return path


def make_folder(root: Path) -> dict[str, np.ndarray]:
    truth = {}
    for rel, seed in (("a.png", 0), ("sub/b.png", 1)):
        pixels, damage = scratched(seed=seed)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / rel)
        truth[rel] = damage
    return truth


def test_detect_writes_masks_csv_and_previews_and_exits_0(detector_ckpt, tmp_path):
    truth = make_folder(tmp_path / "in")
    out = tmp_path / "out"
    result = runner.invoke(app, ["detect", str(tmp_path / "in"), str(out), "--recursive",
                                 "--model", str(detector_ckpt), "--device", "cpu", "--preview"])
    assert result.exit_code == 0, result.output
    assert "detect summary" in result.output
    for rel, damage in truth.items():
        assert np.array_equal(~load_mask(out / rel), damage)
        assert (out / "_previews" / Path(rel).with_suffix(".jpg")).is_file()
    with open(out / "detect.csv", newline="") as handle:
        assert [r["file"] for r in csv.DictReader(handle)] == ["a.png", "sub/b.png"]


def test_a_bad_file_is_listed_and_the_exit_status_is_1(detector_ckpt, tmp_path):
    make_folder(tmp_path / "in")
    (tmp_path / "in" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    result = runner.invoke(app, ["detect", str(tmp_path / "in"), str(tmp_path / "out"),
                                 "--model", str(detector_ckpt), "--device", "cpu"])
    assert result.exit_code == 1
    assert "broken.jpg" in result.output
    assert (tmp_path / "out" / "a.png").is_file()
    assert "broken.jpg" in (tmp_path / "out" / "failures.csv").read_text()


def test_onnx_detector_writes_the_masks_torch_writes_tiles_included(detector_ckpt, detector_onnx,
                                                                    tmp_path):
    make_folder(tmp_path / "in")
    for name, option in (("torch", ["--model", str(detector_ckpt), "--precision", "fp32"]),
                         ("ort", ["--onnx", str(detector_onnx)])):
        result = runner.invoke(app, ["detect", str(tmp_path / "in"), str(tmp_path / name), "-r",
                                     "--tile", "16", "--device", "cpu", *option])
        assert result.exit_code == 0, result.output
    assert "onnxruntime" in result.output
    for rel in ("a.png", "sub/b.png"):
        assert np.array_equal(load_mask(tmp_path / "torch" / rel),
                              load_mask(tmp_path / "ort" / rel))


@pytest.mark.skipif(DEFAULT_DETECTOR_PATH.is_file(), reason="a bundled detector is installed")
def test_without_a_bundled_detector_detect_asks_for_model_in_one_line(tmp_path):
    make_folder(tmp_path / "in")
    result = runner.invoke(app, ["detect", str(tmp_path / "in"), str(tmp_path / "out")])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "no bundled detector is installed; pass --model CKPT" in lines[0]


def test_an_inpainting_checkpoint_is_refused_in_one_line(checkpoint, tmp_path):
    make_folder(tmp_path / "in")
    result = runner.invoke(app, ["detect", str(tmp_path / "in"), str(tmp_path / "out"),
                                 "--model", str(checkpoint)])
    assert result.exit_code == 1
    assert "holds an inpainting model (fills holes), but a damage detector" in result.output


@pytest.mark.parametrize("args, message", [
    (["--threshold", "1.5"], "--threshold 1.5: must be between 0 and 1"),
    (["--tile", "0"], "--tile"),
])
def test_bad_settings_are_refused_before_the_model_loads(detector_ckpt, tmp_path, args, message):
    make_folder(tmp_path / "in")
    result = runner.invoke(app, ["detect", str(tmp_path / "in"), str(tmp_path / "out"),
                                 "--model", str(detector_ckpt), *args])
    assert result.exit_code != 0
    assert message in result.output
    assert not (tmp_path / "out").exists()


def test_detector_export_is_dynamic_and_refuses_static(detector_ckpt, tmp_path):
    result = runner.invoke(app, ["export", str(detector_ckpt), "--onnx", str(tmp_path / "d.onnx"),
                                 "--static", "64"])
    assert result.exit_code == 1
    assert "a detector runs on tiles of any size" in result.output
    assert not (tmp_path / "d.onnx").exists()


def test_a_detect_out_recorded_before_precision_existed_reruns_in_fp32_only(detector_ckpt,
                                                                           tmp_path):
    """Masks detected before --precision were fp32: a rerun in fp32 resumes, in bf16 it is
    refused as other settings."""
    import json

    make_folder(tmp_path / "in")
    out = tmp_path / "out"
    args = ["detect", str(tmp_path / "in"), str(out), "-r", "--model", str(detector_ckpt),
            "--device", "cpu"]
    assert runner.invoke(app, [*args, "--precision", "fp32"]).exit_code == 0
    record = out / ".pconv-detect.json"
    data = json.loads(record.read_text())
    assert data["settings"].pop("precision") == "fp32"
    record.write_text(json.dumps(data))  # as written before the option
    assert runner.invoke(app, [*args, "--precision", "fp32"]).exit_code == 0
    refused = runner.invoke(app, [*args, "--precision", "bf16"])
    assert refused.exit_code == 1 and "--precision bf16 (was fp32)" in refused.output


def test_detect_takes_the_detector_under_restores_name_too(detector_ckpt, tmp_path):
    make_folder(tmp_path / "in")
    for option in ("--model", "--detector"):
        result = runner.invoke(app, ["detect", str(tmp_path / "in"), str(tmp_path / option),
                                     "-r", option, str(detector_ckpt), "--device", "cpu"])
        assert result.exit_code == 0, result.output
    assert np.array_equal(load_mask(tmp_path / "--model" / "a.png"),
                          load_mask(tmp_path / "--detector" / "a.png"))
