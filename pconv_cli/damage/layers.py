"""Damage layers and how they are laid onto an image, with the exact mask of what changed.

A layer moves each pixel toward a target ``image * mul + add`` by its alpha:
``out = image + alpha * (target - image)``. Painting a colour is ``mul = 0, add = colour``;
staining (foxing, tape) is ``mul = tint, add = 0``. ``mul`` and ``add`` are RGB triples or
per-pixel h×w×3 arrays the size of the alpha patch.

The mask is exact by construction: a layer is applied only where its alpha is above the
threshold **and** the change it would make is visible (at least ``visible`` in some channel);
nowhere else is a pixel touched. So a white hair over a white sky marks nothing, and the soft
rim of a foxing spot is marked only as far as it shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import Patch

ONE_LEVEL = 1 / 255  # the smallest change an 8-bit image can show
# Changes smaller than this are not counted as damage for soft stains (foxing, mould, tape,
# crease shading): about 5 grey levels, where a careful eye starts to see a blotch.
SOFT_VISIBLE = 0.02


@dataclass(frozen=True)
class Layer:
    patch: Patch
    mul: np.ndarray  # RGB (3,) or h×w×3 float32
    add: np.ndarray  # RGB (3,) or h×w×3 float32
    visible: float = ONE_LEVEL  # a smaller change is not damage: not applied, not marked


def paint(patch: Patch, colour, visible: float = ONE_LEVEL) -> Layer:
    """Cover with ``colour`` (RGB, or per pixel) at the patch's alpha."""
    return Layer(patch, np.zeros(3, np.float32), np.asarray(colour, np.float32), visible)


def stain(patch: Patch, tint, visible: float = ONE_LEVEL) -> Layer:
    """Multiply by ``tint`` (a filter or a dye soaked into the paper) at the patch's alpha."""
    return Layer(patch, np.asarray(tint, np.float32), np.zeros(3, np.float32), visible)


def _window(layer: Layer, h: int, w: int):
    """The part of the layer on the image: image slices and patch slices, or None."""
    top, left, alpha = layer.patch
    ph, pw = alpha.shape
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + ph, h), min(left + pw, w)
    if y0 >= y1 or x0 >= x1:
        return None
    image_part = (slice(y0, y1), slice(x0, x1))
    patch_part = (slice(y0 - top, y1 - top), slice(x0 - left, x1 - left))
    return image_part, patch_part


def _part(value: np.ndarray, patch_part) -> np.ndarray:
    return value[patch_part] if value.ndim == 3 else value


def apply_layers(
    image: np.ndarray, layers: list[Layer], threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """(damaged copy of ``image``, hole mask: True exactly where a pixel changed).

    ``threshold`` binarises the soft alphas: a pixel with alpha at or below it is untouched.
    """
    image = image.astype(np.float32, copy=False)
    out = image.copy()
    h, w = out.shape[:2]
    hole = np.zeros((h, w), dtype=bool)
    for layer in layers:
        window = _window(layer, h, w)
        if window is None:
            continue
        image_part, patch_part = window
        alpha = layer.patch.alpha[patch_part]
        covered = alpha > threshold
        if not covered.any():
            continue
        region = out[image_part]  # a view: writing to it writes the image
        pixels = region[covered]
        a = alpha[covered][:, None]
        mul = _part(layer.mul, patch_part)
        add = _part(layer.add, patch_part)
        mul = mul[covered] if mul.ndim == 3 else mul
        add = add[covered] if add.ndim == 3 else add
        target = np.clip(pixels * mul + add, 0.0, 1.0)
        change = a * (target - pixels)
        shows = np.abs(change).max(axis=1) >= layer.visible
        rows, cols = np.nonzero(covered)
        rows, cols = rows[shows], cols[shows]
        region[rows, cols] = np.clip(pixels[shows] + change[shows], 0.0, 1.0)
        hole[image_part][rows, cols] = True
    # A later layer may put a pixel back exactly as it was: then it is not damaged.
    hole[hole] = (out[hole] != image[hole]).any(axis=-1)
    return out, hole
