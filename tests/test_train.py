"""pconv train: a few real steps on tiny images and a tiny net."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from PIL import Image
from typer.testing import CliRunner

from pconv_cli.checkpoint import load_checkpoint, load_model, save_checkpoint
from pconv_cli.cli import app
from pconv_cli.core import InpaintingLoss, LossWeights, PConvUNet, UNetConfig
from pconv_cli.data import find_training_images, load_validation_set
from pconv_cli.masks import MaskParams, band_of, hole_ratio
from pconv_cli.train import TrainConfig, bundle_weights, train, weight_average

TINY = ["--depth", "3", "--width", "8", "--size", "64", "--batch-size", "2", "--workers", "0",
        "--perceptual-weight", "0", "--style-weight", "0", "--log-every", "1",
        "--val-every", "1000", "--save-every", "1000"]


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six small real photographs (two in a sub-folder) and one corrupt file."""
    from skimage import data

    root = tmp_path_factory.mktemp("photos")
    (root / "nested").mkdir()
    names = ["astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "retina"]
    for i, name in enumerate(names):
        pixels = getattr(data, name)()
        folder = root / "nested" if i % 2 else root
        Image.fromarray(pixels).resize((96, 80)).save(folder / f"{name}.png")
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    return root


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def weights_of(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).model_state


def max_weight_difference(a: Path, b: Path) -> float:
    wa, wb = weights_of(a), weights_of(b)
    assert wa.keys() == wb.keys()
    return max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)


def test_loss_falls_when_overfitting_one_batch() -> None:
    torch.manual_seed(0)
    model = PConvUNet(UNetConfig(depth=3, width=8)).train()
    criterion = InpaintingLoss(LossWeights(perceptual=0, style=0))
    image = torch.rand(2, 3, 32, 32)
    mask = (torch.rand(2, 1, 32, 32) > 0.3).float()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(40):
        total = criterion(model(image, mask), image, mask)["total"]
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        losses.append(float(total.detach()))
    assert losses[-1] < 0.5 * losses[0]


