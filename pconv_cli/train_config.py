"""The settings of a training run, importable without torch.

``pconv train`` takes its option defaults from :class:`TrainConfig`, so ``--help`` shows them
without loading torch, and every default is written once, here (the loss weights in
:mod:`pconv_cli.loss_weights`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import ConfigError
from .loss_weights import LossWeights

if TYPE_CHECKING:
    from .core import UNetConfig

# Settings that fix the shape of the model: a resumed run must keep them.
SHAPE_KEYS = ("depth", "width", "size")
AMP_MODES = ("none", "bf16", "fp16")
DECODER_RENORMS = ("branch", "paper")  # the choices of UNetConfig.decoder_renorm


@dataclass
class TrainConfig:
    """Every setting of a run; the defaults are the paper's where it gives one."""

    data: str = ""
    out: str = ""
    val_data: str | None = None
    val_fraction: float = 0.05
    # Validation images: the hold-out of ``data`` is this many at most, all of them validated
    # (or the first ones of ``val_data``).
    val_max_images: int = 16
    masks: str | None = None
    mask_params: dict = field(default_factory=dict)  # MaskParams fields for generated masks
    # model
    depth: int = 7
    width: int = 64
    size: int = 256
    init_from: str | None = None
    # How decoder layers rescale windows with holes (UNetConfig.decoder_renorm); it changes no
    # weight's shape, so a run may switch it when resumed or started --from another model.
    decoder_renorm: str = "branch"
    # loss
    loss: dict = field(default_factory=lambda: LossWeights().to_dict())
    vgg_weights: str | None = None
    # schedule
    steps: int = 100_000
    lr: float = 2e-4
    finetune_steps: int = 0
    finetune_lr: float = 5e-5
    ema_decay: float = 0.0  # 0 = off; else the decay of the weight average (e.g. 0.999)
    batch_size: int = 6
    seed: int = 0
    workers: int = 2
    # speed
    device: str = "auto"
    amp: str = "none"  # one of AMP_MODES
    channels_last: bool = False
    compile: bool = False
    sync_bn: bool = False
    # bookkeeping
    save_every: int = 250
    val_every: int = 1000
    log_every: int = 25

    @property
    def total_steps(self) -> int:
        return self.steps + self.finetune_steps

    def model_config(self) -> UNetConfig:
        from .core import UNetConfig

        return UNetConfig(depth=self.depth, width=self.width, decoder_renorm=self.decoder_renorm)

    def loss_weights(self) -> LossWeights:
        return LossWeights(**self.loss)

    def validate(self) -> None:
        multiple = 2**self.depth
        if self.size % multiple:
            from .core.network import nearest_valid_size  # here only: it loads torch

            near = nearest_valid_size(self.size, multiple)
            raise ConfigError(
                f"--size {self.size} is not a multiple of 2^depth = {multiple} (depth "
                f"{self.depth}); use --size {near} or another --depth"
            )
        if self.batch_size < 1 or self.steps < 0 or self.finetune_steps < 0:
            raise ConfigError("--batch-size must be ≥ 1 and the step counts ≥ 0")
        if min(self.save_every, self.val_every, self.log_every) < 1:
            raise ConfigError("--save-every, --val-every and --log-every must be ≥ 1")
        if self.val_max_images < 1:
            raise ConfigError(f"val_max_images {self.val_max_images}: validation needs ≥ 1 image")
        if self.lr <= 0 or self.finetune_lr <= 0:
            raise ConfigError("--lr and --finetune-lr must be > 0")
        if self.workers < 0:
            raise ConfigError(f"--workers {self.workers}: use 0 (load in the trainer) or more")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"--ema-decay {self.ema_decay}: use 0 (off) or a decay in (0, 1), "
                              "e.g. 0.999")
        if self.decoder_renorm not in DECODER_RENORMS:
            raise ConfigError(f"--decoder-renorm {self.decoder_renorm!r}: one of "
                              f"{', '.join(DECODER_RENORMS)}")
        if self.amp not in AMP_MODES:
            raise ConfigError(f"--amp must be none, bf16 or fp16, not {self.amp!r}")
        if self.batch_size < 2 and self.size // multiple == 1:
            raise ConfigError(
                "BatchNorm on a 1×1 bottleneck needs --batch-size ≥ 2 (or a smaller --depth)"
            )

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        data = {"decoder_renorm": "paper", **data}  # runs from before the option used the paper's
        return cls(**{k: v for k, v in data.items() if k in known})
