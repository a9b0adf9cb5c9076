"""``pconv train``: the paper's two-phase training of the inpainting network, or the damage
detector's training (``--task detect``), on a folder of images."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ..devices import DEVICE_CHOICES
from ..errors import ConfigError
from ..train_config import DECODER_RENORMS, INPAINT_DEPTH, INPAINT_WIDTH, TASKS, TrainConfig
from .app import app
from .common import choices, console, examples, handle_errors

_MODEL = "Model"
_DATA = "Data"
_LOSS_PANEL = "Loss"
_SCHED = "Schedule"
_SPEED = "Speed"
_RUN = "Run directory"
_DETECT = "Damage detector (--task detect)"

# The option defaults: a new run's TrainConfig, loss weights included.
_DEFAULTS = TrainConfig()
DecoderRenorm = choices("DecoderRenorm", DECODER_RENORMS)
TaskName = choices("TaskName", TASKS)
_LOSS_DEFAULTS = _DEFAULTS.loss
_DETECTION_LOSS_DEFAULTS = _DEFAULTS.detection_loss
# Options that only one task uses (parameter names); given to the other, they are refused.
_INPAINT_ONLY = ("masks", "mask_param", "decoder_renorm", "vgg_weights", "valid_weight",
                 "hole_weight", "perceptual_weight", "style_weight", "tv_weight", "finetune_lr")
_DETECTION_LOSS_OPTION = {"bce": "bce_weight", "dice": "dice_weight",
                          "positive_weight": "positive_weight"}  # loss term: parameter
_DETECT_ONLY = ("artefacts", "clean_fraction", "bce_weight", "dice_weight", "positive_weight")


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

    def validation(self, step: int, text: str, best: bool) -> None:
        if self.quiet:
            return
        text += " (best)" if best else ""
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
        metric = summary["best_metric"]
        best = summary[f"best_val_{metric}"]
        rows = [
            ("run", summary["run"]), ("status", summary["stopped"]),
            ("steps", f"{summary['start_step']} → {summary['step']} of {summary['total_steps']}"),
            (f"best val {metric}", "-" if best is None else f"{best:.4g}"),
            ("time", f"{summary['seconds'] / 60:.1f} min"),
        ]
        for key, value in rows:
            table.add_row(key, str(value))
        console.print(table)


@app.command("train", epilog=examples(
    ("pconv train --data photos/ --out runs/a --depth 7 --width 32 --steps 40000 "
     "--finetune-steps 10000 --perceptual-weight 0 --style-weight 0 --amp bf16",
     "the bundled model's recipe, pixel losses only (docs/model-card.md)"),
    ("pconv train --resume runs/a --finetune-steps 20000",
     "continue where it stopped, with a longer fine-tuning phase"),
    ("pconv train --data photos/ --out runs/b --from runs/a/best.pt --masks thin-masks/",
     "a new run that starts from another model's weights"),
    ("torchrun --nproc-per-node 2 -m pconv_cli train --data photos/ --out runs/c",
     "several processes (DDP)"),
    ("pconv train --task detect --data photos/ --out runs/detector --artefacts "
     "damage-artefacts/ --amp bf16 --ema-decay 0.999",
     "the damage detector, on photos with synthesised damage (docs/training.md)"),
))
@handle_errors
def train_command(
    ctx: typer.Context,
    task: Annotated[TaskName, typer.Option("--task", help="What to train: the inpainting network (fills holes) or the damage detector (finds them, for restore without masks). A run keeps its task.", rich_help_panel=_MODEL)] = TaskName(_DEFAULTS.task),
    data: Annotated[Path | None, typer.Option("--data", help="Folder of training images (recursive).", rich_help_panel=_DATA, show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Run directory to create.", rich_help_panel=_RUN, show_default=False)] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue the run in this directory exactly where it stopped; options given with it change its settings.", rich_help_panel=_RUN, show_default=False)] = None,
    val_data: Annotated[Path | None, typer.Option("--val-data", help="Validation images (default: a seeded hold-out of --data).", rich_help_panel=_DATA, show_default=False)] = None,
    val_fraction: Annotated[float, typer.Option("--val-fraction", help=f"Share of --data held out for validation (at most {_DEFAULTS.val_max_images} images).", rich_help_panel=_DATA)] = _DEFAULTS.val_fraction,
    masks: Annotated[Path | None, typer.Option("--masks", help="Folder of mask files (white = hole); default: generated on the fly.", rich_help_panel=_DATA, show_default=False)] = None,
    mask_param: Annotated[list[str] | None, typer.Option("--mask-param", metavar="NAME=VALUE", help="Mask generator parameter as gen-masks takes it: one value (fixed) or LOW,HIGH, e.g. strokes=2,5; repeatable.", rich_help_panel=_DATA, show_default=False)] = None,
    depth: Annotated[int | None, typer.Option("--depth", help="Encoder levels, each halving the resolution.", rich_help_panel=_MODEL, show_default=f"{INPAINT_DEPTH}; detect: DetectorConfig's")] = _DEFAULTS.depth,
    width: Annotated[int | None, typer.Option("--width", help="Channels at full resolution.", rich_help_panel=_MODEL, show_default=f"{INPAINT_WIDTH}; detect: DetectorConfig's")] = _DEFAULTS.width,
    size: Annotated[int, typer.Option("--size", help="Training crop side, a multiple of 2^depth.", rich_help_panel=_MODEL)] = _DEFAULTS.size,
    decoder_renorm: Annotated[DecoderRenorm, typer.Option("--decoder-renorm", help="How decoder layers rescale windows with holes: each branch by its own valid share (fills thin holes at the right brightness), or the paper's one ratio over both.", rich_help_panel=_MODEL)] = DecoderRenorm(_DEFAULTS.decoder_renorm),
    init_from: Annotated[Path | None, typer.Option("--from", help="Start a new run from the weights of this checkpoint.", rich_help_panel=_MODEL, show_default=False)] = None,
    valid_weight: Annotated[float, typer.Option("--valid-weight", help="Weight of the error outside the holes.", rich_help_panel=_LOSS_PANEL)] = _LOSS_DEFAULTS["valid"],
    hole_weight: Annotated[float, typer.Option("--hole-weight", help="Weight of the error inside the holes.", rich_help_panel=_LOSS_PANEL)] = _LOSS_DEFAULTS["hole"],
    perceptual_weight: Annotated[float, typer.Option("--perceptual-weight", help="Weight of the VGG-16 perceptual term; 0 with --style-weight 0 = pixel-only, no VGG.", rich_help_panel=_LOSS_PANEL)] = _LOSS_DEFAULTS["perceptual"],
    style_weight: Annotated[float, typer.Option("--style-weight", help="Weight of each of the two VGG-16 style terms (output, composite).", rich_help_panel=_LOSS_PANEL)] = _LOSS_DEFAULTS["style"],
    tv_weight: Annotated[float, typer.Option("--tv-weight", help="Weight of the total variation at the hole borders.", rich_help_panel=_LOSS_PANEL)] = _LOSS_DEFAULTS["tv"],
    vgg_weights: Annotated[Path | None, typer.Option("--vgg-weights", help="Local vgg16-397923af.pth (or set PCONV_VGG_WEIGHTS).", rich_help_panel=_LOSS_PANEL, show_default=False)] = None,
    artefacts: Annotated[Path | None, typer.Option("--artefacts", help="Folder of real film-artefact cut-outs (hair/, dots/...) laid on beside the procedural damage. Default: $PCONV_DAMAGE_ARTEFACTS, else procedural damage only; the run records which.", rich_help_panel=_DETECT, show_default=False)] = None,
    clean_fraction: Annotated[float, typer.Option("--clean-fraction", help="Share of training samples left without damage (still degraded), so that the detector leaves clean images alone.", rich_help_panel=_DETECT)] = _DEFAULTS.clean_fraction,
    bce_weight: Annotated[float, typer.Option("--bce-weight", help="Weight of the binary cross-entropy term.", rich_help_panel=_DETECT)] = _DETECTION_LOSS_DEFAULTS["bce"],
    dice_weight: Annotated[float, typer.Option("--dice-weight", help="Weight of the soft Dice term (over the batch).", rich_help_panel=_DETECT)] = _DETECTION_LOSS_DEFAULTS["dice"],
    positive_weight: Annotated[float, typer.Option("--positive-weight", help="Weight of damaged pixels in the cross-entropy (damage is rare).", rich_help_panel=_DETECT)] = _DETECTION_LOSS_DEFAULTS["positive_weight"],
    steps: Annotated[int, typer.Option("--steps", help="Steps of the first phase.", rich_help_panel=_SCHED)] = _DEFAULTS.steps,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate of the first phase.", rich_help_panel=_SCHED)] = _DEFAULTS.lr,
    finetune_steps: Annotated[int, typer.Option("--finetune-steps", help="Fine-tuning steps after --steps, with the encoder BatchNorm frozen.", rich_help_panel=_SCHED)] = _DEFAULTS.finetune_steps,
    finetune_lr: Annotated[float, typer.Option("--finetune-lr", help="Adam learning rate of the fine-tuning phase.", rich_help_panel=_SCHED)] = _DEFAULTS.finetune_lr,
    ema_decay: Annotated[float, typer.Option("--ema-decay", help="Keep an exponential moving average of the weights with this decay (e.g. 0.999); validation, best.pt and the models that evaluate/export/restore load from the run use it. 0 = off.", rich_help_panel=_SCHED)] = _DEFAULTS.ema_decay,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per step (per process under torchrun).", rich_help_panel=_SCHED)] = _DEFAULTS.batch_size,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the weights, the samples, the masks and the validation split.", rich_help_panel=_SCHED)] = _DEFAULTS.seed,
    workers: Annotated[int, typer.Option("--workers", help="Data loader processes (0 = load in the trainer).", rich_help_panel=_SCHED)] = _DEFAULTS.workers,
    device: Annotated[str, typer.Option("--device", help=f"{'|'.join(DEVICE_CHOICES)} (or cuda:N).", rich_help_panel=_SPEED)] = _DEFAULTS.device,
    amp: Annotated[Literal["none", "bf16", "fp16"], typer.Option("--amp", help="Mixed precision (fp16 uses a GradScaler; CUDA only).", rich_help_panel=_SPEED)] = _DEFAULTS.amp,
    channels_last: Annotated[bool, typer.Option("--channels-last/--no-channels-last", help="channels_last memory format.", rich_help_panel=_SPEED)] = _DEFAULTS.channels_last,
    compile_model: Annotated[bool, typer.Option("--compile/--no-compile", help="torch.compile the model.", rich_help_panel=_SPEED)] = _DEFAULTS.compile,
    sync_bn: Annotated[bool, typer.Option("--sync-bn/--no-sync-bn", help="Synchronise BatchNorm across torchrun processes (CUDA).", rich_help_panel=_SPEED)] = _DEFAULTS.sync_bn,
    save_every: Annotated[int, typer.Option("--save-every", help="Save last.pt every N steps.", rich_help_panel=_RUN)] = _DEFAULTS.save_every,
    val_every: Annotated[int, typer.Option("--val-every", help="Validate every N steps.", rich_help_panel=_RUN)] = _DEFAULTS.val_every,
    log_every: Annotated[int, typer.Option("--log-every", help="Log every N steps.", rich_help_panel=_RUN)] = _DEFAULTS.log_every,
) -> None:
    """Train the partial-convolution U-Net with the paper's loss on a folder of images, or,
    with --task detect, the damage detector on the images with synthesised damage.

    Stopped by Ctrl-C or SIGTERM, it saves last.pt and exits with 130 or 143.
    """
    from ..masks import MaskParams
    from ..train import resolve_resume, train

    settings = {  # TrainConfig field: value
        "task": task.value, "data": _text(data), "val_data": _text(val_data),
        "val_fraction": val_fraction,
        "masks": _text(masks), "depth": depth, "width": width, "size": size,
        "decoder_renorm": decoder_renorm.value,
        "init_from": _text(init_from), "vgg_weights": _text(vgg_weights),
        "steps": steps, "lr": lr, "finetune_steps": finetune_steps, "finetune_lr": finetune_lr,
        "ema_decay": ema_decay, "batch_size": batch_size, "seed": seed, "workers": workers,
        "device": device, "amp": amp, "channels_last": channels_last, "compile": compile_model,
        "sync_bn": sync_bn, "save_every": save_every, "val_every": val_every,
        "log_every": log_every, "artefacts": _text(artefacts),
        "clean_fraction": clean_fraction,
    }
    loss = {"valid": valid_weight, "hole": hole_weight, "perceptual": perceptual_weight,
            "style": style_weight, "tv": tv_weight}
    detection_loss = {"bce": bce_weight, "dice": dice_weight, "positive_weight": positive_weight}
    given = _options_given(ctx)
    params = parse_mask_param_options(mask_param or [])
    if resume is not None:
        if out is not None and Path(out) != resume:
            raise ConfigError("--resume RUN_DIR continues that run; drop --out")
        if init_from is not None:
            raise ConfigError("--from starts a new run from a checkpoint's weights; --resume "
                              "continues from the run's last.pt: give one of them")
        parameter_of = {"compile": "compile_model"}
        config = resolve_resume(resume, {key: value for key, value in settings.items()
                                         if parameter_of.get(key, key) in given})
        config.loss.update({k: v for k, v in loss.items() if f"{k}_weight" in given})
        config.detection_loss.update({k: v for k, v in detection_loss.items()
                                      if _DETECTION_LOSS_OPTION[k] in given})
    else:
        if data is None or out is None:
            raise ConfigError("pconv train needs --data DIR and --out RUN_DIR (or --resume RUN_DIR)")
        if (Path(out) / "last.pt").exists():
            raise ConfigError(f"{out} already holds a run: continue it with --resume {out}, or "
                              "choose another --out")
        config = TrainConfig(**settings, out=str(out), loss=loss, detection_loss=detection_loss)
    _refuse_options_of_the_other_task(config, given)
    if config.val_data and "val_fraction" in given:
        raise ConfigError("--val-fraction holds out part of --data, and --val-data replaces "
                          "that hold-out: give one of them")
    config.mask_params.update(params)
    MaskParams.from_dict(config.mask_params)  # a bad combination (low above high) fails now
    rank = int(os.environ.get("RANK", "0"))
    summary = train(config, resume=resume is not None, reporter=RichReporter(quiet_rank=rank != 0))
    code = 0
    if summary["signal"] is not None:
        console.print(f"resume with: pconv train --resume {config.out}")
        # The shell's convention for a process ended by a signal: 128 + its number.
        code = 128 + signal.Signals[summary["signal"]].value
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Under torchrun, torch's C++ threads can abort a process that has finished and
        # saved everything ("terminate called without an active exception"), and torchrun
        # then reports the whole run as failed. Everything is written: leave at once.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    if code:
        raise typer.Exit(code)


def _refuse_options_of_the_other_task(config: TrainConfig, given: set[str]) -> None:
    other = sorted(given & set(_INPAINT_ONLY if config.detects else _DETECT_ONLY))
    if other:
        option = "--" + other[0].replace("_", "-")
        task = "inpaint" if config.detects else "detect"
        raise ConfigError(f"{option} is for --task {task}; this run trains --task {config.task}")


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _options_given(ctx: typer.Context) -> set[str]:
    """Parameters the user set (on the command line or through the environment): on resume
    these, and only these, change the run's saved settings."""
    defaulted = ("DEFAULT", "DEFAULT_MAP")
    return {name for name in ctx.params
            if (source := ctx.get_parameter_source(name)) is not None
            and source.name not in defaulted}


def parse_mask_param_options(items: list[str]) -> dict[str, list[float]]:
    """``--mask-param NAME=VALUE`` options as ``TrainConfig.mask_params`` holds them."""
    from ..masks import parse_mask_param

    parsed: dict[str, list[float]] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"--mask-param {item!r}: write NAME=VALUE, e.g. strokes=2,5")
        try:
            low, high = parse_mask_param(name, text)
        except ConfigError as exc:
            raise ConfigError(f"--mask-param {item!r}: {exc}") from None
        parsed[name.strip().replace("-", "_")] = [low, high]
    return parsed