def test_run_directory_has_config_metrics_checkpoints_and_samples(
    photo_dir: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    code, out = run_cli("train", "--data", str(photo_dir), "--out", str(run), *TINY,
                        "--steps", "4", "--val-every", "2", "--val-fraction", "0.3")
    assert code == 0, out
    for name in ("config.json", "metrics.csv", "last.pt", "best.pt"):
        assert (run / name).is_file(), name
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step_000002.png", "step_000004.png"]
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,phase,kind,total,valid,hole")
    kinds = [r.split(",")[2] for r in rows[1:]]
    assert kinds.count("train") == 4 and kinds.count("val") == 2
    assert load_checkpoint(run / "last.pt").train["step"] == 4
    # The corrupt file is reported once, with its path, and training went on.
    assert out.count("corrupt.jpg") == 1


def test_straight_run_equals_half_then_resume(photo_dir: Path, tmp_path: Path) -> None:
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    common = ["--data", str(photo_dir), *TINY, "--val-fraction", "0.3"]
    assert run_cli("train", *common, "--out", str(straight), "--steps", "6")[0] == 0
    assert run_cli("train", *common, "--out", str(halves), "--steps", "3")[0] == 0
    code, out = run_cli("train", "--resume", str(halves), "--steps", "6")
    assert code == 0, out
    assert "best.pt starts over" not in out
    assert load_checkpoint(halves / "last.pt").train["step"] == 6
    assert max_weight_difference(straight / "last.pt", halves / "last.pt") < 1e-6
    # metrics.csv continues without duplicated steps
    rows = [r.split(",") for r in (halves / "metrics.csv").read_text().splitlines()[1:]]
    steps = [r[0] for r in rows if r[2] == "train"]
    assert steps == [str(s) for s in range(1, 7)]


def test_finetuning_leaves_encoder_batchnorm_untouched(photo_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    common = ["--data", str(photo_dir), *TINY, "--val-fraction", "0.3"]
    assert run_cli("train", *common, "--out", str(run), "--steps", "2")[0] == 0
    before = {k: v.clone() for k, v in weights_of(run / "last.pt").items()}
    code, out = run_cli("train", "--resume", str(run), "--finetune-steps", "3")
    assert code == 0, out
    after = weights_of(run / "last.pt")
    encoder_bn = [k for k in before if k.startswith("encoder.") and ".bn." in k]
    decoder_bn = [k for k in before if k.startswith("decoder.") and ".bn." in k
                  and "num_batches" not in k]
    assert encoder_bn and decoder_bn
    for k in encoder_bn:
        assert torch.equal(before[k], after[k]), k
    assert any(not torch.equal(before[k], after[k]) for k in decoder_bn)
    assert not torch.equal(before["encoder.0.conv.weight"], after["encoder.0.conv.weight"])


def test_non_finite_loss_stops_with_step_and_term(photo_dir: Path, tmp_path: Path) -> None:
    config = UNetConfig(depth=3, width=8)
    state = PConvUNet(config).state_dict()
    state["decoder.2.conv.bias"].fill_(float("nan"))  # poisons every output pixel
    poisoned = tmp_path / "poisoned.pt"
    save_checkpoint(poisoned, config, state)
    run = tmp_path / "run"
    code, out = run_cli("train", "--data", str(photo_dir), "--out", str(run), *TINY,
                        "--steps", "3", "--from", str(poisoned), "--val-fraction", "0.3")
    assert code == 1
    assert "step 0" in out and "'valid'" in out
    assert not (run / "last.pt").exists()


@pytest.mark.parametrize(
    ("workers", "whole_group"),
    [(0, False),
     pytest.param(1, True, marks=pytest.mark.skipif(not Path("/proc/self/task").is_dir(),
                                                    reason="needs Linux /proc"))],
)
def test_sigterm_saves_a_resumable_checkpoint(
    photo_dir: Path, tmp_path: Path, workers: int, whole_group: bool
) -> None:
    # whole_group: as a scheduler or `kill -TERM -PGID` does, the loader worker gets it too
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "pconv_cli", "train", "--data", str(photo_dir), "--out",
           str(run), *TINY, "--workers", str(workers), "--steps", "100000",
           "--val-fraction", "0.3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, start_new_session=True)
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until training is under way
        if line.startswith("step 3 "):
            break
    if whole_group:
        # The worker first, so that the trainer is mid-step when it would die of it.
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert children, "the loader worker is not running"
        for child in children:
            os.kill(int(child), signal.SIGTERM)
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGTERM)
    else:
        proc.terminate()
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 128 + signal.SIGTERM, out  # 143: a script sees it was stopped
    assert "stopped by SIGTERM" in out and "resume with: pconv train --resume" in out, out
    step = load_checkpoint(run / "last.pt").train["step"]
    assert step >= 3


def test_ctrl_c_saves_and_exits_130(photo_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "pconv_cli", "train", "--data", str(photo_dir), "--out",
           str(run), *TINY, "--steps", "100000", "--val-fraction", "0.3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, start_new_session=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("step 3 "):
            break
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 130, out
    assert "stopped by SIGINT" in out and "resume with: pconv train --resume" in out, out
    assert load_checkpoint(run / "last.pt").train["step"] >= 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "{missing}"], "does not exist"),
        (["--data", "{empty}"], "no images found"),
        (["--data", "{photos}", "--size", "60"], "not a multiple of 2^depth = 8"),
        (["--data", "{photos}", "--save-every", "0"], "--save-every"),
        (["--data", "{photos}", "--lr", "0"], "--lr and --finetune-lr must be > 0"),
        (["--data", "{photos}", "--workers", "-1"], "--workers -1"),
        (["--data", "{photos}", "--val-data", "{photos}", "--val-fraction", "0.3"],
         "give one of them"),
        (["--data", "{photos}", "--mask-param", "strokes=2.5"], "strokes=2.5"),
        (["--data", "{photos}", "--mask-param", "strokes=5,1"], "low 5 is above high 1"),
        (["--data", "{photos}", "--mask-param", "stroke=3"], "unknown mask parameter"),
        (["--data", "{photos}", "--mask-param", "strokes"], "write NAME=VALUE"),
    ],
)
def test_bad_settings_give_one_clear_line(
    photo_dir: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "empty").mkdir()
    paths = {"missing": tmp_path / "nope", "empty": tmp_path / "empty", "photos": photo_dir}
    args = [a.format(**paths) for a in args]
    base = [a for a in TINY if a not in ("--size", "64")] if "--size" in args else TINY
    code, out = run_cli("train", *base, *args, "--out", str(tmp_path / "run"), "--steps", "1")
    assert code == 1
    assert message in out
    assert "Traceback" not in out
    assert len(out.strip().splitlines()) == 1, out


