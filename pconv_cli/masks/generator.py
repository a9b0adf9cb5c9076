"""The seeded stroke generator: hole geometry and the paper's augmentations.

The generator draws random strokes (polylines with round joins), filled circles and ellipse arcs,
then applies the augmentations of the paper (§4.1): random dilation, rotation and crop/rescale.
For generated masks these are applied to the geometry before rasterising (dilating a stroke is
widening it; rotating and zooming move its vertices), which gives the same shapes as the raster
operations without their cost or resampling jaggies. Masks read from files (``--from``) get the
raster versions in ``transform_mask``.

Every draw comes from the ``numpy`` generator passed in, in a fixed order: the same generator
state gives the same pixels. The order of draws is part of the output: a change that moves
any pixel for the same seed bumps ``GENERATOR_VERSION``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .params import MaskParams, size_hw

# Bump when the same seed and parameters would give different pixels, so that resuming into
# a folder made by an older generator is refused instead of mixing two generators.
GENERATOR_VERSION = 1


@dataclass
class Shapes:
    """Hole geometry in source-canvas pixels: round-capped polylines and filled discs."""

    lines: list[tuple[np.ndarray, float]]  # (points k×2 as x, y; width)
    discs: list[tuple[np.ndarray, float]]  # (centre x, y; radius)


def _uniform(rng: np.random.Generator, lo: float, hi: float, gamma: float) -> float:
    # gamma < 1 pushes draws toward ``hi`` (heavier masks), gamma > 1 toward ``lo``.
    return lo + (hi - lo) * rng.random() ** gamma


def _count(rng: np.random.Generator, rng_range: tuple[int, int], gamma: float) -> int:
    lo, hi = rng_range
    return min(hi, lo + int(rng.random() ** gamma * (hi - lo + 1)))


def sample_shapes(
    rng: np.random.Generator, h: int, w: int, p: MaskParams, gamma: float = 1.0
) -> Shapes:
    """Strokes, circles and arcs for an h×w canvas; ``gamma`` leans the draws (see steering)."""
    side = min(h, w)
    hi_corner = np.array([w, h], dtype=np.float64)
    lines: list[tuple[np.ndarray, float]] = []
    for _ in range(_count(rng, p.strokes, gamma)):
        n = _count(rng, p.vertices, gamma)
        pts = np.empty((n, 2))
        pts[0] = rng.random(2) * hi_corner
        angle = rng.uniform(0, 2 * np.pi)
        for i in range(1, n):
            angle += rng.uniform(-1.5, 1.5)  # a wandering stroke, not a zigzag
            length = _uniform(rng, *p.segment_length, gamma) * side
            step = length * np.array([np.cos(angle), np.sin(angle)])
            pts[i] = np.clip(pts[i - 1] + step, 0, hi_corner)
        lines.append((pts, _uniform(rng, *p.stroke_width, gamma) * side))
    discs = []
    for _ in range(_count(rng, p.circles, gamma)):
        centre = rng.random(2) * hi_corner
        discs.append((centre, _uniform(rng, *p.circle_radius, gamma) * side))
    for _ in range(_count(rng, p.arcs, gamma)):
        centre = rng.random(2) * hi_corner
        a = _uniform(rng, *p.arc_radius, gamma) * side
        b = _uniform(rng, *p.arc_radius, gamma) * side
        tilt, start = rng.uniform(0, 2 * np.pi, 2)
        sweep = rng.uniform(np.pi / 3, 3 * np.pi / 2)
        t = np.linspace(start, start + sweep, 16)
        ellipse = np.stack([a * np.cos(t), b * np.sin(t)], axis=1)
        rot = np.array([[np.cos(tilt), -np.sin(tilt)], [np.sin(tilt), np.cos(tilt)]])
        lines.append((centre + ellipse @ rot.T, _uniform(rng, *p.stroke_width, gamma) * side))
    return Shapes(lines, discs)


@dataclass(frozen=True)
class View:
    """Rotation and crop window: output = centre + R · (source − centre − offset) / scale."""

    matrix: np.ndarray  # 2×2, already divided by the crop scale
    offset: np.ndarray  # added after the matrix
    zoom: float  # 1 / crop scale: how much widths grow


def sample_view(rng: np.random.Generator, h: int, w: int, p: MaskParams) -> View:
    """A random rotation and crop window, applied to the shapes when they are rasterised."""
    theta = math.radians(rng.uniform(*p.rotation))
    scale = rng.uniform(*p.crop)
    centre = np.array([w, h], dtype=np.float64) / 2
    shift = (rng.random(2) * 2 - 1) * (1 - scale) * centre
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    matrix = rot / scale
    return View(matrix, centre - matrix @ (centre + shift), 1 / scale)


def rasterise(
    shapes: Shapes, view: View, dilation: float, h: int, w: int, margin: int
) -> np.ndarray:
    """Hole pixels (True = hole) of the shapes grown by ``dilation`` source pixels."""
    img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)

    def disc(x: float, y: float, r: float) -> None:
        draw.ellipse((x - r, y - r, x + r, y + r), fill=255)

    for pts, width in shapes.lines:
        q = pts @ view.matrix.T + view.offset
        wq = (width + 2 * dilation) * view.zoom
        if len(q) > 1:
            draw.line([tuple(v) for v in q], fill=255, width=max(1, round(wq)))
        if wq > 2:  # round caps and joins, as a brush would leave
            for x, y in q:
                disc(x, y, wq / 2)
    for centre, radius in shapes.discs:
        x, y = view.matrix @ centre + view.offset
        disc(x, y, (radius + dilation) * view.zoom)
    hole = np.asarray(img) > 0
    return clear_margin(hole, margin)


def clear_margin(hole: np.ndarray, margin: int) -> np.ndarray:
    """``hole`` (True = hole) with ``margin`` pixels at each edge made hole-free."""
    if margin > 0:
        hole = hole.copy() if not hole.flags.writeable else hole
        hole[:margin] = False
        hole[-margin:] = False
        hole[:, :margin] = False
        hole[:, -margin:] = False
    return hole


def generate_mask(
    rng: np.random.Generator,
    size: int | Sequence[int],
    params: MaskParams | None = None,
    *,
    margin: int = 0,
) -> np.ndarray:
    """One random mask as a bool (height, width) array, **True = valid, False = hole**.

    ``size`` is an int (square) or (height, width). ``margin`` > 0 keeps that many pixels at
    each edge free of holes. Draws come only from ``rng``: the same generator state gives the
    same mask.
    """
    h, w = size_hw(size)
    p = params or MaskParams()
    side = min(h, w)
    shapes = sample_shapes(rng, h, w, p)
    view = sample_view(rng, h, w, p)
    dilation = rng.uniform(*p.dilation) * side
    return ~rasterise(shapes, view, dilation, h, w, margin)


def transform_mask(
    rng: np.random.Generator,
    valid: np.ndarray,
    params: MaskParams | None = None,
    *,
    size: int | Sequence[int] | None = None,
    margin: int = 0,
) -> np.ndarray:
    """Randomly dilate, rotate and crop/rescale an existing library mask (True = valid).

    The result has ``size`` (default: the input's) and is binary (nearest resampling). Only
    ``dilation``, ``rotation`` and ``crop`` of ``params`` are used.
    """
    p = params or MaskParams()
    out_hw = size_hw(size) if size is not None else valid.shape
    dist, radius_scale = transformed_distance(rng, np.asarray(valid, bool), out_hw, p)
    dilation = rng.uniform(*p.dilation) * radius_scale
    return ~clear_margin(dist <= dilation, margin)


def transformed_distance(
    rng: np.random.Generator, valid: np.ndarray, out_hw: tuple[int, int], p: MaskParams
) -> tuple[np.ndarray, float]:
    """Distance of each output pixel to the nearest hole after rotation and crop.

    Returns the distance map (0 on holes) and the factor that turns a dilation fraction into
    output pixels. Dilating by r is then just ``dist <= r``, for any r, from one transform.
    """
    from scipy import ndimage  # only masks from files need it; keeps the import light

    hs, ws = valid.shape
    h, w = out_hw
    theta = math.radians(rng.uniform(*p.rotation))
    scale = rng.uniform(*p.crop)
    step = scale * min(hs / h, ws / w)  # source pixels per output pixel
    shift = (rng.random(2) * 2 - 1) * np.array([hs - h * step, ws - w * step]) / 2
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    matrix = rot * step
    src_centre = np.array([hs, ws]) / 2 + shift
    offset = src_centre - matrix @ (np.array([h, w]) / 2)
    hole = ndimage.affine_transform(
        (~valid).view(np.uint8), matrix, offset, output_shape=(h, w), order=0, cval=0
    ).astype(bool)
    if not hole.any():
        dist = np.full((h, w), np.inf)
    else:
        dist = ndimage.distance_transform_edt(~hole)
    return dist, min(hs, ws) / step
