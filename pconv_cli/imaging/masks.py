"""Mask files: the one place where the file convention meets the library's.

On disk a mask is an image with **white (255) = hole** (as in other inpainting tools); inside
pconv a mask is a bool array with **True = valid, False = hole** (as in the paper).
:func:`hole_file_to_valid` and :func:`valid_to_hole_file` convert between the two, and
:func:`load_mask` and :func:`save_mask` are the only reader and writer of mask files. Also here:
masks painted into a copy of an image, masks from an image's alpha channel, nearest-neighbour
resizing and growing the holes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputError
from ..fileio import atomic_path
from .read import ImageFile, decode_upright, open_image

MASK_THRESHOLD = 128  # grey levels >= this are holes in a white=hole file
# Pillow modes whose pixels hole_file_to_valid takes as they are; others are converted first.
_MASK_MODES = ("L", "1", "I;16", "I;16B", "I;16L", "I", "RGB")
# zlib's run-length strategy: on two-level masks it encodes about twice as fast as the default
# and gives smaller files; any PNG reader decodes it.
_Z_RLE = 3
_PAINT_ROWS = 512  # rows compared at a time: the distances of a 24 MP image are never held


def hole_file_to_valid(pixels: np.ndarray, *, invert: bool = False) -> np.ndarray:
    """Convert mask file pixels (white = hole, or black = hole with ``invert``) to 1 = valid.

    Non-binary masks (anti-aliased, resized) are thresholded at mid-grey; of several channels
    the brightest counts.
    """
    if pixels.ndim == 3:
        pixels = pixels.max(axis=2)
    if pixels.dtype == np.bool_:
        hole = pixels
    elif pixels.dtype == np.uint8:  # the usual file: compared as integers, no float copy
        hole = pixels >= math.ceil(MASK_THRESHOLD)
    else:
        scale = 65535 if pixels.dtype == np.uint16 or pixels.max(initial=0) > 255 else 255
        hole = pixels.astype(np.float32) >= MASK_THRESHOLD / 255.0 * scale
    if invert:
        hole = ~hole
    return ~hole


def valid_to_hole_file(valid: np.ndarray) -> np.ndarray:
    """Convert a library mask (1 / True = valid) to file pixels: uint8, 255 = hole."""
    return np.where(np.asarray(valid) > 0.5, 0, 255).astype(np.uint8)


def load_mask(path: str | os.PathLike, *, invert: bool = False,
              max_pixels: int | None = None, orient: bool = True) -> np.ndarray:
    """A mask file as bool H×W, True = valid (white = hole, or black with ``invert``).

    EXIF orientation is applied, as for images; non-binary masks are thresholded at mid-grey.
    ``max_pixels`` refuses larger files before decoding them (Pillow's own guard without it).
    ``orient=False`` leaves out the orientation step, which a mask written by pconv never
    needs: for readers of many small masks (the training data), for which it is a measurable
    share of the time.
    """
    path = Path(path)
    with open_image(path, max_pixels) as img:
        upright = decode_upright(img, path, "mask", orient=orient)
        if upright.mode in ("RGBA", "LA", "PA", "P"):
            upright = upright.convert("RGBA").convert("RGB")
        elif upright.mode not in _MASK_MODES:
            upright = upright.convert("L")
        return hole_file_to_valid(np.asarray(upright), invert=invert)


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


def parse_color(text: str) -> tuple[int, int, int]:
    """``'#ff00ff'``, ``'ff00ff'``, ``'#f0f'``, ``'magenta'`` or ``'rgb(255,0,255)'`` → RGB."""
    from PIL import ImageColor

    value = text.strip()
    if len(value) in (3, 6) and all(c in "0123456789abcdefABCDEF" for c in value):
        value = "#" + value
    try:
        rgb = ImageColor.getrgb(value)
    except ValueError:
        raise InputError(f"--mask-color {text!r}: not a colour; give it as #rrggbb "
                         "(e.g. #ff00ff) or a name (magenta)") from None
    return int(rgb[0]), int(rgb[1]), int(rgb[2])


def read_painted_mask(path: str | os.PathLike, color: tuple[int, int, int], *,
                      tolerance: float = 40.0, max_pixels: int | None = None) -> np.ndarray:
    """A painted copy of an image as a mask, True = valid: the pixels whose 8-bit RGB
    distance to ``color`` is at most ``tolerance`` are the holes.

    EXIF orientation is applied, as for images. The tolerance takes in the colour drift of a
    lossy format (a JPEG moves a painted magenta by 10–30 and blurs its edges: grow the holes
    a pixel or two to take in the edge).
    """
    path = Path(path)
    with open_image(path, max_pixels) as img:
        upright = decode_upright(img, path, "mask")
        if upright.mode in ("I;16", "I;16B", "I;16L", "I"):
            upright = Image.fromarray((np.asarray(upright, dtype=np.float32) / 257.0).round()
                                      .clip(0, 255).astype(np.uint8))
        rgb = np.asarray(upright.convert("RGB"))
    target = np.asarray(color, dtype=np.int32)
    limit = float(tolerance) ** 2
    valid = np.empty(rgb.shape[:2], dtype=bool)
    for top in range(0, rgb.shape[0], _PAINT_ROWS):
        rows = rgb[top:top + _PAINT_ROWS].astype(np.int32) - target
        valid[top:top + _PAINT_ROWS] = (rows * rows).sum(axis=2) > limit
    return valid


def alpha_mask(image: ImageFile, *, invert: bool = False) -> np.ndarray:
    """Holes where the image is transparent (alpha below half), True = valid."""
    alpha = image.alpha
    if alpha is None:
        raise InputError("no alpha channel to take the mask from")
    full = 65535 if alpha.dtype == np.uint16 else 255
    transparent = alpha.astype(np.float32) < full / 2
    return transparent if invert else ~transparent


def resize_mask(valid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a bool mask to ``size`` (height, width): holes stay binary.

    Each output pixel takes the input pixel under its centre: row ``i`` of ``height`` reads
    row ``floor((i + 0.5) * rows / height)``, exactly (a centre on a pixel boundary takes the
    pixel below or to the right of it). A mask already of that size is returned as it is.
    """
    height, width = size
    if valid.shape == (height, width):
        return valid
    return valid[_nearest(valid.shape[0], height)[:, None], _nearest(valid.shape[1], width)]


def _nearest(source: int, target: int) -> np.ndarray:
    # (2i + 1) · source // (2 · target) is floor((i + 0.5) · source / target) in integers.
    return (2 * np.arange(target, dtype=np.int64) + 1) * source // (2 * target)


def grow_holes(valid: np.ndarray, pixels: int) -> np.ndarray:
    """Holes grown by ``pixels``: every pixel within that Euclidean distance of a hole becomes
    one. Damage painted into a JPEG leaves a faint halo of its colour just outside a tight
    mask; growing the mask hands the halo to the inpainter too."""
    if pixels <= 0:
        return valid
    from scipy import ndimage

    offsets = np.arange(-pixels, pixels + 1)
    disc = offsets[:, None] ** 2 + offsets[None, :] ** 2 <= pixels * pixels
    return ~ndimage.binary_dilation(~valid, structure=disc)