def test_one_mask_parameter_value_is_a_fixed_value(photo_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    code, out = run_cli("train", "--data", str(photo_dir), "--out", str(run), *TINY,
                        "--steps", "1", "--val-fraction", "0.3", "--mask-param", "strokes=3",
                        "--mask-param", "stroke-width=0.02,0.05")
    assert code == 0, out
    saved = json.loads((run / "config.json").read_text())["mask_params"]
    assert saved == {"strokes": [3, 3], "stroke_width": [0.02, 0.05]}


def test_every_option_has_help_and_shows_the_config_default() -> None:
    from pconv_cli.cli.app import app as typer_app
    from pconv_cli.loss_weights import DetectionLossWeights

    help_text = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).output

    def result_lines(option: str) -> list[str]:
        return [line for line in help_text.splitlines() if option in line]

    command = typer.main.get_command(typer_app).commands["train"]  # type: ignore[attr-defined]
    defaults = {**asdict(TrainConfig()), **{f"{k}_weight": v for k, v in
                                            LossWeights().to_dict().items()}}
    detection = DetectionLossWeights()
    defaults.update(bce_weight=detection.bce, dice_weight=detection.dice,
                    positive_weight=detection.positive_weight)
    defaults["compile_model"] = defaults["compile"]
    shown = 0
    for param in command.params:
        if param.name in ("ctx", "help"):
            continue
        assert param.help, param.name
        if defaults.get(param.name) not in (None, ""):  # the paths have no default
            assert param.default == defaults[param.name], param.name
            assert param.show_default, param.name
            shown += 1
    assert shown >= 28
    # depth and width default to the task's model, named rather than typed twice
    assert "[default: (7; detect: DetectorConfig's)]" in result_lines("--depth ")[0]
    assert "Adam learning rate of the first phase. [default: 0.0002]" in result_lines("--lr ")[0]


