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
