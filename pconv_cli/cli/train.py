"""``pconv train``: the paper's two-phase training on a folder of images."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ..devices import DEVICE_CHOICES
from ..errors import ConfigError
from .app import app
from .common import console, handle_errors

_MODEL = "Model"
_DATA = "Data"
_LOSS = "Loss"
_SCHED = "Schedule"
_SPEED = "Speed"
_RUN = "Run directory"


class RichReporter:
    """Progress bar on a terminal; plain log lines otherwise (e.g. under nohup)."""

    def __init__(self, quiet_rank: bool) -> None:
        self.quiet = quiet_rank
        self.interactive = console.is_terminal
        self.progress: Progress | None = None
        self.task = None
        self.last_val = ""

    def start(self, config: Any, start_step: int, notes: list[str]) -> None:
        if self.quiet:
            return
        verb = "resuming" if start_step else "starting"
        console.print(f"[bold]pconv train[/] {verb} {config.out} at step {start_step}/"
                      f"{config.total_steps}")
        for note in notes:
            console.print(f"  · {note}")
        if self.interactive:
            self.progress = Progress(
                TextColumn("[bold]{task.fields[phase]}"), BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[ips]} img/s"),
                TextColumn("{task.fields[val]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                console=console,
            )
            self.progress.start()
            self.task = self.progress.add_task(
                "train", total=config.total_steps, completed=start_step, phase="train",
                loss="-", ips="-", val="",
            )

    def step(self, step: int, phase: str, losses: dict[str, float], ips: float) -> None:
        if self.quiet:
            return
        if self.progress is not None:
            self.progress.update(self.task, completed=step, phase=phase,
                                 loss=f"{losses['total']:.4f}", ips=f"{ips:.1f}")
        else:
            terms = " ".join(f"{k} {v:.4f}" for k, v in losses.items() if v)
            console.print(f"step {step} {phase} {terms} {ips:.1f} img/s", highlight=False)

    def validation(self, step: int, psnr: float, ssim: float, best: bool) -> None:
        if self.quiet:
            return
        text = f"val {psnr:.2f} dB / {ssim:.4f}" + (" (best)" if best else "")
        if self.progress is not None:
            self.progress.update(self.task, val=text)
        else:
            console.print(f"step {step} {text}", highlight=False)

    def message(self, text: str) -> None:
        if not self.quiet:
            console.print(text, highlight=False)

    def finish(self, summary: dict[str, Any]) -> None:
        if self.progress is not None:
            self.progress.stop()
        if self.quiet:
            return
        table = Table(title="pconv train", show_header=False)
        best = summary["best_val_psnr"]
        rows = [
            ("run", summary["run"]), ("status", summary["stopped"]),
            ("steps", f"{summary['start_step']} → {summary['step']} of {summary['total_steps']}"),
            ("best val PSNR", "-" if best is None else f"{best:.2f} dB"),
            ("time", f"{summary['seconds'] / 60:.1f} min"),
        ]
        for key, value in rows:
            table.add_row(key, str(value))
        console.print(table)


@app.command("train")
@handle_errors
def train_command(
    data: Annotated[Path | None, typer.Option("--data", help="Folder of training images (recursive).", rich_help_panel=_DATA)] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Run directory to create.", rich_help_panel=_RUN)] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue the run in this directory exactly where it stopped.", rich_help_panel=_RUN)] = None,
    val_data: Annotated[Path | None, typer.Option("--val-data", help="Validation images (default: a seeded hold-out of --data).", rich_help_panel=_DATA)] = None,
    val_fraction: Annotated[float | None, typer.Option("--val-fraction", help="Share of --data held out for validation [default: 0.05].", rich_help_panel=_DATA)] = None,
    masks: Annotated[Path | None, typer.Option("--masks", help="Folder of mask files (white = hole); default: generated on the fly.", rich_help_panel=_DATA)] = None,
    mask_param: Annotated[list[str] | None, typer.Option("--mask-param", help="Generator parameter NAME=VALUE (see gen-masks), repeatable.", rich_help_panel=_DATA)] = None,
    depth: Annotated[int | None, typer.Option("--depth", help="Encoder layers [default: 7].", rich_help_panel=_MODEL)] = None,
    width: Annotated[int | None, typer.Option("--width", help="Channels of the first layer [default: 64].", rich_help_panel=_MODEL)] = None,
    size: Annotated[int | None, typer.Option("--size", help="Training crop side, a multiple of 2^depth [default: 256].", rich_help_panel=_MODEL)] = None,
    init_from: Annotated[Path | None, typer.Option("--from", help="Start from the weights of this checkpoint.", rich_help_panel=_MODEL)] = None,
    valid_weight: Annotated[float | None, typer.Option("--valid-weight", help="[default: 1]", rich_help_panel=_LOSS)] = None,
    hole_weight: Annotated[float | None, typer.Option("--hole-weight", help="[default: 6]", rich_help_panel=_LOSS)] = None,
    perceptual_weight: Annotated[float | None, typer.Option("--perceptual-weight", help="[default: 0.05]; 0 with --style-weight 0 = pixel-only, no VGG.", rich_help_panel=_LOSS)] = None,
    style_weight: Annotated[float | None, typer.Option("--style-weight", help="[default: 120]", rich_help_panel=_LOSS)] = None,
    tv_weight: Annotated[float | None, typer.Option("--tv-weight", help="[default: 0.1]", rich_help_panel=_LOSS)] = None,
    vgg_weights: Annotated[Path | None, typer.Option("--vgg-weights", help="Local vgg16-397923af.pth (or set PCONV_VGG_WEIGHTS).", rich_help_panel=_LOSS)] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Steps of the first phase [default: 100000].", rich_help_panel=_SCHED)] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="[default: 2e-4]", rich_help_panel=_SCHED)] = None,
    finetune_steps: Annotated[int | None, typer.Option("--finetune-steps", help="Fine-tuning steps with the encoder BN frozen [default: 0].", rich_help_panel=_SCHED)] = None,
    finetune_lr: Annotated[float | None, typer.Option("--finetune-lr", help="[default: 5e-5]", rich_help_panel=_SCHED)] = None,
    ema_decay: Annotated[float | None, typer.Option("--ema-decay", help="Keep an exponential moving average of the weights with this decay (e.g. 0.999); validation, best.pt and the models that evaluate/export/restore load from the run use it. 0 = off. [default: 0]", rich_help_panel=_SCHED)] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="[default: 6]", rich_help_panel=_SCHED)] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="[default: 0]", rich_help_panel=_SCHED)] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Data loader processes [default: 2].", rich_help_panel=_SCHED)] = None,
    device: Annotated[str | None, typer.Option("--device", help=f"{'|'.join(DEVICE_CHOICES)} [default: auto].", rich_help_panel=_SPEED)] = None,
    amp: Annotated[str | None, typer.Option("--amp", help="none|bf16|fp16 (fp16 uses a GradScaler; CUDA only) [default: none].", rich_help_panel=_SPEED)] = None,
    channels_last: Annotated[bool | None, typer.Option("--channels-last/--no-channels-last", help="channels_last memory format (often faster on CPU).", rich_help_panel=_SPEED)] = None,
    compile_model: Annotated[bool | None, typer.Option("--compile/--no-compile", help="torch.compile the model.", rich_help_panel=_SPEED)] = None,
    sync_bn: Annotated[bool | None, typer.Option("--sync-bn/--no-sync-bn", help="Synchronise BatchNorm across torchrun processes.", rich_help_panel=_SPEED)] = None,
    save_every: Annotated[int | None, typer.Option("--save-every", help="Save last.pt every N steps [default: 250].", rich_help_panel=_RUN)] = None,
    val_every: Annotated[int | None, typer.Option("--val-every", help="Validate every N steps [default: 1000].", rich_help_panel=_RUN)] = None,
    log_every: Annotated[int | None, typer.Option("--log-every", help="Log every N steps [default: 25].", rich_help_panel=_RUN)] = None,
) -> None:
    """Train the partial-convolution U-Net with the paper's loss on a folder of images."""
    from ..train import TrainConfig, resolve_resume, train

    values = {
        "data": str(data) if data else None, "val_data": str(val_data) if val_data else None,
        "val_fraction": val_fraction, "masks": str(masks) if masks else None,
        "depth": depth, "width": width, "size": size,
        "init_from": str(init_from) if init_from else None,
        "vgg_weights": str(vgg_weights) if vgg_weights else None,
        "steps": steps, "lr": lr, "finetune_steps": finetune_steps, "finetune_lr": finetune_lr,
        "ema_decay": ema_decay,
        "batch_size": batch_size, "seed": seed, "workers": workers, "device": device,
        "amp": amp, "channels_last": channels_last, "compile": compile_model,
        "sync_bn": sync_bn, "save_every": save_every, "val_every": val_every,
        "log_every": log_every,
    }
    loss = {"valid": valid_weight, "hole": hole_weight, "perceptual": perceptual_weight,
            "style": style_weight, "tv": tv_weight}
    params = _parse_mask_params(mask_param or [])
    if resume is not None:
        if out is not None and Path(out) != resume:
            raise ConfigError("--resume RUN_DIR continues that run; drop --out")
        config = resolve_resume(resume, values)
        config.loss.update({k: v for k, v in loss.items() if v is not None})
        config.mask_params.update(params)
    else:
        if data is None or out is None:
            raise ConfigError("pconv train needs --data DIR and --out RUN_DIR (or --resume RUN_DIR)")
        if (Path(out) / "last.pt").exists():
            raise ConfigError(f"{out} already holds a run: continue it with --resume {out}, or "
                              "choose another --out")
        config = TrainConfig(**{k: v for k, v in values.items() if v is not None}, out=str(out))
        config.loss.update({k: v for k, v in loss.items() if v is not None})
        config.mask_params.update(params)
    rank = int(os.environ.get("RANK", "0"))
    summary = train(config, resume=resume is not None, reporter=RichReporter(quiet_rank=rank != 0))
    if summary["stopped"] != "finished":
        console.print(f"resume with: pconv train --resume {config.out}")
        raise typer.Exit(130 if summary["stopped"] == "interrupted" else 0)


def _parse_mask_params(items: list[str]) -> dict[str, Any]:
    from ..masks import MaskParams

    fields = {f.name: f for f in dataclasses.fields(MaskParams)}
    defaults = MaskParams()
    parsed: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in fields:
            raise ConfigError(
                f"--mask-param {item!r}: expected NAME=VALUE with NAME one of {', '.join(fields)}"
            )
        current = getattr(defaults, name)
        try:
            if isinstance(current, tuple):
                parsed[name] = [type(current[0])(v) for v in raw.split(",")]
            elif isinstance(current, bool):
                parsed[name] = raw.lower() in ("1", "true", "yes")
            else:
                parsed[name] = type(current)(raw)
        except ValueError:
            raise ConfigError(f"--mask-param {item!r}: bad value for {name}") from None
    return parsed