def test_resume_changes_only_the_settings_given(photo_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert run_cli("train", "--data", str(photo_dir), "--out", str(run), *TINY, "--steps", "1",
                   "--val-fraction", "0.3", "--lr", "0.001")[0] == 0
    # The default value typed out is still an override.
    code, out = run_cli("train", "--resume", str(run), "--steps", "2", "--lr", "0.0002")
    assert code == 0, out
    saved = json.loads((run / "config.json").read_text())
    assert saved["lr"] == 0.0002 and saved["steps"] == 2
    code, out = run_cli("train", "--resume", str(run), "--steps", "3")
    assert code == 0, out
    saved = json.loads((run / "config.json").read_text())
    assert saved["lr"] == 0.0002 and saved["steps"] == 3
    # Settings from the first run that the resumes did not repeat stay as they were.
    assert saved["save_every"] == 1000 and saved["batch_size"] == 2 and saved["workers"] == 0
    assert saved["loss"]["perceptual"] == 0 and saved["loss"]["style"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "1"], "nothing to train"),
        (["--steps", "3", "--from", "{run}/last.pt"], "give one of them"),
    ],
)
def test_resume_that_would_do_nothing_is_refused(
    photo_dir: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    run = tmp_path / "run"
    assert run_cli("train", "--data", str(photo_dir), "--out", str(run), *TINY, "--steps", "2",
                   "--val-fraction", "0.3")[0] == 0
    code, out = run_cli("train", "--resume", str(run), *[a.format(run=run) for a in args])
    assert code == 1 and message in out, out
    assert load_checkpoint(run / "last.pt").train["step"] == 2


def test_sync_bn_in_one_process_says_it_does_nothing(photo_dir: Path, tmp_path: Path) -> None:
    code, out = run_cli("train", "--data", str(photo_dir), "--out", str(tmp_path / "run"), *TINY,
                        "--steps", "1", "--val-fraction", "0.3", "--sync-bn")
    assert code == 0, out
    assert "--sync-bn has no effect in a single process" in out


def test_every_held_out_image_is_validated(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        Image.fromarray((rng.random((40, 48, 3)) * 255).astype(np.uint8)).save(photos / f"{i}.png")
    config = TrainConfig(data=str(photos), out=str(tmp_path / "run"), depth=3, width=8, size=32,
                         batch_size=2, workers=0, steps=1, val_fraction=0.9, val_max_images=3,
                         loss=LossWeights(perceptual=0, style=0).to_dict())
    summary = train(config)
    assert summary["validation_images"] == 3
    assert summary["training_images"] == 7  # the other held-out images are trained on


def test_resume_with_another_model_shape_is_refused(photo_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert run_cli("train", "--data", str(photo_dir), "--out", str(run), *TINY, "--steps", "1",
                   "--val-fraction", "0.3")[0] == 0
    code, out = run_cli("train", "--resume", str(run), "--width", "16")
    assert code == 1
    assert "cannot resume" in out and "--width 8" in out


def test_python_api_trains_from_a_config(photo_dir: Path, tmp_path: Path) -> None:
    config = TrainConfig(data=str(photo_dir), out=str(tmp_path / "api"), depth=3, width=8,
                         size=64, batch_size=2, workers=0, steps=2, val_fraction=0.3,
                         loss=LossWeights(perceptual=0, style=0).to_dict())
    summary = train(config)
    assert summary["step"] == 2 and summary["stopped"] == "finished"
    assert load_checkpoint(tmp_path / "api" / "last.pt").model_config == UNetConfig(3, 8)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None,
                    reason="torchrun not installed beside this Python")
def test_two_process_gloo_run_keeps_ranks_in_sync(photo_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    torchrun = str(Path(sys.executable).parent / "torchrun")
    cmd = [torchrun, "--nproc-per-node", "2", "--master-port", str(29500 + os.getpid() % 1000),
           "-m", "pconv_cli", "train", "--data", str(photo_dir), "--out", str(run), *TINY,
           "--steps", "4", "--val-fraction", "0.3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "different weights" not in proc.stdout + proc.stderr
    assert load_checkpoint(run / "last.pt").train["step"] == 4
    # Only rank 0 writes the run directory: one header, four train rows.
    rows = (run / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[2] for r in rows[1:]].count("train") == 4


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None,
                    reason="torchrun not installed beside this Python")
def test_two_process_gloo_run_crosses_into_finetuning(photo_dir: Path, tmp_path: Path) -> None:
    # DDP records which parameters need gradients when it wraps the model; fine-tuning freezes
    # the encoder BatchNorm, so the phase switch must wrap it again.
    run = tmp_path / "ddp"
    torchrun = str(Path(sys.executable).parent / "torchrun")
    cmd = [torchrun, "--nproc-per-node", "2", "--master-port", str(30500 + os.getpid() % 1000),
           "-m", "pconv_cli", "train", "--data", str(photo_dir), "--out", str(run), *TINY,
           "--steps", "2", "--finetune-steps", "2", "--val-fraction", "0.3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "different weights" not in proc.stdout + proc.stderr
    last = load_checkpoint(run / "last.pt").train
    assert last["step"] == 4 and last["phase"] == "finetune"
    rows = [r.split(",") for r in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert [(r[0], r[1]) for r in rows if r[2] == "train"] == [
        ("1", "train"), ("2", "train"), ("3", "finetune"), ("4", "finetune")]


def test_sample_ids_do_not_depend_on_worker_count(photo_dir: Path) -> None:
    from torch.utils.data import DataLoader

    from pconv_cli.data import MaskSource, StepSampler, TrainingSamples, find_training_images
    from pconv_cli.masks import MaskParams

    files = find_training_images(photo_dir)
    dataset = TrainingSamples(files, 64, MaskSource((), MaskParams()), seed=3)

    def first_batches(workers: int) -> list[torch.Tensor]:
        loader = DataLoader(dataset, batch_size=2, sampler=StepSampler(5, 2),
                            num_workers=workers)
        it = iter(loader)
        return [next(it)["image"] for _ in range(3)]

    for a, b in zip(first_batches(0), first_batches(2), strict=True):
        assert torch.equal(a, b)
    assert not np.allclose(first_batches(0)[0].numpy(), first_batches(0)[1].numpy())


def test_validation_pairs_each_image_with_one_mask_per_band(photo_dir: Path) -> None:
    files = find_training_images(photo_dir)[:2]
    images, masks, used = load_validation_set(files, 64, MaskParams(), seed=3)
    assert used == files
    assert images.shape == (2 * 6, 3, 64, 64) and masks.shape == (2 * 6, 1, 64, 64)
    for i in range(len(images)):
        assert torch.equal(images[i], images[i - i % 6])  # six masks on each image
        assert band_of(hole_ratio(masks[i, 0].numpy() > 0.5)) == i % 6
    again = load_validation_set(files, 64, MaskParams(), seed=3)[1]
    assert torch.equal(masks, again)  # the same at every validation and on resume
    assert not torch.equal(masks, load_validation_set(files, 64, MaskParams(), seed=4)[1])


def test_resuming_on_another_validation_set_restarts_best(photo_dir: Path, tmp_path: Path) -> None:
    run, noise = tmp_path / "run", tmp_path / "noise"
    noise.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):  # holes in noise cannot be predicted: a far lower PSNR than photos
        Image.fromarray((rng.random((80, 96, 3)) * 255).astype(np.uint8)).save(noise / f"{i}.png")
    common = [*TINY, "--val-every", "3", "--save-every", "3"]
    assert run_cli("train", "--data", str(photo_dir), "--out", str(run), *common,
                   "--val-fraction", "0.3", "--steps", "3")[0] == 0
    photo_psnr = load_checkpoint(run / "best.pt").train["val_psnr"]
    code, out = run_cli("train", "--resume", str(run), "--val-data", str(noise), "--steps", "6")
    assert code == 0, out
    assert "best.pt starts over" in out
    best = load_checkpoint(run / "best.pt").train
    assert best["step"] == 6 and best["val_psnr"] < photo_psnr
    assert load_checkpoint(run / "last.pt").train["best_psnr"] == pytest.approx(best["val_psnr"])


def test_weight_average_follows_the_ema_formula() -> None:
    torch.manual_seed(0)
    model = PConvUNet(UNetConfig(depth=3, width=8))
    decay = 0.75
    average = weight_average(model, decay)
    expected = {k: v.clone().double() if v.is_floating_point() else v.clone()
                for k, v in model.state_dict().items()}
    for _ in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
            model(torch.rand(2, 3, 32, 32), torch.ones(2, 1, 32, 32))  # moves BN statistics
        average.update_parameters(model)
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                expected[k] = decay * expected[k] + (1 - decay) * v.double()
            else:
                expected[k] = v.clone()
    state = average.module.state_dict()
    for k, v in expected.items():
        assert torch.allclose(state[k].to(v.dtype), v, atol=1e-6), k
    assert int(state["encoder.1.bn.num_batches_tracked"]) == 3


def test_weight_average_is_resumed_validated_and_bundled(photo_dir: Path, tmp_path: Path) -> None:
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    common = ["--data", str(photo_dir), *TINY, "--val-fraction", "0.3", "--ema-decay", "0.8",
              "--val-every", "6"]
    assert run_cli("train", *common, "--out", str(straight), "--steps", "6")[0] == 0
    assert run_cli("train", *common, "--out", str(halves), "--steps", "3")[0] == 0
    code, out = run_cli("train", "--resume", str(halves), "--steps", "6")
    assert code == 0, out
    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(halves / "last.pt")
    for k, v in a.train["ema_model"].items():
        assert torch.allclose(v.float(), b.train["ema_model"][k].float(), atol=1e-6), k
    # what evaluate/export/restore build is the average, not the last step's weights
    averaged, raw = a.train["ema_model"], a.model_state
    built = load_model(straight / "last.pt").state_dict()
    key = "encoder.1.conv.weight"
    assert torch.equal(built[key], averaged[key]) and not torch.equal(built[key], raw[key])
    best = load_checkpoint(straight / "best.pt")
    assert best.train["step"] == 6 and torch.equal(best.model_state[key], averaged[key])
    bundle_weights(straight / "last.pt", tmp_path / "bundled.pt")
    bundled = load_checkpoint(tmp_path / "bundled.pt")
    assert bundled.train["weights"] == "average"
    assert torch.allclose(bundled.model_state[key].float(), averaged[key], atol=1e-2)


def test_ema_decay_outside_zero_to_one_is_refused(photo_dir: Path, tmp_path: Path) -> None:
    code, out = run_cli("train", "--data", str(photo_dir), "--out", str(tmp_path / "r"), *TINY,
                        "--ema-decay", "1.0")
    assert code != 0 and "--ema-decay" in out


def test_a_paper_renorm_checkpoint_starts_a_branch_renorm_run(photo_dir: Path,
                                                              tmp_path: Path) -> None:
    """The decoder's renormalisation changes no weight: a model trained with the paper's
    (every checkpoint made before the option) is fine-tuned with the per-branch one."""
    old = tmp_path / "old.pt"
    paper = UNetConfig(depth=3, width=8, decoder_renorm="paper")
    save_checkpoint(old, paper, PConvUNet(paper).state_dict())
    run = tmp_path / "run"
    code, out = run_cli("train", "--data", str(photo_dir), "--out", str(run), *TINY,
                        "--steps", "1", "--val-fraction", "0.3", "--from", str(old))
    assert code == 0, out
    assert load_checkpoint(run / "last.pt").model_config.decoder_renorm == "branch"
    assert json.loads((run / "config.json").read_text())["decoder_renorm"] == "branch"


def test_runs_from_before_the_renorm_option_resume_with_the_papers() -> None:
    settings = asdict(TrainConfig(data="d", out="o"))
    del settings["decoder_renorm"]
    assert TrainConfig.from_dict(settings).decoder_renorm == "paper"
    assert TrainConfig().decoder_renorm == "branch"


def test_the_renorm_choices_are_the_networks() -> None:
    from pconv_cli.core.network import DECODER_RENORMS as NETWORK_CHOICES
    from pconv_cli.train_config import DECODER_RENORMS

    assert DECODER_RENORMS == NETWORK_CHOICES
