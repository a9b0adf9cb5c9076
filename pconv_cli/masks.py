"""Irregular hole masks: a seeded generator, hole-area bands and mask-set folders.

Inside pconv a mask is a bool array with **True = valid, False = hole** (the paper's convention);
``imaging`` converts to and from files, where **white (255) = hole**. Every ratio here is the
fraction of hole pixels, counted from the final pixels.

The generator draws random strokes (polylines with round joins), filled circles and ellipse arcs,
then applies the augmentations of the paper (§4.1): random dilation, rotation and crop/rescale.
For generated masks these are applied to the geometry before rasterising (dilating a stroke is
widening it; rotating and zooming move its vertices), which gives the same shapes as the raster
operations without their cost or resampling jaggies. Masks read from files (``--from``) get the
raster versions in ``transform_mask``.

Reproducibility: every mask has its own 63-bit seed, derived from the set seed and the mask's
place in the set (never from a worker or a draw counter), and stored in the manifest; the same
seed, size and parameters give the same pixels whatever the number of worker processes.
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import dataclasses
import io
import json
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

from . import __version__
from .errors import ConfigError, InputError
from .fileio import atomic_write_bytes, atomic_write_text
from .imaging import list_images, load_mask, save_mask, valid_to_hole_file

PAPER_BAND_EDGES: tuple[float, ...] = (0.01, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
MIN_SIZE = 64  # below this a mask set has too few pixels for meaningful bands
DEFAULT_MARGIN = 0.04  # no-border margin as a fraction of the shorter side
MANIFEST = "masks.csv"
RECIPE = "masks.json"
MANIFEST_COLUMNS = ("file", "hole_ratio", "band", "border", "seed", "hole_pixels", "source")
# Bump when the same seed and parameters would give different pixels, so that resuming into
# a folder made by an older generator is refused instead of mixing two generators.
GENERATOR_VERSION = 1
_MAX_GAMMA = 16.0
_BISECTION_STEPS = 8


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class MaskParams:
    """Generator parameters. Ranges are ``(low, high)``, sampled uniformly per mask.

    Lengths are fractions of the image's shorter side, so one set of parameters gives the same
    ratio distribution at every size. The defaults cover hole ratios up to about 0.6.
    """

    strokes: tuple[int, int] = (1, 8)  # polylines per mask
    vertices: tuple[int, int] = (2, 7)  # points per polyline
    segment_length: tuple[float, float] = (0.05, 0.25)
    stroke_width: tuple[float, float] = (0.01, 0.08)
    circles: tuple[int, int] = (0, 4)  # filled circles per mask
    circle_radius: tuple[float, float] = (0.02, 0.1)
    arcs: tuple[int, int] = (0, 2)  # ellipse arcs per mask (drawn with stroke_width)
    arc_radius: tuple[float, float] = (0.05, 0.25)  # semi-axes of an arc's ellipse
    dilation: tuple[float, float] = (0.0, 0.05)  # radius of the dilation disk
    rotation: tuple[float, float] = (-180.0, 180.0)  # degrees
    crop: tuple[float, float] = (0.6, 1.0)  # crop window side / image side, rescaled back

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            lo, hi = getattr(self, f.name)
            if lo > hi:
                raise ConfigError(f"mask parameter {f.name}: low {lo} is above high {hi}")
            if f.name != "rotation" and lo < 0:
                raise ConfigError(f"mask parameter {f.name}: {lo} is negative")
        if self.vertices[0] < 1:
            raise ConfigError("mask parameter vertices: a stroke needs at least 1 vertex")
        if not 0 < self.crop[0] <= self.crop[1] <= 1:
            raise ConfigError(f"mask parameter crop: {self.crop} must lie in (0, 1]")

    def to_dict(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Sequence[float]]) -> MaskParams:
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(data) - set(names)
        if unknown:
            raise ConfigError(f"unknown mask parameters: {', '.join(sorted(unknown))}")
        kwargs = {}
        for name, value in data.items():
            cast = int if isinstance(getattr(cls, name)[0], int) else float
            kwargs[name] = (cast(value[0]), cast(value[1]))
        return cls(**kwargs)


def _size_hw(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def parse_size(text: str, minimum: int = MIN_SIZE) -> tuple[int, int]:
    """An image size as users write it, width first: ``"640x480"`` (or ``640×480``) is 640
    wide and 480 high; ``"512"`` is square. Returns (height, width), the order of numpy
    arrays: (480, 640). Every option that takes a size parses it here (gen-masks, evaluate
    ``--size``, export ``--static``); sides below ``minimum`` are refused."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ConfigError(f"size {text!r}: write N or WxH, for example 512 or 640x480") from None
    if len(values) == 1:
        values *= 2
    if len(values) != 2:
        raise ConfigError(f"size {text!r}: write N or WxH, for example 512 or 640x480")
    w, h = values
    if min(h, w) < minimum:
        raise ConfigError(f"size {text!r}: sides must be at least {minimum} pixels")
    return h, w


