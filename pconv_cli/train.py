"""Training: the inpainting network (paper §4.2: Adam at 2e-4, then fine-tuning at 5e-5 with
the encoder BN frozen) or the damage detector, on a folder of photographs.

:func:`train` reads top to bottom: settings, data, model, optimizer, run directory, then the
loop of :class:`_Trainer`. What differs between the two networks (model, data, loss terms,
validation scores, sample grids) is behind :class:`pconv_cli.train_tasks.Task`; the run
directory it writes (settings, metrics, checkpoints, samples) is :mod:`pconv_cli.train_run`'s.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader

from . import __version__
from .checkpoint import load_checkpoint
from .devices import resolve_device
from .errors import ConfigError, TrainingError
from .train_config import TrainConfig
from .train_run import (
    MetricsLog,
    bundle_weights,
    lr_of,
    open_run_directory,
    phase_of,
    resolve_resume,
    resume_optimizer,
    save_state,
    weight_average,
)
from .train_tasks import Task, make_task, same_weight_shapes

__all__ = ["TrainConfig", "bundle_weights", "resolve_resume", "same_weight_shapes", "train",
           "weight_average"]



class Reporter(Protocol):
    """How the trainer talks to its user (the CLI renders this with rich)."""

    def start(self, config: TrainConfig, start_step: int, notes: list[str]) -> None: ...
    def step(
        self, step: int, phase: str, losses: dict[str, float], images_per_s: float
    ) -> None: ...
    def validation(self, step: int, text: str, best: bool) -> None: ...
    def message(self, text: str) -> None: ...
    def finish(self, summary: dict[str, Any]) -> None: ...


class _SilentReporter:
    def start(self, *a: Any) -> None: ...
    def step(self, *a: Any) -> None: ...
    def validation(self, *a: Any) -> None: ...
    def message(self, *a: Any) -> None: ...
    def finish(self, *a: Any) -> None: ...


@dataclass
class _Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # this run started the process group, so it ends it

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_name: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name in ("auto", "cuda") and torch.cuda.is_available()
    owns_group = not dist.is_initialized()
    if owns_group:
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return _Dist(rank, world, local, owns_group)


def _close_distributed(ddp: _Dist) -> None:
    """End the process group this run started, every rank together. Left to the interpreter's
    exit, gloo's threads can outlive it and abort the process after a finished run."""
    if ddp.owns_group and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


# ---------------------------------------------------------------------------------------------
# The loop


