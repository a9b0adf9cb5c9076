"""The stroke generator's parameters, and mask sizes.

Lengths are fractions of the image's shorter side, so one set of parameters gives the same
ratio distribution at every size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

MIN_SIZE = 64  # below this a mask set has too few pixels for meaningful bands


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
            cast = field_type(name)
            kwargs[name] = (cast(value[0]), cast(value[1]))
        return cls(**kwargs)


def field_type(name: str) -> type:
    """``int`` for the count fields of :class:`MaskParams` (strokes, …), else ``float``."""
    return int if isinstance(getattr(MaskParams, name)[0], int) else float


def size_hw(size: int | Sequence[int]) -> tuple[int, int]:
    """(height, width) from an int (square) or a (height, width) pair."""
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)
