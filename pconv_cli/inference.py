"""Running a trained model on numpy images: shared by evaluate and restore.

An inpainter takes a batch of same-size images (N×H×W×3 float32 in [0, 1]) and library masks
(N×H×W bool, True = valid) and returns the composite (known pixels are the input's own).
Any size works: inputs are padded to a multiple of 2^depth (the padding counts as hole) and
cropped back.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from .checkpoint import load_checkpoint
from .core import PConvUNet, composite, crop_to, pad_to_multiple
from .devices import resolve_device
from .errors import WeightsUnavailableError

DEFAULT_MODEL_PATH = Path(__file__).parent / "weights" / "default.pt"


def default_model_path() -> Path:
    if not DEFAULT_MODEL_PATH.is_file():
        raise WeightsUnavailableError(
            f"the bundled default model is missing ({DEFAULT_MODEL_PATH.name}); reinstall pconv "
            "or pass --model CKPT"
        )
    return DEFAULT_MODEL_PATH


class Inpainter(Protocol):
    name: str
    multiple: int  # native sizes are multiples of this
    backend: str  # e.g. "torch cpu", "onnxruntime CUDAExecutionProvider"

    def inpaint(self, images: np.ndarray, valid: np.ndarray) -> np.ndarray: ...


class TorchInpainter:
    """A :class:`PConvUNet` in eval mode on one device."""

    def __init__(self, model: PConvUNet, device: str | torch.device = "cpu", name: str = "model"):
        self.device = resolve_device(str(device)) if isinstance(device, str) else device
        self.model = model.to(self.device).eval()
        self.multiple = model.config.multiple
        self.name = name
        self.backend = f"torch {self.device.type}"

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, device: str = "auto", name: str | None = None
    ) -> TorchInpainter:
        model = load_checkpoint(path).build_model("cpu")
        return cls(model, device, name or Path(path).stem)

    @torch.inference_mode()
    def inpaint(self, images: np.ndarray, valid: np.ndarray) -> np.ndarray:
        image = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
        image = image.permute(0, 3, 1, 2).to(self.device)
        mask = torch.from_numpy(np.ascontiguousarray(valid, dtype=np.float32))[:, None]
        mask = mask.to(self.device)
        padded, padded_mask, size = pad_to_multiple(image, mask, self.multiple)
        output = crop_to(self.model(padded, padded_mask), size).clamp(0, 1)
        result = composite(image, output, mask)
        return result.permute(0, 2, 3, 1).cpu().numpy()