class _StopRequest:
    """SIGTERM (and SIGINT) set a flag; the loop saves and stops at the next step boundary."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopRequest:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # not the main thread
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.signal = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _batches(loader: DataLoader) -> Iterator[dict]:
    yield from loader


def _split_files(config: TrainConfig) -> tuple[list[Path], list[Path]]:
    """Training and validation images: --data and --val-data, or a hold-out of --data."""
    from .data import find_training_images, split_validation

    files = find_training_images(config.data)
    if config.val_data:
        return files, find_training_images(config.val_data)[: config.val_max_images]
    return split_validation(files, config.val_fraction, config.seed,
                            max_images=config.val_max_images)


def _device_of(config: TrainConfig, ddp: _Dist) -> torch.device:
    device = resolve_device(config.device)
    if device.type == "cuda" and ddp.enabled:
        device = torch.device("cuda", ddp.local_rank)
        torch.cuda.set_device(device)
    if config.sync_bn and ddp.enabled and device.type != "cuda":
        raise ConfigError(
            "--sync-bn needs CUDA GPUs (torch's SyncBatchNorm has no CPU kernel); without it "
            "each process normalises its own batch"
        )
    if config.amp == "fp16" and device.type != "cuda":
        raise ConfigError("--amp fp16 needs a CUDA GPU; use --amp bf16 on the CPU")
    return device


@dataclass
class _Start:
    """Where a run starts: its step, best score so far, and the checkpoint resumed from."""

    step: int = 0
    best: float = -math.inf
    checkpoint: Any = None
    notes: list[str] = field(default_factory=list)


def _load_start(task: Task, config: TrainConfig, model: torch.nn.Module, resume: bool,
                val_fingerprint: str) -> _Start:
    """Load last.pt into ``model`` to resume, or the weights of --from; say what was done."""
    run, start = Path(config.out), _Start()
    if resume:
        last_path = run / "last.pt"
        ckpt = load_checkpoint(last_path).expect(task.checkpoint_kind, last_path)
        if not task.weights_fit(ckpt.model_config):
            raise ConfigError(f"{last_path}: model shape differs from the run's config.json")
        model.load_state_dict({k: v.float() for k, v in ckpt.model_state.items()})
        start.step, start.checkpoint = int(ckpt.train.get("step", 0)), ckpt
        if start.step >= config.total_steps:
            raise ConfigError(
                f"{run} is at step {start.step} and its schedule ends at step "
                f"{config.total_steps}: nothing to train (give a longer --steps or "
                "--finetune-steps)"
            )
        start.best = float(ckpt.train.get(f"best_{task.best_score}", -math.inf))
        if ckpt.train.get("val_fingerprint") != val_fingerprint:
            # Scores on another validation set (new --val-data, or a pconv that draws its
            # validation masks or damage differently) do not compare: best.pt starts over.
            start.best = -math.inf
            start.notes.append("validation set differs from the one before: best.pt starts over")
    elif config.init_from:
        source = load_checkpoint(config.init_from).expect(task.checkpoint_kind, config.init_from)
        if not task.weights_fit(source.model_config):
            raise ConfigError(
                f"--from {config.init_from}: its model ({source.model_config.depth} layers, "
                f"width {source.model_config.width}) differs from --depth {config.depth} "
                f"--width {config.width}"
            )
        model.load_state_dict({k: v.float() for k, v in source.inference_state.items()})
        start.notes.append(f"weights from {config.init_from}")
    return start


@dataclass
class _Trainer:
    """The state of a run in progress, and what one step, one log line, one validation and one
    save do with it. Only rank 0 has a ``log``: it alone writes the run directory."""

    config: TrainConfig
    task: Task
    ddp: _Dist
    device: torch.device
    model: torch.nn.Module
    criterion: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    average: AveragedModel | None
    scored_model: torch.nn.Module  # what validation scores and best.pt keeps: the average
    reporter: Reporter
    step: int
    best: float
    val_fingerprint: str
    log: MetricsLog | None = None
    writer: Any = None
    step_model: torch.nn.Module | None = None  # the model wrapped for the current phase
    interval: dict[str, torch.Tensor] = field(default_factory=dict)  # loss sums, on the device
    interval_steps: int = 0
    interval_first_step: int = 0
    interval_start: float = field(default_factory=time.perf_counter)

    @property
    def run(self) -> Path:
        return Path(self.config.out)

    def save_last(self) -> None:
        self.check_finite()
        if self.ddp.is_main:
            extra = {f"best_{self.task.best_score}": self.best,
                     "val_fingerprint": self.val_fingerprint}
            if self.average is not None:
                extra["ema_model"] = self.average.module.state_dict()
            save_state(self.run / "last.pt", self.model, self.config, self.step,
                  optimizer=self.optimizer, scaler=self.scaler, extra=extra)

    def enter_phase(self, phase: str) -> None:
        """Set the phase's learning rate and what the task changes for it; wrap the model.

        DDP records, when it wraps a model, which parameters need gradients and waits for
        exactly those in every backward pass: it wraps the model after fine-tuning freezes
        the encoder BatchNorm, and again at a phase switch in the middle of a run.
        """
        self.step_model = None  # the old wrapper goes first, with its gradient hooks
        for group in self.optimizer.param_groups:
            group["lr"] = lr_of(self.step, self.config)
        change = self.task.enter_phase(self.model, phase)
        if change:
            self.reporter.message(f"step {self.step}: {change}")
        wrapped: torch.nn.Module = self.model
        if self.ddp.enabled:
            wrapped = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.step_model = torch.compile(wrapped) if self.config.compile else wrapped

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        """One optimizer step; returns the loss terms as tensors (no host sync: their values
        are read at logging time, see :meth:`record`)."""
        try:
            terms = self.task.step_losses(self.step_model, self.criterion, batch, self.device)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(terms["total"]).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.average is not None:
                self.average.update_parameters(self.model)
        except torch.OutOfMemoryError:
            raise TrainingError(
                f"out of GPU memory at step {self.step} (batch {self.config.batch_size}, size "
                f"{self.config.size}): try a smaller --batch-size, --amp bf16/fp16 or a "
                "smaller --size"
            ) from None
        self.step += 1
        return terms

    def record(self, terms: dict[str, torch.Tensor]) -> None:
        """Add a step's loss terms to the interval (on the device); every --log-every steps,
        read them back once, check them and log their means."""
        if not self.interval_steps:
            self.interval_first_step = self.step - 1
        for k in self.task.loss_terms:
            term = terms[k].detach().float()
            self.interval[k] = self.interval[k] + term if k in self.interval else term
        self.interval_steps += 1
        if self.step % self.config.log_every and self.step != self.config.total_steps:
            return
        means = self.check_finite()
        elapsed = time.perf_counter() - self.interval_start
        ips = (self.interval_steps * self.config.batch_size * self.ddp.world_size
               / max(elapsed, 1e-9))
        phase = phase_of(self.step - 1, self.config)
        if self.log is not None:
            self.log.append({"step": self.step, "phase": phase, "kind": "train", **means,
                             "lr": lr_of(self.step - 1, self.config), "images_per_s": ips})
        if self.writer is not None:
            for k, v in means.items():
                self.writer.add_scalar(f"loss/{k}", v, self.step)
        self.reporter.step(self.step, phase, means, ips)
        self.interval, self.interval_steps = {}, 0
        self.interval_start = time.perf_counter()

    def check_finite(self) -> dict[str, float]:
        """The means of the loss terms since the last log line, read back from the device;
        a term that went NaN or infinite stops the run before anything is saved or scored
        (it is called at logging, validation and saving)."""
        if not self.interval_steps:
            return {}
        means = {k: float(v) / self.interval_steps for k, v in self.interval.items()}
        names = self.task.loss_terms
        for name in [*names[1:], names[0]]:  # the term that went bad first, then their total
            if not math.isfinite(means[name]):
                raise TrainingError(
                    f"loss term '{name}' became {means[name]:g} between step "
                    f"{self.interval_first_step} and step {self.step}; stopped without saving "
                    f"— {self.run / 'last.pt'} holds the last good state (try a lower --lr or "
                    "--amp none)"
                )
        return means

    def validate(self) -> None:
        """Score the (averaged) weights, keep best.pt, save the sample grid (rank 0)."""
        self.check_finite()
        result = self.task.validate(self.scored_model, self.device)
        score = result.scores[self.task.best_score]
        improved = score > self.best
        val_row = {f"val_{k}": v for k, v in result.scores.items()}
        if improved:
            self.best = score
            save_state(self.run / "best.pt", self.scored_model, self.config, self.step,
                  extra=val_row)
        from PIL import Image

        Image.fromarray(result.grid).save(self.run / "samples" / f"step_{self.step:06d}.png")
        if self.log is not None:
            self.log.append({"step": self.step, "phase": phase_of(self.step - 1, self.config),
                             "kind": "val", **val_row})
        if self.writer is not None:
            for k, v in result.scores.items():
                self.writer.add_scalar(f"val/{k}", v, self.step)
        self.reporter.validation(self.step, self.task.describe(result.scores), improved)

    def run_loop(self, batches: Iterator[dict], stop: _StopRequest,
                 train_files: list[Path]) -> tuple[str, str | None]:
        """Train to the end of the schedule or a stop signal; returns (why it stopped,
        the signal's name or None)."""
        reported_bad: set[int] = set()
        phase: str | None = None
        config = self.config
        while self.step < config.total_steps:
            if phase_of(self.step, config) != phase:
                phase = phase_of(self.step, config)
                self.enter_phase(phase)
            batch = next(batches)
            for bad in batch["skipped"].tolist():
                if bad >= 0 and bad not in reported_bad:
                    reported_bad.add(bad)
                    self.reporter.message(f"skipped unreadable image {train_files[bad]}")
            self.record(self.train_step(batch))
            if self.ddp.is_main and (self.step % config.val_every == 0
                                     or self.step == config.total_steps):
                self.validate()
            if self.step % config.save_every == 0 or self.step == config.total_steps:
                self.save_last()
            if stop.signal is not None:
                self.save_last()
                name = signal.Signals(stop.signal).name
                return f"stopped by {name}", name
        return "finished", None


def _loader(dataset: Any, config: TrainConfig, start_step: int, ddp: _Dist,
            device: torch.device) -> DataLoader:
    """Batches from ``start_step`` on, this rank's share of each (the sampler makes a resumed
    run draw the same samples as an uninterrupted one)."""
    from .data import StepSampler, leave_stop_signals_to_the_trainer

    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=StepSampler(start_step, config.batch_size, ddp.rank, ddp.world_size),
        num_workers=config.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=4 if config.workers > 0 else None,
        worker_init_fn=leave_stop_signals_to_the_trainer,
    )


