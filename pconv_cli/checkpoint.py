"""Self-describing checkpoints: a model is rebuilt from the file alone.

A checkpoint is a plain dict of tensors and built-in types, so it loads with
``torch.load(weights_only=True)``; anything needing code to unpickle is refused.

    {"format": "pconv-checkpoint", "format_version": 1, "pconv_version": "0.1.0",
     "model_kind": "inpainter" | "detector",
     "model_config": {...UNetConfig or DetectorConfig...}, "model": state_dict,
     "train": {...optional: step, phase, optimizer, scaler, rng, config, ema_model...}}

``model_kind`` says which network the file holds: the inpainting U-Net (``PConvUNet``, the
default for files written before detectors existed) or the damage detector
(``DamageDetector``). Commands that need one kind refuse the other in one line.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .core import PConvUNet, UNetConfig
from .core.detector import DamageDetector, DetectorConfig
from .errors import CheckpointError, ConfigError, describe_exception
from .fileio import atomic_path

FORMAT = "pconv-checkpoint"
FORMAT_VERSION = 1
INPAINTER, DETECTOR = "inpainter", "detector"
MODEL_KINDS = {INPAINTER: (UNetConfig, PConvUNet), DETECTOR: (DetectorConfig, DamageDetector)}
WHAT_KIND_DOES = {INPAINTER: "an inpainting model (fills holes)",
                  DETECTOR: "a damage detector (finds holes)"}


@dataclass
class Checkpoint:
    model_config: UNetConfig | DetectorConfig
    model_state: dict[str, torch.Tensor]
    train: dict[str, Any] = field(default_factory=dict)
    pconv_version: str = __version__

    @property
    def kind(self) -> str:
        """``"inpainter"`` or ``"detector"``: which network the weights belong to."""
        return DETECTOR if isinstance(self.model_config, DetectorConfig) else INPAINTER

    def expect(self, kind: str, path: str | os.PathLike) -> Checkpoint:
        """This checkpoint if it holds a ``kind`` model; else one clear error naming both."""
        if self.kind != kind:
            raise CheckpointError(f"{path} holds {WHAT_KIND_DOES[self.kind]}, but "
                                  f"{WHAT_KIND_DOES[kind]} is needed here")
        return self

    @property
    def inference_state(self) -> dict[str, torch.Tensor]:
        """The weights to run: the run's weight average where it kept one (``--ema-decay``),
        else ``model_state``. Training resumes from ``model_state`` itself."""
        return self.train.get("ema_model") or self.model_state

    def build_model(self, device: str | torch.device = "cpu") -> PConvUNet | DamageDetector:
        """The network with :attr:`inference_state`, in eval mode, in fp32."""
        model = MODEL_KINDS[self.kind][1](self.model_config)
        state = {k: v.float() if v.is_floating_point() else v
                 for k, v in self.inference_state.items()}
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(
                f"checkpoint weights do not fit its model config: {describe_exception(exc)}"
            ) from None
        return model.to(device).eval()


def save_checkpoint(
    path: str | os.PathLike,
    model_config: UNetConfig | DetectorConfig,
    model_state: dict[str, torch.Tensor],
    *,
    train: dict[str, Any] | None = None,
    half: bool = False,
) -> None:
    """Write a checkpoint atomically (a crash at any moment leaves the old file loadable).

    ``half`` stores floating-point weights as fp16 (for bundling; loaded back as fp32).
    """
    state = {
        k: (v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu())
        for k, v in model_state.items()
    }
    if half:
        # A value beyond fp16's range (65504) would become inf and silently break the model.
        overflowed = [
            k for k, v in state.items()
            if v.is_floating_point() and not bool(torch.isfinite(v).all())
            and bool(torch.isfinite(model_state[k]).all())
        ]
        if overflowed:
            raise CheckpointError(
                f"{overflowed[0]} has values beyond the fp16 range (65504); keep this "
                "checkpoint in fp32"
            )
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "pconv_version": __version__,
        "model_kind": DETECTOR if isinstance(model_config, DetectorConfig) else INPAINTER,
        "model_config": model_config.to_dict(),
        "model": state,
        "train": train or {},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch.load fails in many ways on damaged files
        detail = describe_exception(exc)
        # The restricted unpickler names the global it blocked; anything else is damage.
        if isinstance(exc, pickle.UnpicklingError) and "global" in detail.lower():
            raise CheckpointError(
                f"{path}: refused to load: the file contains objects other than tensors and "
                f"plain data ({detail}); pconv only loads its own checkpoints"
            ) from None
        raise CheckpointError(
            f"{path}: truncated, corrupt or not a checkpoint ({detail})"
        ) from None
    return _from_payload(path, payload)


def _from_payload(path: Path, payload: Any) -> Checkpoint:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a pconv checkpoint")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {version!r} is newer than this pconv understands "
            f"({FORMAT_VERSION}); upgrade pconv"
        )
    kind = payload.get("model_kind", INPAINTER)  # files from before detectors: inpainters
    if kind not in MODEL_KINDS:
        raise CheckpointError(f"{path}: holds a {kind!r} model, which this pconv does not know; "
                              "upgrade pconv")
    try:
        config = MODEL_KINDS[kind][0].from_dict(payload["model_config"])
    except (ConfigError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{path}: invalid model config ({exc})") from None
    state = payload.get("model")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: checkpoint has no model weights")
    return Checkpoint(
        model_config=config,
        model_state=state,
        train=payload.get("train") or {},
        pconv_version=str(payload.get("pconv_version", "?")),
    )


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> PConvUNet:
    """Rebuild an inpainting model, in eval mode, from a checkpoint file alone."""
    return load_checkpoint(path).expect(INPAINTER, path).build_model(device)


def load_detector(path: str | os.PathLike, device: str | torch.device = "cpu"
                  ) -> DamageDetector:
    """Rebuild a damage detector, in eval mode, from a checkpoint file alone."""
    return load_checkpoint(path).expect(DETECTOR, path).build_model(device)