def parse_range(text: str, kind: type = float) -> tuple[float, float]:
    """``"0.01,0.06"`` → (0.01, 0.06); a single value ``"3"`` → (3, 3)."""
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [kind(p) for p in parts]
    except ValueError:
        raise ConfigError(f"range {text!r}: write LOW,HIGH or one value") from None
    if len(values) == 1:
        values *= 2
    if len(values) != 2:
        raise ConfigError(f"range {text!r}: write LOW,HIGH or one value")
    return values[0], values[1]


def parse_mask_param(name: str, text: str) -> tuple[float, float]:
    """One generator parameter as gen-masks and train take it: ``LOW,HIGH``, or one value for
    a fixed one. ``name`` is a :class:`MaskParams` field (``stroke-width`` = ``stroke_width``);
    the count fields take whole numbers."""
    names = [f.name for f in dataclasses.fields(MaskParams)]
    key = name.strip().replace("-", "_")
    if key not in names:
        raise ConfigError(f"unknown mask parameter {name!r}; one of {', '.join(names)}")
    kind = int if isinstance(getattr(MaskParams, key)[0], int) else float
    return parse_range(text, kind)


# --------------------------------------------------------------------------- ratios and bands


def hole_ratio(mask: np.ndarray) -> float:
    """Fraction of hole pixels of a library mask (True / 1 = valid, False / 0 = hole)."""
    mask = np.asarray(mask)
    valid = mask if mask.dtype == np.bool_ else mask > 0.5
    return (valid.size - int(np.count_nonzero(valid))) / valid.size


def band_of(ratio: float, edges: Sequence[float] = PAPER_BAND_EDGES) -> int | None:
    """Index of the half-open band ``(edges[i], edges[i+1]]`` holding ``ratio``, or None.

    A ratio exactly on an edge belongs to the band below it: 0.1 is in (0.01, 0.1]. Ratios
    are hole counts over pixel counts, and a correctly rounded division lands on the same
    double as the decimal edge when the two are equal, so plain comparisons are exact here.
    """
    i = bisect.bisect_left(edges, ratio)
    return i - 1 if 1 <= i < len(edges) else None


def _fmt(x: float) -> str:
    return repr(float(x))


def band_label(lo: float, hi: float) -> str:
    """``band_label(0.01, 0.1)`` → ``"(0.01,0.1]"``."""
    return f"({_fmt(lo)},{_fmt(hi)}]"


def parse_bands(text: str) -> tuple[float, ...]:
    """Band edges from ``"paper"`` or a list such as ``"0.05,0.15,0.3"`` (bands (a, b])."""
    if text.strip().lower() == "paper":
        return PAPER_BAND_EDGES
    try:
        edges = tuple(float(p) for p in text.split(","))
    except ValueError:
        raise ConfigError(
            f"bands {text!r}: write 'paper' or increasing edges such as 0.05,0.15,0.3"
        ) from None
    check_edges(edges)
    return edges


def check_edges(edges: Sequence[float]) -> None:
    if len(edges) < 2:
        raise ConfigError(f"bands {list(edges)}: give at least two edges, e.g. 0.1,0.2")
    if not all(0 <= e <= 1 and math.isfinite(e) for e in edges):
        raise ConfigError(f"bands {list(edges)}: edges are hole ratios between 0 and 1")
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if hi <= lo:
            raise ConfigError(
                f"bands: {band_label(lo, hi)} is empty or inverted; edges must increase"
            )


# --------------------------------------------------------------------------- generator


@dataclass
class _Shapes:
    """Hole geometry in source-canvas pixels: round-capped polylines and filled discs."""

    lines: list[tuple[np.ndarray, float]]  # (points k×2 as x, y; width)
    discs: list[tuple[np.ndarray, float]]  # (centre x, y; radius)


def _uniform(rng: np.random.Generator, lo: float, hi: float, gamma: float) -> float:
    # gamma < 1 pushes draws toward ``hi`` (heavier masks), gamma > 1 toward ``lo``.
    return lo + (hi - lo) * rng.random() ** gamma


def _count(rng: np.random.Generator, rng_range: tuple[int, int], gamma: float) -> int:
    lo, hi = rng_range
    return min(hi, lo + int(rng.random() ** gamma * (hi - lo + 1)))


def _sample_shapes(
    rng: np.random.Generator, h: int, w: int, p: MaskParams, gamma: float = 1.0
) -> _Shapes:
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
    return _Shapes(lines, discs)


@dataclass(frozen=True)
class _View:
    """Rotation and crop window: output = centre + R · (source − centre − offset) / scale."""

    matrix: np.ndarray  # 2×2, already divided by the crop scale
    offset: np.ndarray  # added after the matrix
    zoom: float  # 1 / crop scale: how much widths grow


