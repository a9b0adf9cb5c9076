"""How well a damage mask matches the true one: precision, recall, F1 and IoU, exact or with a
tolerance of a few pixels.

A detector that marks a 2 px hair one pixel to the side has found the hair, but scores
nothing on exact pixel overlap. With ``tolerance`` t, a predicted pixel counts as right if a
true pixel lies within t pixels of it (in x and in y: the (2t+1)² square around it), and a
true pixel as found if a predicted one lies within t of it. With t = 0 both are the exact
overlap.

Counts add up, so a validation set is scored by summing the counts of its images (pooled,
as one large image) rather than averaging per-image scores that are undefined on images
without damage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .errors import ConfigError, InputError


@dataclass(frozen=True)
class MatchCounts:
    """Pixel counts of one comparison (or a sum of several).

    predicted / true: pixels marked in the prediction / in the truth.
    predicted_right: predicted pixels with a true pixel within the tolerance.
    true_found: true pixels with a predicted pixel within the tolerance.
    """

    predicted: int = 0
    true: int = 0
    predicted_right: int = 0
    true_found: int = 0

    def __add__(self, other: MatchCounts) -> MatchCounts:
        return MatchCounts(self.predicted + other.predicted, self.true + other.true,
                           self.predicted_right + other.predicted_right,
                           self.true_found + other.true_found)

    @property
    def precision(self) -> float:
        """Share of predicted pixels that are right; 1 when nothing is predicted (no false
        alarm was raised)."""
        return self.predicted_right / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        """Share of true pixels found; 1 when there is nothing to find."""
        return self.true_found / self.true if self.true else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def iou(self) -> float:
        """Intersection over union (meant for tolerance 0, where right = found = overlap);
        1 when both masks are empty."""
        union = self.predicted + self.true - self.predicted_right
        return self.predicted_right / union if union else 1.0


def _near(mask: np.ndarray, tolerance: int) -> np.ndarray:
    """Pixels with a marked pixel of ``mask`` within ``tolerance`` (Chebyshev distance)."""
    if tolerance == 0 or not mask.any():
        return mask
    square = np.ones((2 * tolerance + 1, 2 * tolerance + 1), dtype=bool)
    return ndimage.binary_dilation(mask, structure=square)


def match_counts(predicted: np.ndarray, truth: np.ndarray, tolerance: int = 0) -> MatchCounts:
    """Compare two bool masks of the same shape (True = damage)."""
    predicted, truth = np.asarray(predicted, dtype=bool), np.asarray(truth, dtype=bool)
    if predicted.shape != truth.shape:
        raise InputError(f"masks differ in shape: {predicted.shape} and {truth.shape}")
    if tolerance < 0:
        raise ConfigError(f"tolerance {tolerance}: must not be negative")
    return MatchCounts(
        predicted=int(predicted.sum()),
        true=int(truth.sum()),
        predicted_right=int((predicted & _near(truth, tolerance)).sum()),
        true_found=int((truth & _near(predicted, tolerance)).sum()),
    )


def marked_fraction(predicted: np.ndarray) -> float:
    """Share of pixels marked: on images without damage, the false-alarm rate."""
    predicted = np.asarray(predicted, dtype=bool)
    return float(predicted.mean()) if predicted.size else 0.0
