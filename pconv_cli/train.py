"""Training (paper §4.2): Adam at 2e-4, then fine-tuning at 5e-5 with the encoder BN frozen.

The loop reads top to bottom in :func:`train`. A run directory holds everything needed to
watch, stop and resume a run:

    config.json   resolved settings           metrics.csv   one row per log / validation
    last.pt       resumable checkpoint        best.pt       best validation PSNR
    samples/      input|mask|output|composite|truth grids at every validation
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import json
import math
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from . import __version__
from .checkpoint import INPAINTER, load_checkpoint, save_checkpoint
from .core import InpaintingLoss, PConvUNet, UNetConfig, composite, freeze_encoder_bn
from .devices import resolve_device
from .errors import CheckpointError, ConfigError, InputError, TrainingError
from .fileio import atomic_write_text
from .masks import MaskParams
from .train_config import SHAPE_KEYS, TrainConfig


def same_weight_shapes(a: UNetConfig, b: UNetConfig) -> bool:
    """Whether the weights of one model load into the other (its decoder_renorm aside)."""
    return dataclasses.replace(a, decoder_renorm=b.decoder_renorm) == b


METRIC_COLUMNS = [
    "step", "phase", "kind", "total", "valid", "hole", "perceptual", "style_out",
    "style_comp", "tv", "lr", "images_per_s", "val_psnr", "val_ssim",
]
LOSS_TERMS = ["total", "valid", "hole", "perceptual", "style_out", "style_comp", "tv"]


class Reporter(Protocol):
    """How the trainer talks to its user (the CLI renders this with rich)."""

    def start(self, config: TrainConfig, start_step: int, notes: list[str]) -> None: ...
    def step(
        self, step: int, phase: str, losses: dict[str, float], images_per_s: float
    ) -> None: ...
    def validation(self, step: int, psnr: float, ssim: float, best: bool) -> None: ...
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
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return _Dist(rank, world, local)


def phase_of(step: int, config: TrainConfig) -> str:
    return "train" if step < config.steps else "finetune"


def lr_of(step: int, config: TrainConfig) -> float:
    return config.lr if step < config.steps else config.finetune_lr


# ---------------------------------------------------------------------------------------------
# Run directory


def resolve_resume(run_dir: str | os.PathLike, overrides: dict[str, Any]) -> TrainConfig:
    """The config of a run to resume, with ``overrides`` (e.g. longer schedules) applied.

    Shape settings (depth, width, size) cannot change: the weights would not fit.
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


def _write_config(run: Path, config: TrainConfig) -> None:
    atomic_write_text(run / "config.json", json.dumps(asdict(config), indent=2) + "\n")


