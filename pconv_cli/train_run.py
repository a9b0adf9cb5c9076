"""A training run's directory and checkpoints: what :mod:`pconv_cli.train`'s loop writes and
reads back to resume.

    config.json   resolved settings           metrics.csv   one row per log / validation
    last.pt       resumable checkpoint        best.pt       best validation score
    samples/      a grid of validation inputs and outputs at every validation

Also the weight average (an EMA of the weights, what validation, best.pt and the bundled model
use) and :func:`bundle_weights`, which turns a run's checkpoint into the fp16 file that ships.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from .checkpoint import load_checkpoint, save_checkpoint
from .errors import CheckpointError, ConfigError, InputError
from .fileio import atomic_write_text
from .train_config import SHAPE_KEYS, TrainConfig
from .train_tasks import Task, unwrap


def phase_of(step: int, config: TrainConfig) -> str:
    return "train" if step < config.steps else "finetune"


def lr_of(step: int, config: TrainConfig) -> float:
    return config.lr if step < config.steps else config.finetune_lr


def metric_columns(task: Task) -> list[str]:
    """metrics.csv's header: the task's loss terms and validation scores."""
    return ["step", "phase", "kind", *task.loss_terms, "lr", "images_per_s",
            *(f"val_{name}" for name in task.score_names)]


# ---------------------------------------------------------------------------------------------
# Run directory


def resolve_resume(run_dir: str | os.PathLike, overrides: dict[str, Any]) -> TrainConfig:
    """The config of a run to resume, with ``overrides`` (e.g. longer schedules) applied.

    The task and the shape settings (depth, width, size) cannot change: the weights would
    not fit.
    """
    run = Path(run_dir)
    cfg_path, last = run / "config.json", run / "last.pt"
    if not cfg_path.is_file() or not last.is_file():
        raise InputError(f"{run}: not a resumable run (needs config.json and last.pt)")
    try:
        saved = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{cfg_path}: unreadable ({exc})") from None
    config = TrainConfig.from_dict(saved)
    for key, value in overrides.items():
        if value is None:
            continue
        if key in SHAPE_KEYS and value != getattr(config, key):
            raise ConfigError(
                f"cannot resume {run} with --{key} {value}: the run was trained with "
                f"--{key} {getattr(config, key)} (start a new run, or use --from to reuse weights)"
            )
        setattr(config, key, value)
    config.out = str(run)
    return config


def write_config(run: Path, config: TrainConfig) -> None:
    atomic_write_text(run / "config.json", json.dumps(asdict(config), indent=2) + "\n")


class MetricsLog:
    """metrics.csv: appended row by row; on resume, rows past the checkpoint are dropped."""

    def __init__(self, path: Path, columns: list[str], resume_step: int | None) -> None:
        self.path = path
        self.columns = columns
        if resume_step is not None and path.is_file():
            with path.open(newline="") as handle:
                rows = [r for r in csv.DictReader(handle) if int(r["step"]) <= resume_step]
            self._rewrite(rows)
        elif not path.is_file() or resume_step is None:
            self._rewrite([])

    def _rewrite(self, rows: list[dict]) -> None:
        with self.path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, self.columns)
            writer.writeheader()
            writer.writerows(rows)

    def append(self, row: dict[str, Any]) -> None:
        with self.path.open("a", newline="") as handle:
            csv.DictWriter(handle, self.columns).writerow(
                {k: _fmt(row.get(k, "")) for k in self.columns}
            )


def _fmt(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value


# ---------------------------------------------------------------------------------------------
# Checkpoints


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError):
            torch.cuda.set_rng_state_all(state["cuda"])


def save_state(
    path: Path, model: torch.nn.Module, config: TrainConfig, step: int, *,
    optimizer: torch.optim.Optimizer | None = None,
    scaler: torch.amp.GradScaler | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    net = unwrap(model)
    train_state: dict[str, Any] = {
        "step": step,
        "phase": phase_of(min(step, max(config.total_steps - 1, 0)), config),
        "config": asdict(config),
        **(extra or {}),
    }
    if optimizer is not None:
        train_state["optimizer"] = optimizer.state_dict()
        train_state["rng"] = _rng_state()
        if scaler is not None and scaler.is_enabled():
            train_state["scaler"] = scaler.state_dict()
    save_checkpoint(path, net.config, net.state_dict(), train=train_state)


def weight_average(model: torch.nn.Module, decay: float,
                   state: dict[str, torch.Tensor] | None = None) -> AveragedModel:
    """An exponential moving average of ``model``'s weights and BatchNorm statistics.

    After every optimizer step ``avg ← decay·avg + (1 − decay)·w`` for each floating-point
    entry of the state dict, starting from the weights it is given (``state``, a saved average,
    or the model's own); integer buffers (BatchNorm's batch count) are copied, not averaged.
    With a small batch and a constant learning rate the weights of one step are noisy; their
    average is what validation, ``best.pt`` and the bundled model use. Checkpoints keep
    ``average.module.state_dict()``, a plain state dict of the network.
    """
    ema = get_ema_multi_avg_fn(decay)

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], count: Any) -> None:
        if averaged[0].is_floating_point():  # torch groups the tensors by dtype
            ema(averaged, current, count)
        else:
            torch._foreach_copy_(averaged, current)

    net = unwrap(model)
    average = AveragedModel(net, multi_avg_fn=update, use_buffers=True)
    if state is not None:
        if set(state) != set(net.state_dict()):
            raise CheckpointError("the saved weight average does not fit the model")
        average.module.load_state_dict(state)
        average.n_averaged.fill_(1)  # continue averaging: the first update must not copy
    else:
        average.update_parameters(net)  # the first update copies: start from these weights
    return average


def open_run_directory(run: Path, config: TrainConfig, task: Task, resume_step: int | None,
                        notes: list[str]) -> tuple[MetricsLog, Any]:
    """config.json, metrics.csv, samples/ and TensorBoard's writer (None without it)."""
    run.mkdir(parents=True, exist_ok=True)
    (run / "samples").mkdir(exist_ok=True)
    write_config(run, config)
    log = MetricsLog(run / "metrics.csv", metric_columns(task), resume_step)
    try:
        from torch.utils.tensorboard import SummaryWriter

        return log, SummaryWriter(str(run / "tensorboard"))
    except Exception:  # tensorboard is optional
        notes.append("TensorBoard not installed: metrics.csv only")
        return log, None


def resume_optimizer(saved: dict[str, Any], optimizer: torch.optim.Optimizer,
                      scaler: torch.amp.GradScaler) -> None:
    """The optimizer, GradScaler and RNG states of a checkpoint's ``train`` entry."""
    if "optimizer" in saved:
        optimizer.load_state_dict(saved["optimizer"])
    if "scaler" in saved and scaler.is_enabled():
        scaler.load_state_dict(saved["scaler"])
    _set_rng_state(saved.get("rng", {}))


def bundle_weights(checkpoint: str | os.PathLike, out: str | os.PathLike) -> None:
    """Write a checkpoint's weights alone, in fp16 (what ships inside the package)."""
    ckpt = load_checkpoint(checkpoint)
    if not ckpt.model_state:
        raise CheckpointError(f"{checkpoint}: no weights")
    meta = {k: v for k, v in ckpt.train.items()
            if k == "step" or k.startswith(("val_", "best_")) and k != "val_fingerprint"}
    meta["config"] = ckpt.train.get("config", {})
    meta["weights"] = "average" if "ema_model" in ckpt.train else "last step"
    save_checkpoint(out, ckpt.model_config, ckpt.inference_state, train=meta, half=True)
