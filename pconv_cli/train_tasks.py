"""What a training run learns: the parts of ``pconv train`` that differ between filling holes
(``--task inpaint``) and finding damage (``--task detect``).

The loop in :mod:`pconv_cli.train` is the same for both (run directory, resume, weight
average, signals, mixed precision, DDP); it asks its :class:`Task` for the model, the data,
the loss terms of a batch and the validation scores.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from .checkpoint import DETECTOR, INPAINTER
from .core import InpaintingLoss, PConvUNet, UNetConfig, composite, freeze_encoder_bn
from .core.detector import DamageDetector, DetectionLoss, DetectorConfig
from .train_config import TrainConfig


@dataclass(frozen=True)
class Validation:
    """Scores of one validation (named as :attr:`Task.score_names`) and its sample grid."""

    scores: dict[str, float]
    grid: np.ndarray  # H×W×3 uint8, saved as samples/step_XXXXXX.png


class Task(Protocol):
    """The task-specific side of a run. ``loss_terms`` start with ``"total"``, the term that
    is minimised; ``best_score`` is the score (of ``score_names``) that ``best.pt`` maximises.
    """

    checkpoint_kind: str
    loss_terms: tuple[str, ...]
    score_names: tuple[str, ...]
    best_score: str

    def model_config(self) -> UNetConfig | DetectorConfig: ...
    def build_model(self) -> nn.Module: ...
    def weights_fit(self, saved: UNetConfig | DetectorConfig) -> bool: ...
    def build_loss(self) -> nn.Module: ...
    def training_samples(self, files: list[Path]) -> Dataset: ...
    def load_validation(self, files: list[Path]) -> list[Path]: ...
    def validation_fingerprint(self) -> str: ...
    def notes(self) -> list[str]: ...
    def enter_phase(self, model: nn.Module, phase: str) -> str | None: ...
    def step_losses(self, model: nn.Module, criterion: nn.Module, batch: dict,
                    device: torch.device) -> dict[str, torch.Tensor]: ...
    def validate(self, model: nn.Module, device: torch.device) -> Validation: ...
    def describe(self, scores: dict[str, float]) -> str: ...


def make_task(config: TrainConfig) -> Task:
    return DetectTask(config) if config.detects else InpaintTask(config)


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DDP and/or torch.compile wrapper."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def autocast(device: torch.device, amp: str):
    if amp == "none":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def fingerprint(*tensors: torch.Tensor) -> str:
    digest = hashlib.sha256()
    for t in tensors:
        digest.update(t.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _to_device(tensor: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    tensor = tensor.to(device, non_blocking=True)
    return tensor.contiguous(memory_format=torch.channels_last) if channels_last else tensor


@contextlib.contextmanager
def _eval_mode(model: nn.Module):
    net = unwrap(model)
    was_training = net.training
    net.eval()
    try:
        yield net
    finally:
        net.train(was_training)


def _to_uint8(grid: torch.Tensor) -> np.ndarray:
    return (grid.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Inpainting


def same_weight_shapes(a: UNetConfig, b: UNetConfig) -> bool:
    """Whether the weights of one model load into the other (its decoder_renorm aside)."""
    return dataclasses.replace(a, decoder_renorm=b.decoder_renorm) == b


@torch.no_grad()
def validate_inpainting(
    model: nn.Module, images: torch.Tensor, masks: torch.Tensor, device: torch.device,
    batch_size: int,
) -> tuple[float, float, torch.Tensor]:
    """Mean PSNR / SSIM of the composite over the validation set, and the outputs."""
    from .metrics import psnr, ssim

    with _eval_mode(model) as net:
        outputs = [net(images[i:i + batch_size].to(device), masks[i:i + batch_size].to(device))
                   .clamp(0, 1).float().cpu() for i in range(0, len(images), batch_size)]
    out = torch.cat(outputs)
    comp_np = composite(images, out, masks).permute(0, 2, 3, 1).numpy()
    truth_np = images.permute(0, 2, 3, 1).numpy()
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
    return _to_uint8(torch.cat(rows, dim=1))


class InpaintTask:
    """Fill holes: PConvUNet, the paper's loss, PSNR/SSIM of the composite (best.pt: PSNR)."""

    checkpoint_kind = INPAINTER
    loss_terms = ("total", "valid", "hole", "perceptual", "style_out", "style_comp", "tv")
    score_names = ("psnr", "ssim")
    best_score = "psnr"

    def __init__(self, config: TrainConfig) -> None:
        from .masks import MaskParams

        self.config = config
        self.mask_params = MaskParams(**{k: tuple(v) if isinstance(v, list) else v
                                         for k, v in config.mask_params.items()})

    def model_config(self) -> UNetConfig:
        return self.config.model_config()

    def build_model(self) -> PConvUNet:
        return PConvUNet(self.model_config())

    def weights_fit(self, saved: UNetConfig | DetectorConfig) -> bool:
        return isinstance(saved, UNetConfig) and same_weight_shapes(saved, self.model_config())

    def build_loss(self) -> nn.Module:
        return InpaintingLoss(self.config.loss_weights(), vgg_weights=self.config.vgg_weights)

    def training_samples(self, files: list[Path]) -> Dataset:
        from .data import MaskSource, TrainingSamples

        masks = MaskSource.from_folder(self.config.masks, self.mask_params)
        return TrainingSamples(files, self.config.size, masks, self.config.seed)

    def load_validation(self, files: list[Path]) -> list[Path]:
        from .data import load_validation_set

        self.images, self.masks, used = load_validation_set(
            files, self.config.size, self.mask_params, self.config.seed)
        self.bands = len(self.images) // len(used)
        return used

    def validation_fingerprint(self) -> str:
        return fingerprint(self.images, self.masks)

    def notes(self) -> list[str]:
        notes = [f"validation: each image × {self.bands} hole-ratio bands"]
        if not self.config.loss_weights().needs_vgg:
            notes.append("pixel losses only (perceptual and style weights 0): no VGG-16")
        return notes

    def enter_phase(self, model: nn.Module, phase: str) -> str | None:
        if phase != "finetune":
            return None
        freeze_encoder_bn(model)
        return f"fine-tuning at lr {self.config.finetune_lr:g}, encoder BatchNorm frozen"

    def step_losses(self, model: nn.Module, criterion: nn.Module, batch: dict,
                    device: torch.device) -> dict[str, torch.Tensor]:
        image = _to_device(batch["image"], device, self.config.channels_last)
        mask = _to_device(batch["mask"], device, self.config.channels_last)
        with autocast(device, self.config.amp):
            output = model(image, mask)
        return criterion(output.float(), image, mask)

    def validate(self, model: nn.Module, device: torch.device) -> Validation:
        psnr, ssim, outputs = validate_inpainting(model, self.images, self.masks, device,
                                                  self.config.batch_size)
        grid = sample_grid(self.images[:4], self.masks[:4], outputs[:4])
        return Validation({"psnr": psnr, "ssim": ssim}, grid)

    def describe(self, scores: dict[str, float]) -> str:
        return f"val {scores['psnr']:.2f} dB / {scores['ssim']:.4f}"


