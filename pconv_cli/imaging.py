"""The file boundary for images and masks.

On disk a mask is an 8-bit image with **white (255) = hole** (as in other inpainting tools).
Inside pconv a mask is **1 = valid, 0 = hole** (as in the paper). This module is the only place
that converts between the two; everything else sees library masks.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError
from .fileio import atomic_path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")
MASK_THRESHOLD = 128  # grey levels >= this are holes in a white=hole file
# ITU-R 601 luma, the weights Pillow uses for RGB → L.
LUMA_601 = np.array([0.299, 0.587, 0.114], dtype=np.float32)
# zlib's run-length strategy: on two-level masks it encodes about twice as fast as the default
# and gives smaller files; any PNG reader decodes it.
_Z_RLE = 3


def is_image_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: str | os.PathLike, *, recursive: bool = True) -> list[Path]:
    """Image files under ``folder`` in a stable (sorted) order; hidden files are ignored."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    pattern = "**/*" if recursive else "*"
    return sorted(
        p
        for p in folder.glob(pattern)
        if p.is_file() and is_image_file(p) and not any(s.startswith(".") for s in p.parts)
    )


def _open(path: Path) -> Image.Image:
    try:
        img = Image.open(path)
        img.load()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except Image.DecompressionBombError:
        raise InputError(f"{path}: image too large (decompression bomb guard)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: cannot decode image ({exc})") from None
    return img


def load_image(path: str | os.PathLike) -> np.ndarray:
    """An RGB image as float32 H×W×3 in [0, 1], EXIF orientation applied."""
    img = ImageOps.exif_transpose(_open(Path(path)))
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float32) / 65535.0
        return np.repeat(np.clip(arr, 0, 1)[..., None], 3, axis=2)
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def hole_file_to_valid(pixels: np.ndarray, *, invert: bool = False) -> np.ndarray:
    """Convert mask file pixels (white = hole, or black = hole with ``invert``) to 1 = valid.

    Non-binary masks (anti-aliased, resized) are thresholded at mid-grey.
    """
    if pixels.ndim == 3:
        pixels = pixels.max(axis=2)
    if pixels.dtype == np.bool_:
        hole = pixels
    else:
        scale = 65535 if pixels.dtype == np.uint16 or pixels.max(initial=0) > 255 else 255
        hole = pixels.astype(np.float32) >= MASK_THRESHOLD / 255.0 * scale
    if invert:
        hole = ~hole
    return ~hole


def valid_to_hole_file(valid: np.ndarray) -> np.ndarray:
    """Convert a library mask (1 / True = valid) to file pixels: uint8, 255 = hole."""
    return np.where(np.asarray(valid) > 0.5, 0, 255).astype(np.uint8)


def load_mask(path: str | os.PathLike, *, invert: bool = False) -> np.ndarray:
    """A mask file as a bool H×W array, True = valid (see the module docstring)."""
    img = _open(Path(path))
    if img.mode in ("RGBA", "LA", "PA"):
        img = img.convert("RGBA").convert("RGB")
    if img.mode not in ("L", "1", "I;16", "I;16B", "I;16L", "I", "RGB"):
        img = img.convert("L")
    return hole_file_to_valid(np.asarray(img), invert=invert)


def save_mask(path: str | os.PathLike, valid: np.ndarray, *, fsync: bool = True) -> None:
    """Write a library mask as an 8-bit single-channel PNG (white = hole), atomically.

    ``fsync=False`` skips the per-file flush, for writers of many masks that sync once at
    the end.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InputError(f"{path}: masks are stored as PNG (lossless); JPEG would blur holes")
    with atomic_path(path, fsync=fsync) as tmp:
        Image.fromarray(valid_to_hole_file(valid), mode="L").save(
            tmp, format="PNG", compress_type=_Z_RLE
        )


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float [0, 1] → uint8 with rounding (not truncation, which darkens by half a level)."""
    return np.clip(np.rint(np.asarray(image) * 255.0), 0, 255).astype(np.uint8)


def save_image(path: str | os.PathLike, image: np.ndarray, **save_kwargs) -> None:
    """Write a float [0, 1] or uint8 H×W×C image atomically, format from the suffix."""
    arr = image if image.dtype == np.uint8 else to_uint8(image)
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format=_pil_format(Path(path)), **save_kwargs)


def _pil_format(path: Path) -> str:
    ext = path.suffix.lower()
    formats = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP",
               ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}
    if ext not in formats:
        raise InputError(f"{path}: unsupported image format {ext!r}")
    return formats[ext]
