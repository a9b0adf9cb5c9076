"""Hole ratios and the hole-ratio bands that test sets are split into.

A ratio is the fraction of hole pixels, counted from the final pixels of a mask. Bands are
half-open intervals ``(a, b]`` between consecutive edges; the paper's are 1–10 %, 10–20 %, …
50–60 %.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError

PAPER_BAND_EDGES: tuple[float, ...] = (0.01, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)


def hole_ratio(mask: np.ndarray) -> float:
    """Fraction of hole pixels of a library mask (True / 1 = valid, False / 0 = hole)."""
    mask = np.asarray(mask)
    valid = mask if mask.dtype == np.bool_ else mask > 0.5
    return (valid.size - int(np.count_nonzero(valid))) / valid.size


def ratio_of_holes(hole: np.ndarray) -> float:
    """Fraction of True pixels of a bool **hole** array (True = hole), as the generator has."""
    return int(np.count_nonzero(hole)) / hole.size


def band_of(ratio: float, edges: Sequence[float] = PAPER_BAND_EDGES) -> int | None:
    """Index of the half-open band ``(edges[i], edges[i+1]]`` holding ``ratio``, or None.

    A ratio exactly on an edge belongs to the band below it: 0.1 is in (0.01, 0.1]. Ratios
    are hole counts over pixel counts, and a correctly rounded division lands on the same
    double as the decimal edge when the two are equal, so plain comparisons are exact here.
    """
    i = bisect.bisect_left(edges, ratio)
    return i - 1 if 1 <= i < len(edges) else None


def fmt_ratio(x: float) -> str:
    """A ratio or band edge as manifests and recipes write it: the shortest exact decimal."""
    return repr(float(x))


def band_label(lo: float, hi: float) -> str:
    """``band_label(0.01, 0.1)`` → ``"(0.01,0.1]"``."""
    return f"({fmt_ratio(lo)},{fmt_ratio(hi)}]"


def check_edges(edges: Sequence[float]) -> None:
    """Refuse band edges that do not make at least one non-empty band of hole ratios."""
    if len(edges) < 2:
        raise ConfigError(f"bands {list(edges)}: give at least two edges, e.g. 0.1,0.2")
    if not all(0 <= e <= 1 and math.isfinite(e) for e in edges):
        raise ConfigError(f"bands {list(edges)}: edges are hole ratios between 0 and 1")
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if hi <= lo:
            raise ConfigError(
                f"bands: {band_label(lo, hi)} is empty or inverted; edges must increase"
            )