# ---------------------------------------------------------------------------------------------
# Damage detection

DETECTION_THRESHOLD = 0.5  # the probability above which a pixel is scored as damage
DETECTION_TOLERANCE = 1  # px: the tolerant F1 (what best.pt keeps) forgives this much


class DetectTask:
    """Find damage: DamageDetector on clean photos with synthesised damage, BCE + Dice; scored
    by precision, recall, F1, IoU, F1 within 1 px and the share of clean pixels marked."""

    checkpoint_kind = DETECTOR
    loss_terms = ("total", "bce", "dice")
    score_names = ("precision", "recall", "f1", "iou", "f1_tolerant", "clean_marked")
    best_score = "f1_tolerant"

    def __init__(self, config: TrainConfig) -> None:
        from .detection_data import damage_params

        self.config = config
        self.damage = damage_params(config.artefacts)

    def model_config(self) -> DetectorConfig:
        return self.config.detector_config()

    def build_model(self) -> DamageDetector:
        return DamageDetector(self.model_config())

    def weights_fit(self, saved: UNetConfig | DetectorConfig) -> bool:
        return saved == self.model_config()

    def build_loss(self) -> nn.Module:
        return DetectionLoss(self.config.detection_loss_weights())

    def training_samples(self, files: list[Path]) -> Dataset:
        from .detection_data import DetectionSamples

        return DetectionSamples(files, self.config.size, self.damage,
                                self.config.clean_fraction, self.config.seed)

    def load_validation(self, files: list[Path]) -> list[Path]:
        from .detection_data import load_detection_validation_set

        self.val = load_detection_validation_set(files, self.config.size, self.damage,
                                                 self.config.seed)
        return self.val.used

    def validation_fingerprint(self) -> str:
        return fingerprint(self.val.images, self.val.targets)

    def notes(self) -> list[str]:
        from .detection_data import PROCEDURAL_ONLY

        source = ("procedural damage only (no --artefacts, $PCONV_DAMAGE_ARTEFACTS unset)"
                  if self.config.artefacts == PROCEDURAL_ONLY
                  else f"damage: film artefacts from {self.config.artefacts} and procedural")
        return [source, f"{self.config.clean_fraction:g} of the samples left clean",
                "validation: each image damaged (fixed seed) and clean"]

    def enter_phase(self, model: nn.Module, phase: str) -> str | None:
        return None  # one phase (TrainConfig refuses fine-tuning steps)

    def step_losses(self, model: nn.Module, criterion: nn.Module, batch: dict,
                    device: torch.device) -> dict[str, torch.Tensor]:
        image = _to_device(batch["image"], device, self.config.channels_last)
        target = batch["target"].to(device, non_blocking=True)
        with autocast(device, self.config.amp):
            logits = model(image)
        return criterion(logits.float(), target)

    @torch.no_grad()
    def probabilities(self, model: nn.Module, device: torch.device) -> torch.Tensor:
        images, size = self.val.images, self.config.batch_size
        with _eval_mode(model) as net:
            return torch.cat([torch.sigmoid(net(images[i:i + size].to(device)).float()).cpu()
                              for i in range(0, len(images), size)])

    def validate(self, model: nn.Module, device: torch.device) -> Validation:
        from .detection_metrics import MatchCounts, marked_fraction, match_counts

        prob = self.probabilities(model, device)
        predicted = (prob > DETECTION_THRESHOLD)[:, 0].numpy()
        truth = (self.val.targets > 0.5)[:, 0].numpy()
        damaged = [i for i, clean in enumerate(self.val.clean.tolist()) if not clean]
        exact = sum((match_counts(predicted[i], truth[i]) for i in damaged), MatchCounts())
        near = sum((match_counts(predicted[i], truth[i], DETECTION_TOLERANCE) for i in damaged),
                   MatchCounts())
        clean = predicted[self.val.clean.numpy()]
        scores = {"precision": exact.precision, "recall": exact.recall, "f1": exact.f1,
                  "iou": exact.iou, "f1_tolerant": near.f1,
                  "clean_marked": marked_fraction(clean)}
        return Validation(scores, self.sample_grid(prob))

    def sample_grid(self, prob: torch.Tensor) -> np.ndarray:
        """Rows of input | true damage (white) | probability (white = 1), for the first two
        images damaged and clean."""
        val = self.val
        rows = [torch.cat([val.images[i], val.targets[i].expand(3, -1, -1),
                           prob[i].expand(3, -1, -1)], dim=2)
                for i in range(min(4, len(val.images)))]
        return _to_uint8(torch.cat(rows, dim=1))

    def describe(self, scores: dict[str, float]) -> str:
        return (f"val F1±{DETECTION_TOLERANCE}px {scores['f1_tolerant']:.3f} "
                f"(P {scores['precision']:.3f} R {scores['recall']:.3f}, clean marked "
                f"{scores['clean_marked']:.2%})")

