"""pconv train --task detect: a few real steps of a tiny damage detector on synthesised damage."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from pconv_cli.checkpoint import (
    DETECTOR,
    load_checkpoint,
    load_detector,
    save_checkpoint,
)
from pconv_cli.cli import app
from pconv_cli.core import PConvUNet, UNetConfig
from pconv_cli.core.detector import DamageDetector, DetectorConfig
from pconv_cli.damage import DAMAGE_WEIGHTS
from pconv_cli.damage.artefacts import ARTEFACTS_ENV
from pconv_cli.data import find_training_images, native_crop
from pconv_cli.detection_data import (
    PROCEDURAL_ONLY,
    DetectionSamples,
    damage_params,
    load_detection_validation_set,
    native_centre_crop,
)
from pconv_cli.train import bundle_weights
from pconv_cli.train_config import INPAINT_DEPTH, INPAINT_WIDTH, TrainConfig

ARTEFACTS = Path(__file__).resolve().parents[1] / ".." / "shared" / "damage-artefacts"
TINY = ["--task", "detect", "--depth", "2", "--width", "4", "--size", "64", "--batch-size", "2",
        "--workers", "0", "--log-every", "1", "--val-every", "1000", "--save-every", "1000",
        "--val-fraction", "0.4"]
DETECTION_COLUMNS = ["step", "phase", "kind", "total", "bce", "dice", "lr", "images_per_s",
                     "val_precision", "val_recall", "val_f1", "val_iou", "val_f1_tolerant",
                     "val_clean_marked"]


@pytest.fixture(autouse=True)
def no_artefact_folder_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ARTEFACTS_ENV, raising=False)


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five smooth, textured 112×96 images: room for native and rescaled 64² crops."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:96, 0:112] / 112
    for i in range(5):
        base = np.stack([x, y, 0.5 + 0.3 * np.sin(6 * x + i)], -1)
        pixels = np.clip(base + rng.normal(0, 0.03, base.shape), 0, 1)
        Image.fromarray((pixels * 255).astype(np.uint8)).save(root / f"photo{i}.png")
    return root


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def rows_of(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_detect_run_has_detection_metrics_and_a_detector_checkpoint(
    photo_dir: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    code, out = run_cli("train", "--data", str(photo_dir), "--out", str(run), *TINY,
                        "--steps", "4", "--val-every", "2")
    assert code == 0, out
    assert "procedural damage only" in out  # neither --artefacts nor the variable
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert header.split(",") == DETECTION_COLUMNS
    val_rows = [r for r in rows_of(run) if r["kind"] == "val"]
    assert [r["step"] for r in val_rows] == ["2", "4"]
    for row in val_rows:
        for name in DETECTION_COLUMNS[8:]:
            assert 0.0 <= float(row[name]) <= 1.0, name
    last = load_checkpoint(run / "last.pt")
    assert last.kind == DETECTOR and last.model_config == DetectorConfig(depth=2, width=4)
    assert last.train["step"] == 4
    assert isinstance(load_detector(run / "best.pt"), DamageDetector)
    # best.pt holds the first validation with the highest tolerant F1
    scores = [float(r["val_f1_tolerant"]) for r in val_rows]
    best = load_checkpoint(run / "best.pt").train
    assert best["step"] == int(val_rows[scores.index(max(scores))]["step"])
    assert best["val_f1_tolerant"] == pytest.approx(max(scores), abs=1e-5)
    saved = json.loads((run / "config.json").read_text())
    assert saved["task"] == "detect" and saved["artefacts"] == PROCEDURAL_ONLY
    assert (saved["depth"], saved["width"]) == (2, 4)
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step_000002.png", "step_000004.png"]


def test_shape_defaults_are_each_models_own() -> None:
    detect = TrainConfig(task="detect")
    detect.fill_defaults()
    assert (detect.depth, detect.width) == (DetectorConfig().depth, DetectorConfig().width)
    inpaint = TrainConfig()
    inpaint.fill_defaults()
    assert (inpaint.depth, inpaint.width) == (INPAINT_DEPTH, INPAINT_WIDTH)
    given = TrainConfig(task="detect", depth=3)
    given.fill_defaults()
    assert (given.depth, given.width) == (3, DetectorConfig().width)


def test_straight_run_equals_half_then_resume_with_weight_average(
    photo_dir: Path, tmp_path: Path
) -> None:
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    common = ["--data", str(photo_dir), *TINY, "--ema-decay", "0.5", "--clean-fraction", "0.3"]
    assert run_cli("train", *common, "--out", str(straight), "--steps", "4")[0] == 0
    assert run_cli("train", *common, "--out", str(halves), "--steps", "2")[0] == 0
    code, out = run_cli("train", "--resume", str(halves), "--steps", "4")
    assert code == 0, out
    assert "best.pt starts over" not in out
    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(halves / "last.pt")
    for k, v in a.model_state.items():
        assert torch.allclose(v.float(), b.model_state[k].float(), atol=1e-6), k
    for k, v in a.train["ema_model"].items():
        assert torch.allclose(v.float(), b.train["ema_model"][k].float(), atol=1e-6), k
    steps = [r["step"] for r in rows_of(halves) if r["kind"] == "train"]
    assert steps == ["1", "2", "3", "4"]
    # what restore would load from the run is the average
    built = load_detector(straight / "last.pt").state_dict()
    assert torch.equal(built["head.weight"], a.train["ema_model"]["head.weight"])


def test_a_run_keeps_its_task_on_resume(photo_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert run_cli("train", "--data", str(photo_dir), "--out", str(run), *TINY,
                   "--steps", "1")[0] == 0
    code, out = run_cli("train", "--resume", str(run), "--steps", "2", "--task", "inpaint")
    assert code == 1 and "cannot resume" in out and "--task detect" in out, out
    assert load_checkpoint(run / "last.pt").train["step"] == 1


def test_bf16_channels_last_run_trains(photo_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    code, out = run_cli("train", "--data", str(photo_dir), "--out", str(run), *TINY,
                        "--steps", "2", "--amp", "bf16", "--channels-last")
    assert code == 0, out
    totals = [float(r["total"]) for r in rows_of(run) if r["kind"] == "train"]
    assert len(totals) == 2 and all(np.isfinite(totals))


def test_from_takes_a_detector_and_refuses_an_inpainter(photo_dir: Path, tmp_path: Path) -> None:
    detector = tmp_path / "detector.pt"
    config = DetectorConfig(depth=2, width=4)
    save_checkpoint(detector, config, DamageDetector(config).state_dict())
    code, out = run_cli("train", "--data", str(photo_dir), "--out", str(tmp_path / "a"), *TINY,
                        "--steps", "1", "--from", str(detector))
    assert code == 0 and "weights from" in out, out
    inpainter = tmp_path / "inpainter.pt"
    save_checkpoint(inpainter, UNetConfig(depth=2, width=4),
                    PConvUNet(UNetConfig(depth=2, width=4)).state_dict())
    code, out = run_cli("train", "--data", str(photo_dir), "--out", str(tmp_path / "b"), *TINY,
                        "--steps", "1", "--from", str(inpainter))
    assert code == 1 and "a damage detector (finds holes) is needed" in out, out
    assert len(out.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "detect", "--finetune-steps", "2"], "a detection run has one phase"),
        (["--task", "detect", "--masks", "{photos}"], "--masks is for --task inpaint"),
        (["--task", "detect", "--hole-weight", "3"], "--hole-weight is for --task inpaint"),
        (["--clean-fraction", "0.3"], "--clean-fraction is for --task detect"),
        (["--artefacts", "{photos}"], "--artefacts is for --task detect"),
        (["--task", "detect", "--clean-fraction", "1"], "--clean-fraction 1.0"),
        (["--task", "detect", "--positive-weight", "0"], "--positive-weight 0.0"),
        (["--task", "detect", "--artefacts", "{missing}"], "not a folder"),
        (["--task", "detect", "--depth", "9"], "detector depth must be between 1 and 8"),
    ],
)
def test_bad_detection_settings_give_one_clear_line(
    photo_dir: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    paths = {"photos": photo_dir, "missing": tmp_path / "nope"}
    args = [a.format(**paths) for a in args]
    base = [a for a in TINY if a not in ("--task", "detect")]
    code, out = run_cli("train", "--data", str(photo_dir), "--out", str(tmp_path / "run"),
                        *base, *args, "--steps", "1")
    assert code == 1, out
    assert message in out and "Traceback" not in out, out
    assert len(out.strip().splitlines()) == 1, out


def test_samples_are_reproducible_and_some_are_left_clean(photo_dir: Path) -> None:
    files = find_training_images(photo_dir)
    params = damage_params(PROCEDURAL_ONLY)
    samples = DetectionSamples(files, 64, params, clean_fraction=0.3, seed=5)
    first = [samples[i] for i in range(40)]
    again = DetectionSamples(files, 64, params, clean_fraction=0.3, seed=5)
    for i in (0, 17, 39):
        assert torch.equal(first[i]["image"], again[i]["image"])
        assert torch.equal(first[i]["target"], again[i]["target"])
    damaged = [bool(s["target"].any()) for s in first]
    assert 3 <= damaged.count(False) <= 25  # the clean share, and damage on the rest
    other_seed = DetectionSamples(files, 64, params, clean_fraction=0.3, seed=6)[0]
    assert not torch.equal(other_seed["image"], first[0]["image"])


def test_native_crops_keep_the_photos_pixels() -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    photo = Image.fromarray(pixels)
    rng = np.random.default_rng(2)
    crop = np.asarray(native_crop(photo, 32, rng))
    windows = np.lib.stride_tricks.sliding_window_view(pixels, (32, 32, 3))[..., 0, :, :, :]
    assert (windows == crop).all(axis=(-3, -2, -1)).any()  # an exact window: no resampling
    centre = np.asarray(native_centre_crop(photo, 32))
    assert np.array_equal(centre, pixels[9:41, 19:51])


def test_procedural_only_ignores_the_environment_variable(
    photo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not ARTEFACTS.is_dir():
        pytest.skip("the film-artefact folder is not beside this checkout")
    files = find_training_images(photo_dir)
    before = DetectionSamples(files, 64, damage_params(PROCEDURAL_ONLY), 0.0, seed=1)[3]
    monkeypatch.setenv(ARTEFACTS_ENV, str(ARTEFACTS))
    params = damage_params(PROCEDURAL_ONLY)
    assert "artefact" not in params.kinds and set(params.kinds) < set(DAMAGE_WEIGHTS)
    after = DetectionSamples(files, 64, params, 0.0, seed=1)[3]
    assert torch.equal(before["image"], after["image"])
    config = TrainConfig(task="detect")
    config.fill_defaults()
    assert config.artefacts == str(ARTEFACTS)  # a new run takes the variable, and records it


def test_validation_pairs_each_image_damaged_and_clean(photo_dir: Path) -> None:
    files = find_training_images(photo_dir)[:3]
    params = damage_params(PROCEDURAL_ONLY)
    val = load_detection_validation_set(files, 64, params, seed=2)
    assert val.images.shape == (6, 3, 64, 64) and val.used == files
    assert val.clean.tolist() == [False, True] * 3
    for j, path in enumerate(files):
        clean = np.array(native_centre_crop(Image.open(path).convert("RGB"), 64))
        assert torch.allclose(val.images[2 * j + 1], torch.from_numpy(clean).permute(2, 0, 1)
                              / 255.0)
        assert not val.targets[2 * j + 1].any() and val.targets[2 * j].any()
    again = load_detection_validation_set(files, 64, params, seed=2)
    assert torch.equal(val.images, again.images) and torch.equal(val.targets, again.targets)


def test_a_detector_run_bundles_its_average(photo_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert run_cli("train", "--data", str(photo_dir), "--out", str(run), *TINY, "--steps", "2",
                   "--ema-decay", "0.5", "--val-every", "2")[0] == 0
    bundle_weights(run / "last.pt", tmp_path / "detector.pt")
    bundled = load_checkpoint(tmp_path / "detector.pt")
    assert bundled.kind == DETECTOR and bundled.train["weights"] == "average"
    assert "best_f1_tolerant" in bundled.train and bundled.train["config"]["task"] == "detect"
    assert isinstance(load_detector(tmp_path / "detector.pt"), DamageDetector)


def test_sigterm_saves_a_resumable_detector_run(photo_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "pconv_cli", "train", "--data", str(photo_dir), "--out",
           str(run), *TINY, "--steps", "100000"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, start_new_session=True)
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until training is under way
        if line.startswith("step 2 "):
            break
    proc.terminate()
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 128 + signal.SIGTERM, out
    step = load_checkpoint(run / "last.pt").train["step"]
    assert step >= 2
    code, out = run_cli("train", "--resume", str(run), "--steps", str(step + 1))
    assert code == 0, out


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None,
                    reason="torchrun not installed beside this Python")
def test_two_process_gloo_detector_run_keeps_ranks_in_sync(photo_dir: Path,
                                                           tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    torchrun = str(Path(sys.executable).parent / "torchrun")
    cmd = [torchrun, "--nproc-per-node", "2", "--master-port", str(31500 + os.getpid() % 1000),
           "-m", "pconv_cli", "train", "--data", str(photo_dir), "--out", str(run), *TINY,
           "--steps", "3", "--ema-decay", "0.5"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "different weights" not in proc.stdout + proc.stderr
    assert load_checkpoint(run / "last.pt").train["step"] == 3
    assert [r["kind"] for r in rows_of(run)].count("train") == 3  # rank 0 alone writes
