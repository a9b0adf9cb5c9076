"""Per-image scores gathered into statistics: per band (and border / no-border within it), over
all pairs, per image kind, and per hole-width group (overall and per kind)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..inpainter import Inpainter
from ..metrics import HOLE_METRICS
from .pairs import Pair, PairSet
from .scoring import WIDTH_LABELS, Scores, WidthScores

BASE_METRICS = ("l1", "psnr", "ssim", *HOLE_METRICS)  # LPIPS joins them when asked for
BORDER_NAMES = {False: "no-border", True: "border"}
OVERALL = "overall"


@dataclass
class BandStats:
    """Mean and standard deviation (over images, ddof 0) of each metric in one group."""

    n: int
    mean: dict[str, float]
    std: dict[str, float]
    psnr_infinite: int = 0  # images reconstructed exactly: their PSNR is infinite


def band_stats(scores: Sequence[Scores], metrics: Sequence[str]) -> BandStats:
    mean, std = {}, {}
    for metric in metrics:
        values = np.array([s[metric] for s in scores if metric in s], dtype=np.float64)
        if len(values) == 0:
            mean[metric] = std[metric] = math.nan
        elif np.isinf(values).any():
            # One exact reconstruction makes the mean infinite; a spread is then undefined.
            mean[metric], std[metric] = float(np.mean(values)), math.nan
        else:
            mean[metric], std[metric] = float(np.mean(values)), float(np.std(values))
    # Width groups have only a hole PSNR; elsewhere an exact hole is an exact image.
    infinite = sum(1 for s in scores
                   if math.isinf(s.get("psnr", 0.0)) or math.isinf(s.get("hole_psnr", 0.0)))
    return BandStats(len(scores), mean, std, infinite)


@dataclass
class MethodResult:
    name: str
    backend: str
    source: str
    bands: dict[str, BandStats]
    overall: BandStats
    border_split: dict[str, dict[str, BandStats]]  # "no-border"/"border" → band → stats
    seconds_per_image: float
    kinds: dict[str, BandStats] = field(default_factory=dict)  # image kind → stats
    widths: dict[str, BandStats] = field(default_factory=dict)  # width group → hole stats
    kind_widths: dict[str, dict[str, BandStats]] = field(default_factory=dict)


def method_result(
    method: Inpainter,
    pair_set: PairSet,
    scores: dict[int, Scores],
    width_scores: dict[int, WidthScores],
    seconds_per_image: float,
    metrics: Sequence[str],
) -> MethodResult:
    """One method's statistics from its scores by pair index (the pairs it could score)."""
    pairs = {p.index: p for p in pair_set.pairs}
    # In pair order, so that the sums, and so the last digits, do not depend on scheduling.
    scored = [(pairs[i], s) for i, s in sorted(scores.items())]
    by_width = [(pairs[i], w) for i, w in sorted(width_scores.items())]

    def stats(keep: Callable[[Pair], bool]) -> BandStats:
        return band_stats([s for p, s in scored if keep(p)], metrics)

    def width_stats(label: str, keep: Callable[[Pair], bool]) -> BandStats:
        return band_stats([w[label] for p, w in by_width if keep(p) and label in w],
                          list(HOLE_METRICS))

    labels = pair_set.band_labels
    bands = {label: stats(lambda p, b=b: p.band == b) for b, label in enumerate(labels)}
    border_split = {}
    if pair_set.border_split:
        for flag, kind in BORDER_NAMES.items():
            border_split[kind] = {
                label: stats(lambda p, b=b, f=flag: p.band == b and p.mask.border == f)
                for b, label in enumerate(labels)
            }
    kinds = pair_set.kinds
    return MethodResult(
        method.name, method.backend, method.source,
        bands, stats(lambda p: True), border_split, seconds_per_image,
        kinds={k: stats(lambda p, k=k: p.kind == k) for k in kinds},
        widths={w: width_stats(w, lambda p: True) for w in WIDTH_LABELS},
        kind_widths={k: {w: width_stats(w, lambda p, k=k: p.kind == k) for w in WIDTH_LABELS}
                     for k in kinds},
    )
