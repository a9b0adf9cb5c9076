"""Parsers for what users type: sizes, ranges, generator parameters and band edges.

Shared by the commands that take them (gen-masks, train, evaluate, export); each refuses bad
input with a ``ConfigError`` that says how to write it.
"""

from __future__ import annotations

import dataclasses

from ..errors import ConfigError
from .bands import PAPER_BAND_EDGES, check_edges
from .params import MIN_SIZE, MaskParams, field_type


def parse_size(text: str, minimum: int = MIN_SIZE) -> tuple[int, int]:
    """An image size as users write it, width first: ``"640x480"`` (or ``640×480``) is 640
    wide and 480 high; ``"512"`` is square. Returns (height, width), the order of numpy
    arrays: (480, 640). Every option that takes a size parses it here (gen-masks, evaluate
    ``--size``, export ``--static``); sides below ``minimum`` are refused."""
    w, h = _one_or_two(text.lower().replace("×", "x").split("x"), int,
                       f"size {text!r}: write N or WxH, for example 512 or 640x480")
    if min(h, w) < minimum:
        raise ConfigError(f"size {text!r}: sides must be at least {minimum} pixels")
    return h, w


def parse_range(text: str, kind: type = float) -> tuple[float, float]:
    """``"0.01,0.06"`` → (0.01, 0.06); a single value ``"3"`` → (3, 3)."""
    return _one_or_two([p.strip() for p in text.split(",")], kind,
                       f"range {text!r}: write LOW,HIGH or one value")


def _one_or_two(parts: list[str], kind: type, error: str) -> tuple:
    """Two values of ``kind`` from two parts, or one part taken twice; ``error`` otherwise."""
    try:
        values = [kind(p) for p in parts]
    except ValueError:
        raise ConfigError(error) from None
    if len(values) == 1:
        values *= 2
    if len(values) != 2:
        raise ConfigError(error)
    return values[0], values[1]


def parse_mask_param(name: str, text: str) -> tuple[float, float]:
    """One generator parameter as gen-masks and train take it: ``LOW,HIGH``, or one value for
    a fixed one. ``name`` is a :class:`MaskParams` field (``stroke-width`` = ``stroke_width``);
    the count fields take whole numbers."""
    names = [f.name for f in dataclasses.fields(MaskParams)]
    key = name.strip().replace("-", "_")
    if key not in names:
        raise ConfigError(f"unknown mask parameter {name!r}; one of {', '.join(names)}")
    return parse_range(text, field_type(key))


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