class _MetricsLog:
    """metrics.csv: appended row by row; on resume, rows past the checkpoint are dropped."""

    def __init__(self, path: Path, resume_step: int | None) -> None:
        self.path = path
        if resume_step is not None and path.is_file():
            with path.open(newline="") as handle:
                rows = [r for r in csv.DictReader(handle) if int(r["step"]) <= resume_step]
            self._rewrite(rows)
        elif not path.is_file() or resume_step is None:
            self._rewrite([])

    def _rewrite(self, rows: list[dict]) -> None:
        with self.path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, METRIC_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    def append(self, row: dict[str, Any]) -> None:
        with self.path.open("a", newline="") as handle:
            csv.DictWriter(handle, METRIC_COLUMNS).writerow(
                {k: _fmt(row.get(k, "")) for k in METRIC_COLUMNS}
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


def _unwrap(model: torch.nn.Module) -> PConvUNet:
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def _save(
    path: Path, model: torch.nn.Module, config: TrainConfig, step: int, *,
    optimizer: torch.optim.Optimizer | None = None,
    scaler: torch.amp.GradScaler | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    net = _unwrap(model)
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


class WeightAverage:
    """Exponential moving average of a model's weights and BatchNorm statistics.

    After every optimizer step ``avg ← decay·avg + (1 − decay)·w`` for each floating-point
    entry of the state dict (integer buffers are copied). With a small batch and a constant
    learning rate the weights of one step are noisy; their average is what validation,
    ``best.pt`` and the bundled model use. (``torch.optim.swa_utils.AveragedModel`` does the
    same arithmetic but wraps the module, so its state dict would not load into a
    ``PConvUNet``; a plain state dict keeps checkpoints one format.)
    """

    def __init__(self, model: torch.nn.Module, decay: float,
                 state: dict[str, torch.Tensor] | None = None) -> None:
        self.decay = decay
        current = _unwrap(model).state_dict()
        source = state if state is not None else current
        if set(source) != set(current):
            raise CheckpointError("the saved weight average does not fit the model")
        self.state = {
            k: v.detach().to(current[k].device,
                             torch.float32 if v.is_floating_point() else v.dtype).clone()
            for k, v in source.items()
        }

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for k, v in _unwrap(model).state_dict().items():
            if v.is_floating_point():
                self.state[k].lerp_(v.detach().float(), 1.0 - self.decay)
            else:
                self.state[k].copy_(v)

    def load_into(self, model: PConvUNet) -> PConvUNet:
        model.load_state_dict(self.state)
        return model


# ---------------------------------------------------------------------------------------------
# Validation


@torch.no_grad()
def validate(
    model: torch.nn.Module, images: torch.Tensor, masks: torch.Tensor, device: torch.device,
    batch_size: int,
) -> tuple[float, float, torch.Tensor]:
    """Mean PSNR / SSIM of the composite over the validation set, and the outputs."""
    net = _unwrap(model)
    was_training = net.training
    net.eval()
    outputs = []
    for i in range(0, len(images), batch_size):
        img = images[i : i + batch_size].to(device)
        msk = masks[i : i + batch_size].to(device)
        outputs.append(net(img, msk).clamp(0, 1).float().cpu())
    net.train(was_training)
    out = torch.cat(outputs)
    comp = composite(images, out, masks)
    truth_np = images.permute(0, 2, 3, 1).numpy()
    comp_np = comp.permute(0, 2, 3, 1).numpy()
    from .metrics import psnr, ssim

    psnrs = [min(psnr(c, t), 100.0) for c, t in zip(comp_np, truth_np, strict=True)]
    ssims = [ssim(c, t) for c, t in zip(comp_np, truth_np, strict=True)]
    return float(np.mean(psnrs)), float(np.mean(ssims)), out


def sample_grid(images: torch.Tensor, masks: torch.Tensor, outputs: torch.Tensor) -> np.ndarray:
    """Rows of input (holes white) | mask (white = hole) | output | composite | truth."""
    masked_input = images * masks + (1 - masks)
    mask_rgb = (1 - masks).expand_as(images)
    comp = composite(images, outputs, masks)
    rows = [torch.cat([masked_input[i], mask_rgb[i], outputs[i], comp[i], images[i]], dim=2)
            for i in range(len(images))]
    grid = torch.cat(rows, dim=1).clamp(0, 1)
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


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


def _autocast(device: torch.device, amp: str):
    if amp == "none":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _first_bad_term(terms: dict[str, torch.Tensor]) -> str | None:
    for name in LOSS_TERMS[1:] + ["total"]:
        if not bool(torch.isfinite(terms[name]).all()):
            return name
    return None


def _fingerprint(*tensors: torch.Tensor) -> str:
    digest = hashlib.sha256()
    for t in tensors:
        digest.update(t.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _batches(loader: DataLoader) -> Iterator[dict]:
    yield from loader


def train(
    config: TrainConfig, *, resume: bool = False, reporter: Reporter | None = None
) -> dict[str, Any]:
    """Run (or resume) training as ``config`` says; returns a summary dict."""
    from .data import (
        MaskSource,
        StepSampler,
        TrainingSamples,
        find_training_images,
        leave_stop_signals_to_the_trainer,
        load_validation_set,
        split_validation,
    )

    reporter = reporter or _SilentReporter()
    config.validate()
    ddp = _init_distributed(config.device)
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
    run = Path(config.out)
    notes: list[str] = []
    if config.sync_bn and not ddp.enabled:
        notes.append("--sync-bn has no effect in a single process (it is for torchrun)")

    # Data ------------------------------------------------------------------------------
    files = find_training_images(config.data)
    if config.val_data:
        train_files = files
        val_files = find_training_images(config.val_data)[: config.val_max_images]
    else:
        train_files, val_files = split_validation(files, config.val_fraction, config.seed,
                                                  max_images=config.val_max_images)
    mask_params = MaskParams(**{k: tuple(v) if isinstance(v, list) else v
                                 for k, v in config.mask_params.items()})
    mask_source = MaskSource.from_folder(config.masks, mask_params)
    dataset = TrainingSamples(train_files, config.size, mask_source, config.seed)
    val_images, val_masks, val_used = load_validation_set(val_files, config.size, mask_params,
                                                   config.seed)

    # Model, loss, optimizer --------------------------------------------------------------
    torch.manual_seed(config.seed)  # the initial weights; data randomness is seeded per sample
    model = PConvUNet(config.model_config())
    val_fingerprint = _fingerprint(val_images, val_masks)
    start_step, best_psnr = 0, -math.inf
    last_path = run / "last.pt"
    ckpt = None
    if resume:
        ckpt = load_checkpoint(last_path)
        if not same_weight_shapes(ckpt.model_config, config.model_config()):
            raise ConfigError(f"{last_path}: model shape differs from the run's config.json")
        model.load_state_dict({k: v.float() for k, v in ckpt.model_state.items()})
        start_step = int(ckpt.train.get("step", 0))
        if start_step >= config.total_steps:
            raise ConfigError(
                f"{run} is at step {start_step} and its schedule ends at step "
                f"{config.total_steps}: nothing to train (give a longer --steps or "
                "--finetune-steps)"
            )
        best_psnr = float(ckpt.train.get("best_psnr", -math.inf))
        if ckpt.train.get("val_fingerprint") != val_fingerprint:
            # Scores on another validation set (new --val-data, or a pconv that draws its
            # validation masks differently) do not compare: best.pt starts over.
            best_psnr = -math.inf
            notes.append("validation set differs from the one before: best.pt starts over")
    elif config.init_from:
        source = load_checkpoint(config.init_from).expect(INPAINTER, config.init_from)
        if not same_weight_shapes(source.model_config, config.model_config()):
            raise ConfigError(
                f"--from {config.init_from}: its model ({source.model_config.depth} layers, "
                f"width {source.model_config.width}) differs from --depth {config.depth} "
                f"--width {config.width}"
            )
        model.load_state_dict({k: v.float() for k, v in source.inference_state.items()})
        notes.append(f"weights from {config.init_from}")
    if config.sync_bn and ddp.enabled:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()

    criterion = InpaintingLoss(config.loss_weights(), vgg_weights=config.vgg_weights).to(device)
    if not config.loss_weights().needs_vgg:
        notes.append("pixel losses only (perceptual and style weights 0): no VGG-16")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr_of(start_step, config))
    scaler = torch.amp.GradScaler(device.type, enabled=config.amp == "fp16")
    if ckpt is not None:
        if "optimizer" in ckpt.train:
            optimizer.load_state_dict(ckpt.train["optimizer"])
        if "scaler" in ckpt.train and scaler.is_enabled():
            scaler.load_state_dict(ckpt.train["scaler"])
        _set_rng_state(ckpt.train.get("rng", {}))

    average: WeightAverage | None = None
    scored_model: torch.nn.Module = model  # what validation scores and best.pt keeps
    if config.ema_decay > 0:
        saved_average = ckpt.train.get("ema_model") if ckpt is not None else None
        average = WeightAverage(model, config.ema_decay, saved_average)
        scored_model = PConvUNet(config.model_config()).to(device).eval()
        notes.append(f"weight average, decay {config.ema_decay:g}"
                     + (f", from step {start_step}" if saved_average is None and start_step
                        else ""))

    # Run directory -----------------------------------------------------------------------
    writer = None
    log: _MetricsLog | None = None
    if ddp.is_main:
        run.mkdir(parents=True, exist_ok=True)
        (run / "samples").mkdir(exist_ok=True)
        _write_config(run, config)
        log = _MetricsLog(run / "metrics.csv", start_step if resume else None)
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(run / "tensorboard"))
        except Exception:  # tensorboard is optional
            notes.append("TensorBoard not installed: metrics.csv only")
    notes.append(f"{len(train_files)} training images, {len(val_used)} validation images "
                 f"× {len(val_images) // len(val_used)} hole-ratio bands")
    notes.append(f"device {device}" + (f", {ddp.world_size} processes" if ddp.enabled else ""))
    reporter.start(config, start_step, notes)

    loader = DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=StepSampler(start_step, config.batch_size, ddp.rank, ddp.world_size),
        num_workers=config.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=4 if config.workers > 0 else None,
        worker_init_fn=leave_stop_signals_to_the_trainer,
    )

    reported_bad: set[int] = set()
    interval: dict[str, float] = {k: 0.0 for k in LOSS_TERMS}
    interval_steps, interval_start = 0, time.perf_counter()
    step = start_step
    phase: str | None = None
    step_model: torch.nn.Module = model  # what the training step calls; set by enter_phase
    stop_reason, stop_signal = "finished", None
    started = time.perf_counter()

    def save_last() -> None:
        if ddp.is_main:
            extra = {"best_psnr": best_psnr, "val_fingerprint": val_fingerprint}
            if average is not None:
                extra["ema_model"] = average.state
            _save(last_path, model, config, step, optimizer=optimizer, scaler=scaler,
                  extra=extra)

    def enter_phase(new_phase: str) -> torch.nn.Module:
        """Set the phase's learning rate and frozen layers; return the model to step.

        DDP records, when it wraps a model, which parameters need gradients and waits for
        exactly those in every backward pass: it wraps the model after the freeze, and again
        at a phase switch in the middle of a run.
        """
        for group in optimizer.param_groups:
            group["lr"] = config.finetune_lr if new_phase == "finetune" else config.lr
        if new_phase == "finetune":
            freeze_encoder_bn(model)
            reporter.message(f"step {step}: fine-tuning at lr {config.finetune_lr:g}, encoder "
                             "BatchNorm frozen")
        wrapped: torch.nn.Module = model
        if ddp.enabled:
            wrapped = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )
        if config.compile:
            wrapped = torch.compile(wrapped)
        return wrapped

    with _StopRequest() as stop:
        batches = _batches(loader)
        try:
            while step < config.total_steps:
                if phase_of(step, config) != phase:
                    phase = phase_of(step, config)
                    step_model = model  # the old wrapper goes first, with its gradient hooks
                    step_model = enter_phase(phase)
                batch = next(batches)
                for bad in batch["skipped"].tolist():
                    if bad >= 0 and bad not in reported_bad:
                        reported_bad.add(bad)
                        reporter.message(f"skipped unreadable image {train_files[bad]}")
                image = batch["image"].to(device, non_blocking=True)
                mask = batch["mask"].to(device, non_blocking=True)
                if config.channels_last:
                    image = image.contiguous(memory_format=torch.channels_last)
                    mask = mask.contiguous(memory_format=torch.channels_last)

                try:
                    with _autocast(device, config.amp):
                        output = step_model(image, mask)
                    terms = criterion(output.float(), image, mask)
                    bad_term = _first_bad_term(terms)
                    if bad_term is not None:
                        raise TrainingError(
                            f"step {step}: loss term '{bad_term}' is "
                            f"{float(terms[bad_term].detach()):g}; stopped without saving — "
                            f"{last_path} holds the last good state (try a lower --lr or "
                            "--amp none)"
                        )
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(terms["total"]).backward()
                    scaler.step(optimizer)
                    scaler.update()
                    if average is not None:
                        average.update(model)
                except torch.OutOfMemoryError:
                    raise TrainingError(
                        f"out of GPU memory at step {step} (batch {config.batch_size}, size "
                        f"{config.size}): try a smaller --batch-size, --amp bf16/fp16 or a "
                        "smaller --size"
                    ) from None
                step += 1

                for k in LOSS_TERMS:
                    interval[k] += float(terms[k].detach())
                interval_steps += 1
                if step % config.log_every == 0 or step == config.total_steps:
                    elapsed = time.perf_counter() - interval_start
                    ips = interval_steps * config.batch_size * ddp.world_size / max(elapsed, 1e-9)
                    means = {k: v / interval_steps for k, v in interval.items()}
                    if log is not None:
                        log.append({"step": step, "phase": phase_of(step - 1, config),
                                    "kind": "train", **means, "lr": lr_of(step - 1, config),
                                    "images_per_s": ips})
                    if writer is not None:
                        for k, v in means.items():
                            writer.add_scalar(f"loss/{k}", v, step)
                    reporter.step(step, phase_of(step - 1, config), means, ips)
                    interval = {k: 0.0 for k in LOSS_TERMS}
                    interval_steps, interval_start = 0, time.perf_counter()

                if ddp.is_main and (step % config.val_every == 0 or step == config.total_steps):
                    if average is not None:
                        average.load_into(scored_model)
                    v_psnr, v_ssim, v_out = validate(scored_model, val_images, val_masks,
                                                     device, config.batch_size)
                    improved = v_psnr > best_psnr
                    if improved:
                        best_psnr = v_psnr
                        _save(run / "best.pt", scored_model, config, step,
                              extra={"val_psnr": v_psnr, "val_ssim": v_ssim})
                    from PIL import Image

                    grid = sample_grid(val_images[:4], val_masks[:4], v_out[:4])
                    Image.fromarray(grid).save(run / "samples" / f"step_{step:06d}.png")
                    if log is not None:
                        log.append({"step": step, "phase": phase_of(step - 1, config),
                                    "kind": "val", "val_psnr": v_psnr, "val_ssim": v_ssim})
                    if writer is not None:
                        writer.add_scalar("val/psnr", v_psnr, step)
                        writer.add_scalar("val/ssim", v_ssim, step)
                    reporter.validation(step, v_psnr, v_ssim, improved)

                if step % config.save_every == 0 or step == config.total_steps:
                    save_last()
                if stop.signal is not None:
                    stop_signal = signal.Signals(stop.signal).name
                    stop_reason = f"stopped by {stop_signal}"
                    save_last()
                    break
        except KeyboardInterrupt:  # a second Ctrl-C, in the middle of a step
            stop_reason, stop_signal = "interrupted", "SIGINT"
            save_last()
        finally:
            if writer is not None:
                writer.close()
            del batches

    summary = {
        "run": str(run),
        "stopped": stop_reason,
        "signal": stop_signal,  # the signal that stopped the run early, if one did
        "training_images": len(train_files),
        "validation_images": len(val_used),
        "start_step": start_step,
        "step": step,
        "total_steps": config.total_steps,
        "best_val_psnr": best_psnr if best_psnr > -math.inf else None,
        "seconds": time.perf_counter() - started,
        "pconv_version": __version__,
    }
    if ddp.enabled:
        summary["ranks_in_sync"] = _ranks_in_sync(model)
        if not summary["ranks_in_sync"]:
            reporter.message("warning: the processes ended with different weights")
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


def bundle_weights(checkpoint: str | os.PathLike, out: str | os.PathLike) -> None:
    """Write a checkpoint's weights alone, in fp16 (what ships inside the package)."""
    ckpt = load_checkpoint(checkpoint)
    if not ckpt.model_state:
        raise CheckpointError(f"{checkpoint}: no weights")
    meta = {k: ckpt.train[k] for k in ("step", "val_psnr", "val_ssim", "best_psnr")
            if k in ckpt.train}
    meta["config"] = ckpt.train.get("config", {})
    meta["weights"] = "average" if "ema_model" in ckpt.train else "last step"
    save_checkpoint(out, ckpt.model_config, ckpt.inference_state, train=meta, half=True)
