"""Pixel values between files and the model: float [0, 1] and 8- or 16-bit integers, an
image's native colour mode and the model's RGB, and the luma weights for grey."""

from __future__ import annotations

import numpy as np
from PIL import Image

# ITU-R 601 luma, the weights Pillow uses for RGB → L.
LUMA_601 = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def full_scale(dtype: np.dtype) -> float:
    """The value of white in integer pixels of ``dtype`` (uint8 or uint16)."""
    return 65535.0 if dtype == np.uint16 else 255.0


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float [0, 1] → uint8 with rounding (not truncation, which darkens by half a level)."""
    return np.clip(np.rint(np.asarray(image) * 255.0), 0, 255).astype(np.uint8)


def cmyk_to_rgb(pixels: np.ndarray) -> np.ndarray:
    """8-bit CMYK H×W×4 → 8-bit RGB H×W×3 (Pillow's conversion)."""
    rgb = Image.frombytes("CMYK", (pixels.shape[1], pixels.shape[0]),
                          np.ascontiguousarray(pixels).tobytes()).convert("RGB")
    return np.asarray(rgb)


def model_rgb(pixels: np.ndarray, mode: str) -> np.ndarray:
    """Native pixels (any region of an :class:`~pconv_cli.imaging.ImageFile`) → float32 RGB in
    [0, 1]."""
    if mode == "CMYK":
        return cmyk_to_rgb(pixels).astype(np.float32) / 255.0
    color = pixels[..., :1] if mode in ("L", "LA") else pixels[..., :3]
    rgb = color.astype(np.float32) / np.float32(full_scale(pixels.dtype))
    return np.repeat(rgb, 3, axis=2) if rgb.shape[2] == 1 else rgb


def native_color(rgb: np.ndarray, mode: str, dtype: np.dtype) -> np.ndarray:
    """Float RGB in [0, 1] → the colour channels of ``mode`` in ``dtype`` (rounded)."""
    rgb = np.clip(rgb, 0.0, 1.0)
    if mode == "CMYK":
        rgb8 = np.rint(rgb * 255.0).astype(np.uint8)
        cmyk = Image.fromarray(rgb8).convert("CMYK")
        return np.asarray(cmyk)
    if mode in ("L", "LA"):
        rgb = (rgb @ LUMA_601)[..., None]
    return np.rint(rgb * full_scale(dtype)).astype(dtype)
