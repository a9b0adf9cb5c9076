"""The settings of a training run, importable without torch.

``pconv train`` takes its option defaults from :class:`TrainConfig`, so ``--help`` shows them
without loading torch, and every default is written once, here (the loss weights in
:mod:`pconv_cli.loss_weights`; the detector's shape in ``DetectorConfig``, read when a run
starts).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import ConfigError
from .loss_weights import DetectionLossWeights, LossWeights

if TYPE_CHECKING:
    from .core import UNetConfig
    from .core.detector import DetectorConfig

# Settings a resumed run must keep: the shape of the model, and what it learns.
SHAPE_KEYS = ("task", "depth", "width", "size")
TASKS = ("inpaint", "detect")  # fill holes (PConvUNet) or find damage (DamageDetector)
# The inpainting network trained at 256²: the paper's 512² one (UNetConfig's) less a layer.
INPAINT_DEPTH, INPAINT_WIDTH = 7, 64
AMP_MODES = ("none", "bf16", "fp16")
DECODER_RENORMS = ("branch", "paper")  # the choices of UNetConfig.decoder_renorm


@dataclass
class TrainConfig:
    """Every setting of a run; the defaults are the paper's where it gives one."""

    task: str = "inpaint"  # one of TASKS
    data: str = ""
    out: str = ""
    val_data: str | None = None
    val_fraction: float = 0.05
    # Validation images: the hold-out of ``data`` is this many at most, all of them validated
    # (or the first ones of ``val_data``).
    val_max_images: int = 16
    masks: str | None = None
    mask_params: dict = field(default_factory=dict)  # MaskParams fields for generated masks
    # model; depth and width None: the task's own (INPAINT_*, or DetectorConfig's defaults),
    # filled in when the run starts so that config.json records the numbers
    depth: int | None = None
    width: int | None = None
    size: int = 256
    init_from: str | None = None
    # How decoder layers rescale windows with holes (UNetConfig.decoder_renorm); it changes no
    # weight's shape, so a run may switch it when resumed or started --from another model.
    decoder_renorm: str = "branch"
    # loss
    loss: dict = field(default_factory=lambda: LossWeights().to_dict())
    vgg_weights: str | None = None
    # detection: damage synthesised on the clean images (pconv_cli.detection_data)
    # Film-artefact folder; None: $PCONV_DAMAGE_ARTEFACTS when the run starts, else "" (the run
    # records which): procedural damage only.
    artefacts: str | None = None
    clean_fraction: float = 0.1  # of the training samples left without damage
    detection_loss: dict = field(default_factory=lambda: DetectionLossWeights().to_dict())
    damage_version: int | None = None  # the synthesiser's GENERATOR_VERSION, set at the start
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

    @property
    def detects(self) -> bool:
        return self.task == "detect"

    def fill_defaults(self) -> None:
        """Settings left to the run's start: the task's model shape, the artefact folder of a
        detection run and the synthesiser's version. Loads torch for a detector's shape."""
        if self.task not in TASKS:
            raise ConfigError(f"--task {self.task!r}: one of {', '.join(TASKS)}")
        if self.depth is None or self.width is None:
            if self.detects:
                from .core.detector import DetectorConfig

                depth, width = DetectorConfig().depth, DetectorConfig().width
            else:
                depth, width = INPAINT_DEPTH, INPAINT_WIDTH
            self.depth = depth if self.depth is None else self.depth
            self.width = width if self.width is None else self.width
        if self.detects:
            from .damage import GENERATOR_VERSION
            from .damage.artefacts import ARTEFACTS_ENV

            if self.artefacts is None:
                self.artefacts = os.environ.get(ARTEFACTS_ENV) or ""
            if self.damage_version is None:
                self.damage_version = GENERATOR_VERSION

    def model_config(self) -> UNetConfig:
        from .core import UNetConfig

        return UNetConfig(depth=self.depth, width=self.width, decoder_renorm=self.decoder_renorm)

    def detector_config(self) -> DetectorConfig:
        from .core.detector import DetectorConfig

        return DetectorConfig(depth=self.depth, width=self.width)

    def loss_weights(self) -> LossWeights:
        return LossWeights(**self.loss)

    def detection_loss_weights(self) -> DetectionLossWeights:
        return DetectionLossWeights(**self.detection_loss)

    def validate(self) -> None:
        """Refuse bad settings in one line each; call after :meth:`fill_defaults`."""
        self._validate_task()
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

    def _validate_task(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"--task {self.task!r}: one of {', '.join(TASKS)}")
        if self.depth is None or self.width is None:
            raise ConfigError("depth and width are unset: call fill_defaults() first")
        if not self.detects:
            if self.artefacts is not None:
                raise ConfigError("--artefacts is for --task detect (the damage detector); "
                                  "inpainting trains on --masks")
            return
        self.detector_config()  # its own limits (depth 1-8) before the size's
        if self.finetune_steps > 0:
            raise ConfigError("--finetune-steps: a detection run has one phase (fine-tuning "
                              "freezes the inpainter's encoder BatchNorm); give --steps only")
        if self.masks is not None or self.mask_params:
            raise ConfigError("--masks and --mask-param are for --task inpaint; the detector "
                              "trains on synthesised damage (see --artefacts)")
        if self.vgg_weights is not None:
            raise ConfigError("--vgg-weights is for --task inpaint; the detector's loss needs "
                              "no VGG-16")
        if not 0.0 <= self.clean_fraction < 1.0:
            raise ConfigError(f"--clean-fraction {self.clean_fraction}: use a share in [0, 1)")
        weights = self.detection_loss_weights()
        if min(weights.bce, weights.dice) < 0 or weights.bce + weights.dice <= 0:
            raise ConfigError("--bce-weight and --dice-weight must be ≥ 0, one of them > 0")
        if weights.positive_weight <= 0:
            raise ConfigError(f"--positive-weight {weights.positive_weight}: must be > 0")

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        data = {"decoder_renorm": "paper", **data}  # runs from before the option used the paper's
        return cls(**{k: v for k, v in data.items() if k in known})
