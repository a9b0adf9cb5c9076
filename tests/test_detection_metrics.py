"""Detection metrics against a brute-force reference that loops over pixels."""

from __future__ import annotations

import numpy as np
import pytest

from pconv_cli.detection_metrics import MatchCounts, marked_fraction, match_counts
from pconv_cli.errors import InputError


def brute_force_counts(predicted: np.ndarray, truth: np.ndarray, tolerance: int) -> MatchCounts:
    """Each pixel checked against every pixel: the definition, written out."""
    h, w = truth.shape

    def has_within(mask: np.ndarray, y: int, x: int) -> bool:
        return any(mask[v, u] for v in range(h) for u in range(w)
                   if abs(v - y) <= tolerance and abs(u - x) <= tolerance)

    right = sum(1 for y in range(h) for x in range(w)
                if predicted[y, x] and has_within(truth, y, x))
    found = sum(1 for y in range(h) for x in range(w)
                if truth[y, x] and has_within(predicted, y, x))
    return MatchCounts(int(predicted.sum()), int(truth.sum()), right, found)


@pytest.mark.parametrize("tolerance", [0, 1, 2])
@pytest.mark.parametrize("seed", range(6))
def test_counts_match_the_pixel_by_pixel_definition(seed: int, tolerance: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(3, 12)), int(rng.integers(3, 12)))
    predicted = rng.random(shape) < rng.uniform(0.05, 0.4)
    truth = rng.random(shape) < rng.uniform(0.05, 0.4)
    assert match_counts(predicted, truth, tolerance) == brute_force_counts(predicted, truth,
                                                                            tolerance)


def test_scores_follow_from_the_counts() -> None:
    truth = np.zeros((6, 6), bool)
    truth[2, 1:5] = True  # a 4-pixel hair
    predicted = np.zeros((6, 6), bool)
    predicted[3, 1:5] = True  # drawn one row too low
    predicted[0, 0] = True  # and one false alarm far away
    exact = match_counts(predicted, truth)
    assert (exact.precision, exact.recall, exact.f1, exact.iou) == (0.0, 0.0, 0.0, 0.0)
    tolerant = match_counts(predicted, truth, tolerance=1)
    assert tolerant.precision == pytest.approx(4 / 5) and tolerant.recall == 1.0
    assert tolerant.f1 == pytest.approx(2 * 0.8 / 1.8)
    half = match_counts(truth | predicted, truth)
    assert half.precision == pytest.approx(4 / 9) and half.recall == 1.0
    assert half.iou == pytest.approx(4 / 9)


def test_counts_of_several_images_add_up_to_one_pooled_score() -> None:
    rng = np.random.default_rng(7)
    pairs = [(rng.random((8, 8)) < 0.2, rng.random((8, 8)) < 0.2) for _ in range(3)]
    pooled = sum((match_counts(p, t, 1) for p, t in pairs), MatchCounts())
    stacked = match_counts(np.concatenate([np.pad(p, 1) for p, _ in pairs]),
                           np.concatenate([np.pad(t, 1) for _, t in pairs]), 1)
    assert pooled == stacked  # the 1-px padding keeps images from touching


def test_empty_masks_score_as_documented() -> None:
    empty = np.zeros((4, 4), bool)
    nothing = match_counts(empty, empty, 1)
    assert (nothing.precision, nothing.recall, nothing.f1, nothing.iou) == (1.0, 1.0, 1.0, 1.0)
    truth = empty.copy()
    truth[1, 1] = True
    missed = match_counts(empty, truth)
    assert missed.precision == 1.0 and missed.recall == 0.0 and missed.f1 == 0.0
    assert missed.iou == 0.0
    assert marked_fraction(truth) == pytest.approx(1 / 16)


def test_masks_of_different_shapes_are_refused() -> None:
    with pytest.raises(InputError, match="differ in shape"):
        match_counts(np.zeros((3, 3), bool), np.zeros((3, 4), bool))
