"""Sampling one mask of a set, freely or steered into a hole-ratio band.

Steering keeps the generator's shapes and searches only the dilation radius: the hole area
grows with the radius, so a bisection finds a ratio inside the band when these shapes can reach
it, and the ends of the range say which way the next shapes should lean when they cannot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..imaging import load_mask
from .bands import band_label, hole_ratio, ratio_of_holes
from .generator import (
    Shapes,
    View,
    clear_margin,
    generate_mask,
    rasterise,
    sample_shapes,
    sample_view,
    transform_mask,
    transformed_distance,
)
from .params import MaskParams, size_hw

_MAX_GAMMA = 16.0
_BISECTION_STEPS = 8


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
    h, w = size_hw(size)
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
    return MaskSample(~hole, ratio_of_holes(hole), draws, src)


def _steer_shapes(
    rng: np.random.Generator, hw: tuple[int, int], p: MaskParams, band: tuple[float, float],
    target: float, margin: int, max_attempts: int,
) -> tuple[tuple[np.ndarray, str] | None, int]:
    h, w = hw
    r_range = (p.dilation[0] * min(h, w), p.dilation[1] * min(h, w))
    gamma = 1.0  # how the shape draws lean: below 1 heavier, above 1 lighter
    draws = 0
    for _ in range(max_attempts):
        shapes = sample_shapes(rng, h, w, p, gamma)
        view = sample_view(rng, h, w, p)
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

    def __init__(self, shapes: Shapes, view: View, hw: tuple[int, int], margin: int,
                 band: tuple[float, float], target: float) -> None:
        self.shapes, self.view, self.hw, self.margin = shapes, view, hw, margin
        self.lo, self.hi = band
        self.target = target
        self.close_enough = (self.hi - self.lo) / 4
        self.draws = 0
        self.best: tuple[float, np.ndarray] | None = None

    def _trial(self, radius: float) -> float:
        self.draws += 1
        hole = rasterise(self.shapes, self.view, radius, *self.hw, self.margin)
        ratio = ratio_of_holes(hole)
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
        dist, radius_scale = transformed_distance(rng, load_mask(src, invert=invert), hw, p)
        r_lo, r_hi = p.dilation[0] * radius_scale, p.dilation[1] * radius_scale
        d = np.sort(dist[inner], axis=None)
        # The smallest radius whose dilation covers ceil(target · N) pixels, kept in range.
        k = min(len(d), max(1, math.ceil(target * h * w)))
        radius = float(np.clip(d[k - 1], r_lo, r_hi)) if np.isfinite(d[k - 1]) else r_lo
        hole = clear_margin(dist <= radius, margin)
        if lo < ratio_of_holes(hole) <= hi:
            return (hole, str(src)), attempt
    return None, max_attempts