def _sample_view(rng: np.random.Generator, h: int, w: int, p: MaskParams) -> _View:
    theta = math.radians(rng.uniform(*p.rotation))
    scale = rng.uniform(*p.crop)
    centre = np.array([w, h], dtype=np.float64) / 2
    shift = (rng.random(2) * 2 - 1) * (1 - scale) * centre
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    matrix = rot / scale
    return _View(matrix, centre - matrix @ (centre + shift), 1 / scale)


def _rasterise(
    shapes: _Shapes, view: _View, dilation: float, h: int, w: int, margin: int
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
    return _clear_margin(hole, margin)


def _clear_margin(hole: np.ndarray, margin: int) -> np.ndarray:
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
    same mask. About 1–2 ms of CPU at 256² or 512².
    """
    h, w = _size_hw(size)
    p = params or MaskParams()
    side = min(h, w)
    shapes = _sample_shapes(rng, h, w, p)
    view = _sample_view(rng, h, w, p)
    dilation = rng.uniform(*p.dilation) * side
    return ~_rasterise(shapes, view, dilation, h, w, margin)


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
    out_hw = _size_hw(size) if size is not None else valid.shape
    dist, radius_scale = _transformed_distance(rng, np.asarray(valid, bool), out_hw, p)
    dilation = rng.uniform(*p.dilation) * radius_scale
    return ~_clear_margin(dist <= dilation, margin)


def _transformed_distance(
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


# --------------------------------------------------------------------------- steering


@dataclass(frozen=True)
class MaskSample:
    """A mask (True = valid) with its hole ratio, the shape draws it took and its source."""

    valid: np.ndarray
    hole_ratio: float
    draws: int
    source: str = ""


def sample_mask(
    seed: int,
    size: int | Sequence[int],
    params: MaskParams | None = None,
    *,
    band: tuple[float, float] | None = None,
    margin: int = 0,
    sources: Sequence[Path] = (),
    invert: bool = False,
    max_attempts: int = 100,
) -> MaskSample:
    """The mask of a set with manifest seed ``seed``: drawn freely, or landed in ``band``.

    With ``band=(lo, hi)`` the mask is steered into (lo, hi]: each attempt draws new shapes,
    then searches the dilation range for a ratio near a target drawn uniformly in the band;
    attempts that cannot reach the band lean the next draws lighter or heavier. After
    ``max_attempts`` failed attempts a ``ConfigError`` says the band is out of reach. With
    ``sources`` the shapes come from those mask files (one chosen at random per attempt).
    """
    h, w = _size_hw(size)
    p = params or MaskParams()
    rng = np.random.default_rng(seed)
    if band is None:
        if sources:
            src = sources[int(rng.integers(len(sources)))] if len(sources) > 1 else sources[0]
            valid = transform_mask(rng, load_mask(src, invert=invert), p, size=(h, w),
                                   margin=margin)
            return MaskSample(valid, hole_ratio(valid), 1, str(src))
        valid = generate_mask(rng, (h, w), p, margin=margin)
        return MaskSample(valid, hole_ratio(valid), 1)
    lo, hi = band
    if not 0 <= lo < hi <= 1:
        raise ConfigError(f"band {band_label(lo, hi)} is empty or inverted; edges must increase")
    target = rng.uniform(lo, hi)
    if sources:
        found, draws = _steer_files(rng, (h, w), p, band, target, margin, sources, invert,
                                    max_attempts)
        advice = "widen the band, or use other --from masks or a wider --dilation"
    else:
        found, draws = _steer_shapes(rng, (h, w), p, band, target, margin, max_attempts)
        advice = "widen the band, or raise --strokes, --stroke-width or --dilation"
    if found is None:
        raise ConfigError(
            f"no mask landed in band {band_label(lo, hi)} after {max_attempts} attempts at "
            f"{w}x{h}: the generator cannot reach it; {advice} (or --max-attempts)"
        )
    hole, src = found
    return MaskSample(~hole, _ratio_of_holes(hole), draws, src)


def _ratio_of_holes(hole: np.ndarray) -> float:
    return int(np.count_nonzero(hole)) / hole.size


def _steer_shapes(
    rng: np.random.Generator, hw: tuple[int, int], p: MaskParams, band: tuple[float, float],
    target: float, margin: int, max_attempts: int,
) -> tuple[tuple[np.ndarray, str] | None, int]:
    h, w = hw
    r_range = (p.dilation[0] * min(h, w), p.dilation[1] * min(h, w))
    gamma = 1.0  # how the shape draws lean: below 1 heavier, above 1 lighter
    draws = 0
    for _ in range(max_attempts):
        shapes = _sample_shapes(rng, h, w, p, gamma)
        view = _sample_view(rng, h, w, p)
        search = _DilationSearch(shapes, view, hw, margin, band, target)
        hole, lean = search.run(*r_range)
        draws += search.draws
        if hole is not None:
            return (hole, ""), draws
        gamma = min(max(gamma * 2.0**-lean, 1 / _MAX_GAMMA), _MAX_GAMMA)
    return None, draws


class _DilationSearch:
    """Bisect the dilation radius of fixed shapes toward a target ratio inside a band.

    The hole area only grows with the radius, so the ends of the range tell whether the band
    is reachable with these shapes at all, and which way the next shapes should lean.
    """

    def __init__(self, shapes: _Shapes, view: _View, hw: tuple[int, int], margin: int,
                 band: tuple[float, float], target: float) -> None:
        self.shapes, self.view, self.hw, self.margin = shapes, view, hw, margin
        self.lo, self.hi = band
        self.target = target
        self.close_enough = (self.hi - self.lo) / 4
        self.draws = 0
        self.best: tuple[float, np.ndarray] | None = None

    def _trial(self, radius: float) -> float:
        self.draws += 1
        hole = _rasterise(self.shapes, self.view, radius, *self.hw, self.margin)
        ratio = _ratio_of_holes(hole)
        miss = abs(ratio - self.target)
        if self.lo < ratio <= self.hi and (self.best is None or miss < self.best[0]):
            self.best = (miss, hole)
        return ratio

    def _done(self) -> bool:
        return self.best is not None and self.best[0] <= self.close_enough

    def run(self, r_lo: float, r_hi: float) -> tuple[np.ndarray | None, int]:
        """(holes, 0) on success, else (None, +1 if too light / -1 if too heavy)."""
        if self._trial(r_lo) > self.hi:
            return None, -1
        if not self._done():
            if r_hi > r_lo and self._trial(r_hi) <= self.lo:
                return None, +1
            a, b = r_lo, r_hi
            for _ in range(_BISECTION_STEPS):
                if self._done() or b <= a:
                    break
                mid = (a + b) / 2
                if self._trial(mid) < self.target:
                    a = mid
                else:
                    b = mid
        if self.best is None:  # the range's ends straddle the band but no radius hit it
            return None, +1
        return self.best[1], 0


def _steer_files(
    rng: np.random.Generator, hw: tuple[int, int], p: MaskParams, band: tuple[float, float],
    target: float, margin: int, sources: Sequence[Path], invert: bool, max_attempts: int,
) -> tuple[tuple[np.ndarray, str] | None, int]:
    h, w = hw
    lo, hi = band
    inner = np.zeros(hw, bool)
    inner[margin : h - margin or None, margin : w - margin or None] = True
    for attempt in range(1, max_attempts + 1):
        src = sources[int(rng.integers(len(sources)))]
        dist, radius_scale = _transformed_distance(rng, load_mask(src, invert=invert), hw, p)
        r_lo, r_hi = p.dilation[0] * radius_scale, p.dilation[1] * radius_scale
        d = np.sort(dist[inner], axis=None)
        # The smallest radius whose dilation covers ceil(target · N) pixels, kept in range.
        k = min(len(d), max(1, math.ceil(target * h * w)))
        radius = float(np.clip(d[k - 1], r_lo, r_hi)) if np.isfinite(d[k - 1]) else r_lo
        hole = _clear_margin(dist <= radius, margin)
        if lo < _ratio_of_holes(hole) <= hi:
            return (hole, str(src)), attempt
    return None, max_attempts


# --------------------------------------------------------------------------- mask sets

MASK_SHAPES = ("strokes", "thin")


@dataclass(frozen=True)
class MaskSetSpec:
    """Everything that decides the masks of a set folder (see ``write_mask_set``).

    Exactly one of ``count`` (masks with the generator's own ratio distribution) and
    ``per_band`` (that many masks in each band of ``edges``) is set; with ``source`` and
    neither, each source file is transformed once. ``borders`` lists the sets to make: True
    lets holes touch the image edge, False keeps ``margin`` pixels hole-free (default: 4 % of
    the shorter side); two entries make ``border/`` and ``no-border/`` sub-folders.
    """

    size: tuple[int, int] = (512, 512)  # (height, width)
    params: MaskParams = field(default_factory=MaskParams)
    seed: int = 0
    count: int | None = None
    per_band: int | None = None
    edges: tuple[float, ...] = PAPER_BAND_EDGES
    borders: tuple[bool, ...] = (True,)
    margin: int | None = None
    source: Path | None = None
    invert: bool = False
    max_attempts: int = 100
    shape: str = "strokes"
    artefacts: Path | None = None

    def resolved_margin(self) -> int:
        if self.margin is not None:
            return self.margin
        return max(1, round(DEFAULT_MARGIN * min(self.size)))

    def recipe(self) -> dict:
        """The settings that decide each file's pixels (not how many files there are).

        A folder can be resumed or extended only with the same recipe. Bands decide pixels
        only in banded sets; elsewhere they just label the manifest.
        """
        banded = self.per_band is not None
        return {
            "generator": GENERATOR_VERSION,
            "size": {"height": self.size[0], "width": self.size[1]},
            "seed": self.seed,
            "mode": "per-band" if banded else "count",
            "bands": [_fmt(e) for e in self.edges] if banded else None,
            "borders": ["border" if b else "no-border" for b in self.borders],
            "margin": self.resolved_margin() if False in self.borders else None,
            "params": self.params.to_dict(),
            "source": str(self.source) if self.source else None,
            "invert": self.invert,
            # Only where they apply, so that stroke sets made before they existed still match.
            **({"shape": self.shape, "thin": _thin_params(self).to_dict(),
                "damage_generator": _damage_generator_version()}
               if self.shape == "thin" else {}),
        }


def _check_spec(spec: MaskSetSpec) -> None:
    h, w = spec.size
    if min(h, w) < MIN_SIZE:
        raise ConfigError(f"size {w}x{h}: masks must be at least {MIN_SIZE} pixels on a side")
    if spec.count is not None and spec.per_band is not None:
        raise ConfigError("give either --count or --per-band, not both")
    if spec.count is None and spec.per_band is None and spec.source is None:
        raise ConfigError("say how many masks: --count N, or --per-band N for banded test sets")
    for name in ("count", "per_band"):
        value = getattr(spec, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} {value}: must be at least 1")
    if spec.seed < 0:
        raise ConfigError(f"--seed {spec.seed}: seeds are non-negative integers")
    if spec.max_attempts < 1:
        raise ConfigError("--max-attempts must be at least 1")
    if not spec.borders or len(set(spec.borders)) != len(spec.borders):
        raise ConfigError("borders: give border, no-border or both")
    check_edges(spec.edges)
    if spec.shape not in MASK_SHAPES:
        raise ConfigError(f"--shape {spec.shape}: one of {', '.join(MASK_SHAPES)}")
    if spec.shape == "thin" and (spec.per_band is not None or spec.source is not None):
        raise ConfigError("--shape thin draws its own widths and ratios: use it with --count, "
                          "without --per-band or --from")
    if spec.artefacts is not None and spec.shape != "thin":
        raise ConfigError("--artefacts adds film artefacts to thin masks: use it with "
                          "--shape thin")
    margin = spec.resolved_margin()
    if margin < 0 or 2 * margin >= min(h, w):
        raise ConfigError(f"--margin {margin}: must be between 0 and half the shorter side")


def mask_seed(seed: int, *key: int) -> int:
    """The seed of one mask, from the set seed and the mask's place in the set."""
    state = np.random.SeedSequence([seed, *key]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])  # 63 bits: fits any signed 64-bit reader


@dataclass(frozen=True)
class _Task:
    order: int
    file: str  # relative to the output folder
    seed: int
    border: bool
    band: int | None  # assigned band (per-band sets) or None (drawn freely)
    source: int | None  # index into the source list; None: random per attempt


def _set_folder(spec: MaskSetSpec, border: bool) -> str:
    if len(spec.borders) == 1:
        return ""
    return "border/" if border else "no-border/"


def _tasks(spec: MaskSetSpec, n_sources: int) -> list[_Task]:
    tasks: list[_Task] = []
    for border in spec.borders:
        folder = _set_folder(spec, border)
        if spec.per_band is not None:
            for b in range(len(spec.edges) - 1):
                for i in range(spec.per_band):
                    tasks.append(_Task(
                        len(tasks), f"{folder}band{b + 1}_{i:05d}.png",
                        mask_seed(spec.seed, 1, int(border), b, i), border, b, None,
                    ))
        else:
            count = spec.count if spec.count is not None else n_sources
            for i in range(count):
                tasks.append(_Task(
                    len(tasks), f"{folder}{i:06d}.png", mask_seed(spec.seed, 0, int(border), i),
                    border, None, i % n_sources if n_sources else None,
                ))
    return tasks


@dataclass(frozen=True)
class ManifestRow:
    """One line of ``masks.csv``; ``path`` is the mask file, resolved against its folder."""

    file: str
    hole_ratio: float
    band: str
    border: bool
    seed: int
    hole_pixels: int
    source: str
    path: Path


@dataclass(frozen=True)
class BandSummary:
    border: bool
    band: str
    count: int
    mean_ratio: float
    min_ratio: float
    max_ratio: float
    draws_per_mask: float


@dataclass(frozen=True)
class MaskSetSummary:
    out_dir: Path
    manifest: Path
    total: int
    generated: int
    skipped: int
    seconds: float
    bands: list[BandSummary]


class _Done(NamedTuple):
    """What a worker reports for one mask file."""

    task: _Task
    holes: int
    ratio: float
    draws: int  # rasterisations it took; 0 for a file kept from an earlier run
    source: str


# Per-process state of a run: set once by the pool initializer (or directly for one worker).
_job: dict = {}


def _init_job(out_dir: Path, spec: MaskSetSpec, sources: list[Path]) -> None:
    _job.update(out_dir=out_dir, spec=spec, sources=sources)


def _run_task(task: _Task) -> _Done:
    out_dir: Path = _job["out_dir"]
    spec: MaskSetSpec = _job["spec"]
    sources: list[Path] = _job["sources"]
    path = out_dir / task.file
    kept = _finished(path, task, spec)
    if kept is not None:
        source = str(sources[task.source]) if task.source is not None else ""
        return _Done(task, kept, kept / (spec.size[0] * spec.size[1]), 0,
                     _source_name(source, spec))
    sample = _sample_for(task, spec, sources)
    save_mask(path, sample.valid, fsync=False)  # one sync for the whole set at the end
    holes = sample.valid.size - int(np.count_nonzero(sample.valid))
    return _Done(task, holes, sample.hole_ratio, sample.draws, _source_name(sample.source, spec))


def _finished(path: Path, task: _Task, spec: MaskSetSpec) -> int | None:
    """Hole count of a file left by an earlier run, or None if it must be (re)made.

    Files are written atomically, so one that exists is complete; it is still measured, and
    a file of the wrong size or outside its band (edited since) is made again.
    """
    if not path.exists():
        return None
    try:
        valid = load_mask(path)
    except InputError:
        return None
    if valid.shape != tuple(spec.size):
        return None
    holes = valid.size - int(np.count_nonzero(valid))
    if task.band is not None and band_of(holes / valid.size, spec.edges) != task.band:
        return None
    return holes


def _source_name(source: str, spec: MaskSetSpec) -> str:
    # Manifests name a source relative to the --from folder (recorded in masks.json), so a
    # set stays valid when the folders move.
    if not source or spec.source is None:
        return source
    return Path(os.path.relpath(source, spec.source)).as_posix()


def _thin_params(spec: MaskSetSpec):  # noqa: ANN202 - the damage package loads lazily
    # Imported here: pconv_cli.damage builds on this module (its seeds are mask_seed's).
    from .damage import ThinHoleParams

    return ThinHoleParams(artefacts=spec.artefacts)


def _damage_generator_version() -> int:
    from .damage import GENERATOR_VERSION

    return GENERATOR_VERSION


def _thin_sample(task: _Task, spec: MaskSetSpec) -> MaskSample:
    """Hairs, specks, scratches and cracks 1–4 px wide (and film artefacts): the damage
    synthesiser's thin kinds, for training fills of thin damage."""
    from .damage import thin_hole_mask

    hole = thin_hole_mask(spec.size, np.random.default_rng(task.seed), _thin_params(spec))
    hole = _clear_margin(hole, 0 if task.border else spec.resolved_margin())
    return MaskSample(~hole, _ratio_of_holes(hole), 1)


def _sample_for(task: _Task, spec: MaskSetSpec, sources: list[Path]) -> MaskSample:
    if spec.shape == "thin":
        return _thin_sample(task, spec)
    band = None if task.band is None else (spec.edges[task.band], spec.edges[task.band + 1])
    task_sources = sources if task.source is None else [sources[task.source]]
    return sample_mask(
        task.seed, spec.size, spec.params, band=band,
        margin=0 if task.border else spec.resolved_margin(), sources=task_sources,
        invert=spec.invert, max_attempts=spec.max_attempts,
    )


def _source_files(spec: MaskSetSpec) -> list[Path]:
    if spec.source is None:
        return []
    if not Path(spec.source).is_dir():
        raise InputError(f"--from {spec.source}: not a folder; point it at a folder of masks")
    files = list_images(spec.source)
    if not files:
        raise InputError(f"{spec.source}: no mask images found; point --from at a mask folder")
    return files


def _cannot_write(out_dir: Path, exc: OSError) -> InputError:
    return InputError(
        f"{out_dir}: cannot write there ({exc.strerror or exc}); choose a writable folder"
    )


def _prepare_folder(out_dir: Path, spec: MaskSetSpec, tasks: list[_Task], overwrite: bool) -> None:
    """Refuse to mix masks of different recipes, and fail early on an unwritable folder."""
    recipe_path = out_dir / RECIPE
    if overwrite:
        _remove_old_set(out_dir, tasks)
    elif recipe_path.exists():
        try:
            old = json.loads(recipe_path.read_text(encoding="utf-8")).get("recipe")
        except (OSError, ValueError, AttributeError):
            old = None
        if old != spec.recipe():
            raise ConfigError(
                f"{out_dir} holds masks made with other settings; choose another folder or "
                "pass --overwrite to replace them"
            )
    elif any((out_dir / t.file).exists() for t in tasks[:1000]):
        raise ConfigError(
            f"{out_dir} already holds mask files not made by pconv gen-masks; choose another "
            "folder or pass --overwrite"
        )
    info = {
        "pconv_version": __version__,
        "recipe": spec.recipe(),
        "count": spec.count,
        "per_band": spec.per_band,
        "bands": [_fmt(e) for e in spec.edges],
        "margin": spec.resolved_margin(),
        "max_attempts": spec.max_attempts,
    }
    try:
        for folder in sorted({str(Path(t.file).parent) for t in tasks}):
            (out_dir / folder).mkdir(parents=True, exist_ok=True)
        atomic_write_text(recipe_path, json.dumps(info, indent=2) + "\n")
    except OSError as exc:
        raise _cannot_write(out_dir, exc) from None


def _remove_old_set(out_dir: Path, tasks: list[_Task]) -> None:
    old_files = [out_dir / t.file for t in tasks]
    for manifest in (out_dir / MANIFEST, *out_dir.glob(f"*/{MANIFEST}")):
        try:
            old_files += [row.path for row in read_manifest(manifest)]
        except InputError:
            pass
    try:
        for path in old_files:
            path.unlink(missing_ok=True)
    except OSError as exc:
        raise _cannot_write(out_dir, exc) from None


def _preflight(spec: MaskSetSpec, sources: list[Path], tasks: list[_Task]) -> None:
    """Try the first mask of every band before writing anything: unreachable bands fail here."""
    seen: set[tuple[bool, int | None]] = set()
    for task in tasks:
        if task.band is not None and (task.border, task.band) not in seen:
            seen.add((task.border, task.band))
            _sample_for(task, spec, sources)


def write_mask_set(
    out_dir: str | os.PathLike,
    spec: MaskSetSpec,
    *,
    workers: int = 1,
    overwrite: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> MaskSetSummary:
    """Generate a mask set into ``out_dir``: PNG files (white = hole) plus the manifest.

    ``masks.csv`` lists file, hole_ratio, band, border, seed, hole_pixels, source (files
    relative to ``out_dir``; with two border sets each sub-folder has its own too) and
    ``masks.json`` the settings. Existing files of the same settings are kept (resume);
    ``overwrite`` replaces them. ``on_progress(done, total)`` is called after each mask.
    The files do not depend on ``workers``.
    """
    _check_spec(spec)
    out_dir = Path(out_dir)
    sources = _source_files(spec)
    tasks = _tasks(spec, len(sources))
    _preflight(spec, sources, tasks)
    previous = _previous_sources(out_dir) if spec.source is not None and not overwrite else {}
    _prepare_folder(out_dir, spec, tasks, overwrite)

    start = time.perf_counter()
    results: list[_Done] = []
    try:
        for done in _run_all(out_dir, spec, sources, tasks, workers):
            results.append(done)
            if on_progress is not None:
                on_progress(len(results), len(tasks))
        if hasattr(os, "sync"):
            os.sync()  # masks were written without fsync; make them durable before the manifest
        results.sort(key=lambda r: r.task.order)
        results = [r._replace(source=r.source or previous.get(r.task.file, "")) for r in results]
        manifest = _write_manifests(out_dir, spec, results)
    except OSError as exc:
        raise _cannot_write(out_dir, exc) from None
    return _summarise(out_dir, manifest, spec, results, time.perf_counter() - start)


def _previous_sources(out_dir: Path) -> dict[str, str]:
    # A kept file drawn from a random source no longer knows which: the old manifest does.
    try:
        return {row.file: row.source for row in read_manifest(out_dir)}
    except InputError:
        return {}


def _run_all(
    out_dir: Path, spec: MaskSetSpec, sources: list[Path], tasks: list[_Task], workers: int
) -> Iterator[_Done]:
    workers = max(1, min(workers, len(tasks) // 16 or 1))  # tiny sets: a pool costs more
    if workers == 1:
        _init_job(out_dir, spec, sources)
        yield from map(_run_task, tasks)
        return
    # Not fork: the caller may be running threads (a progress display) that fork would copy
    # mid-flight. A fork server starts clean and forks cheaply from there.
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])  # import once in the server, not per worker
    else:
        ctx = multiprocessing.get_context("spawn")
    chunk = max(1, min(32, len(tasks) // (workers * 8)))
    with _main_not_rerun():
        pool = ctx.Pool(workers, _init_job, (out_dir, spec, sources))
    with pool:
        yield from pool.imap_unordered(_run_task, tasks, chunksize=chunk)


@contextlib.contextmanager
def _main_not_rerun() -> Iterator[None]:
    """Start workers without importing the caller's ``__main__`` again in each of them.

    Spawned and fork-server workers re-import the main script so that functions defined there
    can be found; these workers need only this module, and the ``pconv`` entry script imports
    the whole CLI (torch included), which costs seconds per worker.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.update(saved)


def _manifest_line(done: _Done, file: str, spec: MaskSetSpec) -> list[str]:
    band = band_of(done.ratio, spec.edges)
    label = "" if band is None else band_label(spec.edges[band], spec.edges[band + 1])
    border = "true" if done.task.border else "false"
    return [file, _fmt(done.ratio), label, border, str(done.task.seed), str(done.holes),
            done.source]


def _csv_text(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    writer.writerows(rows)
    return buf.getvalue()


def _write_manifests(out_dir: Path, spec: MaskSetSpec, results: list[_Done]) -> Path:
    rows = []
    per_set: dict[str, list[list[str]]] = {}
    for done in results:
        rows.append(_manifest_line(done, done.task.file, spec))
        folder = _set_folder(spec, done.task.border)
        if folder:
            local = done.task.file[len(folder):]
            per_set.setdefault(folder, []).append(_manifest_line(done, local, spec))
    for folder, lines in per_set.items():
        atomic_write_text(out_dir / folder / MANIFEST, _csv_text(lines))
    manifest = out_dir / MANIFEST
    atomic_write_text(manifest, _csv_text(rows))
    return manifest


def _summarise(
    out_dir: Path, manifest: Path, spec: MaskSetSpec, results: list[_Done], seconds: float
) -> MaskSetSummary:
    groups: dict[tuple[bool, str], list[_Done]] = {}
    for done in results:
        band = band_of(done.ratio, spec.edges)
        label = "-" if band is None else band_label(spec.edges[band], spec.edges[band + 1])
        groups.setdefault((done.task.border, label), []).append(done)
    bands = []
    for (border, label), items in groups.items():
        ratios = [d.ratio for d in items]
        made = [d.draws for d in items if d.draws > 0]
        bands.append(BandSummary(
            border, label, len(items), float(np.mean(ratios)), min(ratios), max(ratios),
            float(np.mean(made)) if made else 0.0,
        ))
    bands.sort(key=lambda b: (not b.border, b.band == "-", b.min_ratio))
    kept = sum(1 for d in results if d.draws == 0)
    return MaskSetSummary(out_dir, manifest, len(results), len(results) - kept, kept, seconds,
                          bands)


def read_manifest(folder: str | os.PathLike) -> list[ManifestRow]:
    """The rows of ``folder/masks.csv`` (``folder`` may also be the CSV file itself)."""
    path = Path(folder)
    if path.is_dir():
        path = path / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no mask manifest; make the set with pconv gen-masks") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = {"file", "hole_ratio", "band", "border", "seed"} - set(reader.fieldnames or ())
    if missing:
        raise InputError(f"{path}: manifest lacks columns {', '.join(sorted(missing))}")
    rows = []
    for line in reader:
        try:
            rows.append(ManifestRow(
                file=line["file"],
                hole_ratio=float(line["hole_ratio"]),
                band=line["band"],
                border=line["border"].strip().lower() in ("true", "1", "yes", "border"),
                seed=int(line["seed"]) if line["seed"] else 0,
                hole_pixels=int(line.get("hole_pixels") or -1),
                source=line.get("source") or "",
                path=path.parent / line["file"],
            ))
        except (TypeError, ValueError):
            raise InputError(f"{path}: line {reader.line_num} is malformed") from None
    return rows


# --------------------------------------------------------------------------- preview


def preview_sheet(
    path: str | os.PathLike, spec: MaskSetSpec, *, count: int = 24, thumb: int = 128
) -> list[tuple[str, float]]:
    """Write a contact sheet of the first masks of each band/set, labelled with their ratios.

    Nothing else is written. Returns (file name the mask would get, ratio) per thumbnail.
    Without ``count`` or ``per_band`` in the spec (the sheet is often the first look, before
    deciding on a set), it shows the banded set: ``count`` masks spread over the bands.
    """
    if spec.count is None and spec.per_band is None and spec.source is None:
        groups = (len(spec.edges) - 1) * len(spec.borders)
        spec = dataclasses.replace(spec, per_band=max(1, math.ceil(count / max(1, groups))))
    _check_spec(spec)
    sources = _source_files(spec)
    tasks = _tasks(spec, len(sources))
    groups: dict[tuple[bool, int | None], list[_Task]] = {}
    for task in tasks:
        groups.setdefault((task.border, task.band), []).append(task)
    per_group = max(1, math.ceil(count / len(groups)))
    picked = [t for group in groups.values() for t in group[:per_group]][:max(count, len(groups))]

    h, w = spec.size
    tw, th = (thumb, max(1, round(thumb * h / w))) if w >= h else (max(1, round(thumb * w / h)),
                                                                   thumb)
    label_h = 14
    cols = min(len(picked), per_group if spec.per_band is not None else 8) or 1
    cols = max(cols, min(len(picked), 6))
    rows = math.ceil(len(picked) / cols)
    pad = 4
    sheet = Image.new("L", (cols * (tw + pad) + pad, rows * (th + label_h + pad) + pad), 96)
    draw = ImageDraw.Draw(sheet)
    out = []
    for k, task in enumerate(picked):
        sample = _sample_for(task, spec, sources)
        tile = Image.fromarray(valid_to_hole_file(sample.valid)).resize((tw, th), Image.BOX)
        x = pad + (k % cols) * (tw + pad)
        y = pad + (k // cols) * (th + label_h + pad)
        sheet.paste(tile, (x, y))
        border = "" if task.border else " nb"
        draw.text((x + 2, y + th + 1), f"{sample.hole_ratio:.3f}{border}", fill=255)
        out.append((task.file, sample.hole_ratio))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError as exc:
        raise InputError(f"{path}: cannot write the preview ({exc.strerror or exc})") from None
    return out
