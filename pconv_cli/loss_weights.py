"""The weights of the loss terms (paper §3.3), apart from the loss itself.

They are plain numbers: keeping them out of ``core`` (which loads torch) lets ``pconv train
--help`` show the defaults without loading torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms; the defaults are the paper's."""

    valid: float = 1.0
    hole: float = 6.0
    perceptual: float = 0.05
    style: float = 120.0  # applied to each of L_style_out and L_style_comp
    tv: float = 0.1

    @property
    def needs_vgg(self) -> bool:
        return self.perceptual != 0 or self.style != 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DetectionLossWeights:
    """Terms of the damage detector's loss (``core.detector.DetectionLoss``): binary
    cross-entropy with positives up-weighted, and a soft Dice term that scores the damage as a
    whole, so that a few thin hairs among millions of clean pixels still count."""

    bce: float = 1.0
    dice: float = 1.0
    positive_weight: float = 4.0

    def to_dict(self) -> dict:
        return asdict(self)