def train(
    config: TrainConfig, *, resume: bool = False, reporter: Reporter | None = None
) -> dict[str, Any]:
    """Run (or resume) training as ``config`` says; returns a summary dict."""
    reporter = reporter or _SilentReporter()
    config.fill_defaults()
    config.validate()
    task = make_task(config)
    ddp = _init_distributed(config.device)
    device = _device_of(config, ddp)
    run = Path(config.out)
    notes: list[str] = []
    if config.sync_bn and not ddp.enabled:
        notes.append("--sync-bn has no effect in a single process (it is for torchrun)")

    # Data ------------------------------------------------------------------------------
    train_files, val_files = _split_files(config)
    dataset = task.training_samples(train_files)
    val_used = task.load_validation(val_files)
    val_fingerprint = task.validation_fingerprint()

    # Model, loss, optimizer --------------------------------------------------------------
    torch.manual_seed(config.seed)  # the initial weights; data randomness is seeded per sample
    model = task.build_model()
    start = _load_start(task, config, model, resume, val_fingerprint)
    notes += start.notes
    if config.sync_bn and ddp.enabled:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    criterion = task.build_loss().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr_of(start.step, config))
    scaler = torch.amp.GradScaler(device.type, enabled=config.amp == "fp16")
    ckpt = start.checkpoint
    if ckpt is not None:
        resume_optimizer(ckpt.train, optimizer, scaler)

    average: AveragedModel | None = None
    scored_model: torch.nn.Module = model
    if config.ema_decay > 0:
        saved_average = ckpt.train.get("ema_model") if ckpt is not None else None
        average = weight_average(model, config.ema_decay, saved_average)
        scored_model = average.module
        notes.append(f"weight average, decay {config.ema_decay:g}"
                     + (f", from step {start.step}" if saved_average is None and start.step
                        else ""))

    # Run directory -----------------------------------------------------------------------
    log, writer = (open_run_directory(run, config, task, start.step if resume else None, notes)
                   if ddp.is_main else (None, None))
    notes.append(f"{len(train_files)} training images, {len(val_used)} validation images")
    notes += task.notes()
    notes.append(f"device {device}" + (f", {ddp.world_size} processes" if ddp.enabled else ""))
    reporter.start(config, start.step, notes)

    loader = _loader(dataset, config, start.step, ddp, device)
    trainer = _Trainer(config, task, ddp, device, model, criterion, optimizer, scaler, average,
                       scored_model, reporter, start.step, start.best, val_fingerprint, log,
                       writer)
    started = time.perf_counter()
    with _StopRequest() as stop:
        batches = _batches(loader)
        try:
            stop_reason, stop_signal = trainer.run_loop(batches, stop, train_files)
        except KeyboardInterrupt:  # a second Ctrl-C, in the middle of a step
            stop_reason, stop_signal = "interrupted", "SIGINT"
            trainer.save_last()
        finally:
            if writer is not None:
                writer.close()
            del batches

    best = trainer.best if trainer.best > -math.inf else None
    summary = {
        "run": str(run),
        "task": config.task,
        "stopped": stop_reason,
        "signal": stop_signal,  # the signal that stopped the run early, if one did
        "training_images": len(train_files),
        "validation_images": len(val_used),
        "start_step": start.step,
        "step": trainer.step,
        "total_steps": config.total_steps,
        "best_metric": task.best_score,  # the validation score best.pt maximises
        f"best_val_{task.best_score}": best,
        "seconds": time.perf_counter() - started,
        "pconv_version": __version__,
    }
    if ddp.enabled:
        summary["ranks_in_sync"] = _ranks_in_sync(model)
        if not summary["ranks_in_sync"]:
            reporter.message("warning: the processes ended with different weights")
        _close_distributed(ddp)
    reporter.finish(summary)
    return summary


def _ranks_in_sync(model: torch.nn.Module) -> bool:
    """True if every process holds the same parameters (compares a checksum across ranks)."""
    with torch.no_grad():
        flat = torch.cat([p.detach().float().flatten() for p in model.parameters()])
        checksum = torch.stack([flat.sum(), (flat * flat).sum(), flat[::97].sum()]).double().cpu()
    if dist.get_backend() == "nccl":
        checksum = checksum.cuda()
    low, high = checksum.clone(), checksum.clone()
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    return bool(torch.equal(low, high))


