"""``--concat``: a small JPEG beside each output, input | mask | result, for checking a large
run by eye without opening full-size images."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..fileio import atomic_path
from ..imaging import ImageFile, model_rgb

PREVIEW_SIDE = 1024  # longest side of each panel of a --concat preview


def _preview_rgb8(pixels: np.ndarray, mode: str, step: int) -> np.ndarray:
    return np.rint(model_rgb(pixels[::step, ::step], mode) * 255).astype(np.uint8)


def write_preview(path: Path, before: ImageFile, valid: np.ndarray, after: ImageFile) -> None:
    """input | mask (white = hole) | result, side by side, each panel at most PREVIEW_SIDE."""
    from PIL import Image

    step = max(1, -(-max(before.height, before.width) // PREVIEW_SIDE))
    left = _preview_rgb8(before.pixels, before.mode, step)
    right = _preview_rgb8(after.pixels, after.mode, step)
    middle = np.repeat(np.where(valid[::step, ::step], 0, 255).astype(np.uint8)[..., None], 3, 2)
    strip = np.concatenate([left, middle, right], axis=1)
    buffer = io.BytesIO()
    Image.fromarray(strip).save(buffer, format="JPEG", quality=90)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
