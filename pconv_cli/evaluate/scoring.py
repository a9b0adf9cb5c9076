"""Scoring one output: the composite and its scores (:mod:`pconv_cli.metrics`).

A method's output becomes the composite here (known pixels pasted back from the truth) and is
scored against the truth over the whole image, over the hole pixels, and over the hole pixels
of each hole-width group (``metrics.WIDTH_GROUPS``). The task functions run in the runner's
worker processes, so they take and return plain arrays and dicts.
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import ConfigError
from ..inpainter import Inpainter
from ..metrics import WIDTH_GROUPS, hole_scores, hole_width_groups, image_scores
from .loading import hide_holes

WIDTH_LABELS = tuple(label for label, _ in WIDTH_GROUPS)

Scores = dict[str, float]  # metric → value, for one image
WidthScores = dict[str, Scores]  # width group label → hole scores
# (scores, width scores, seconds inside the method, the composite when it is kept)
TaskResult = tuple[Scores, WidthScores, float, np.ndarray | None]


def score_output(
    truth: np.ndarray, valid: np.ndarray, output: np.ndarray,
    widths: np.ndarray | None = None,
) -> tuple[Scores, np.ndarray, WidthScores]:
    """The composite of a method's output with the truth's known pixels, its scores (whole
    image and holes), and its hole scores per width group present (``widths``: the map of
    :func:`metrics.hole_width_groups`, computed here when not given)."""
    output = np.asarray(output, dtype=np.float32)
    if output.shape != truth.shape:
        raise ConfigError(f"a method returned shape {output.shape} for an input of {truth.shape}")
    comp = np.where(valid[..., None], truth, np.clip(output, 0.0, 1.0)).astype(np.float32)
    scores = image_scores(comp, truth)
    scores.update(hole_scores(comp, truth, ~valid))
    if widths is None:
        widths = hole_width_groups(valid)
    by_width = {label: hole_scores(comp, truth, widths == k)
                for k, label in enumerate(WIDTH_LABELS) if (widths == k).any()}
    return scores, comp, by_width


def score_task(truth: np.ndarray, valid: np.ndarray, widths: np.ndarray, output: np.ndarray,
               keep: bool) -> TaskResult:
    """Score a batched method's output for one pair (in a worker)."""
    scores, comp, by_width = score_output(truth, valid, output, widths)
    return scores, by_width, 0.0, comp if keep else None


def inpaint_task(method: Inpainter, truth: np.ndarray, valid: np.ndarray, widths: np.ndarray,
                 keep: bool) -> TaskResult:
    """Run one per-image method on one pair (in a worker) and score it there."""
    masked = hide_holes(truth[None], valid[None])
    start = time.perf_counter()
    output = method.inpaint(masked, valid[None])[0]
    seconds = time.perf_counter() - start
    scores, comp, by_width = score_output(truth, valid, output, widths)
    return scores, by_width, seconds, comp if keep else None
