"""Procedural thin damage, and what every procedural kind shares (colours, widths, placing).

A kind is a function ``(rng, (height, width), style) -> [Layer]``.

Thin kinds (scratches, hairs, specks, cracks) have fixed pixel widths, set by ``Style``: they
are what a scan at any resolution shows of a fibre or a scratch. Extents (lengths, stains,
losses) are fractions of the image's shorter side, so a crop and a full scan look alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .geometry import (
    branching_paths,
    fractal_noise_1d,
    merge,
    stamp_discs,
    straight_path,
    stroke,
    wandering_path,
)
from .layers import Layer, paint


@dataclass(frozen=True)
class Style:
    """What the kinds share: stroke widths, speck sizes and how often damage is dark."""

    line_width: tuple[float, float] = (1.0, 4.0)  # px, scratches, hairs and cracks
    speck_size: tuple[float, float] = (1.0, 6.0)  # px, diameter of a dust speck
    dark_share: float = 0.5  # chance that a scratch, hair or speck is dark rather than light


# --------------------------------------------------------------------------- colours


def light_colour(rng: np.random.Generator) -> np.ndarray:
    grey = rng.uniform(0.86, 1.0)
    return np.clip(grey + rng.normal(0, 0.015, 3), 0, 1).astype(np.float32)


def dark_colour(rng: np.random.Generator) -> np.ndarray:
    grey = rng.uniform(0.02, 0.22)
    warm = rng.uniform(0.0, 0.06)  # dirt and hair are often a little brown
    return np.clip(grey + np.array([warm, warm / 2, -warm / 2]) + rng.normal(0, 0.01, 3),
                   0, 1).astype(np.float32)


def polarity_colour(rng: np.random.Generator, style: Style) -> np.ndarray:
    return dark_colour(rng) if rng.random() < style.dark_share else light_colour(rng)


def backing_colour(rng: np.random.Generator) -> np.ndarray:
    """What shows through a loss: a white mount, a black scanner lid or cream paper."""
    choice = rng.integers(3)
    if choice == 0:
        base = np.full(3, rng.uniform(0.9, 1.0))
    elif choice == 1:
        base = np.full(3, rng.uniform(0.0, 0.08))
    else:
        base = np.array([0.93, 0.88, 0.76]) * rng.uniform(0.85, 1.05)
    return np.clip(base + rng.normal(0, 0.01, 3), 0, 1).astype(np.float32)


def paper_white(rng: np.random.Generator) -> np.ndarray:
    return np.clip(np.array([0.96, 0.95, 0.91]) * rng.uniform(0.9, 1.04), 0, 1).astype(
        np.float32)


def stroke_width(rng: np.random.Generator, style: Style, cap: float = math.inf) -> float:
    lo, hi = style.line_width
    hi = max(lo, min(hi, cap))
    return lo + (hi - lo) * rng.random() ** 1.5  # thin ones are the commonest


def random_point(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    return rng.random(2) * np.array([w - 1, h - 1])


def broken_strength(rng: np.random.Generator, n: int, gaps: float) -> np.ndarray:
    """Strength along a line, with faint stretches and (for ``gaps`` > 0) breaks."""
    wave = fractal_noise_1d(rng, n, 0.55)
    wave /= max(np.abs(wave).max(), 1e-9)
    return np.clip(0.85 + 0.35 * wave - gaps * (wave < -0.5), 0.0, 1.0)


# --------------------------------------------------------------------------- thin kinds


def scratch(rng: np.random.Generator, size: tuple[int, int], style: Style) -> list[Layer]:
    """A long straight scratch, 1–4 px, often along the film (vertical or horizontal)."""
    side = min(size)
    if rng.random() < 0.6:
        heading = rng.choice([0.0, math.pi / 2]) + rng.normal(0, 0.03)
    else:
        heading = rng.uniform(0, math.pi)
    length = side * rng.uniform(0.3, 1.3)
    direction = np.array([math.cos(heading), math.sin(heading)])
    start = random_point(rng, size) - direction * length / 2
    path = straight_path(rng, start, heading, length, wobble=rng.uniform(0.0, 0.6))
    width = stroke_width(rng, style)
    strength = broken_strength(rng, len(path), gaps=rng.choice([0.0, 1.0]))
    patch = stroke(path, width * rng.uniform(0.85, 1.0, len(path)), strength)
    return [paint(patch, polarity_colour(rng, style))]


def curved_scratch(rng: np.random.Generator, size: tuple[int, int], style: Style
                   ) -> list[Layer]:
    """One to four parallel arcs, as a film sliding over grit leaves (cinch marks)."""
    side = min(size)
    length = side * rng.uniform(0.1, 0.6)
    path = wandering_path(rng, random_point(rng, size), rng.uniform(0, 2 * math.pi), length,
                          step=4.0, bend=rng.uniform(0.005, 0.03), bend_change=0.002)
    tangent = np.gradient(path, axis=0)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    normal /= np.maximum(np.hypot(*normal.T), 1e-9)[:, None]
    colour = polarity_colour(rng, style)
    width = stroke_width(rng, style, cap=2.5)
    patches = []
    offset = 0.0
    for _ in range(rng.integers(1, 5)):
        strength = broken_strength(rng, len(path), gaps=1.0)
        patches.append(stroke(path + offset * normal, width, strength))
        offset += 2 * width + rng.uniform(2.0, 6.0)  # apart, so that the arcs never merge
    return [paint(merge(patches), colour)]


def hair(rng: np.random.Generator, size: tuple[int, int], style: Style) -> list[Layer]:
    """A thin curved fibre, tapering at the ends."""
    side = min(size)
    length = float(np.clip(side * rng.uniform(0.08, 0.6), 12, 1200))
    path = wandering_path(rng, random_point(rng, size), rng.uniform(0, 2 * math.pi), length,
                          step=2.5, bend=rng.uniform(0.01, 0.08), bend_change=0.015)
    t = np.linspace(0, 1, len(path))
    width = stroke_width(rng, style, cap=3.0)
    taper = np.clip(np.sin(np.pi * t) * 3, 0.45, 1.0)
    widths = np.maximum(width * taper, style.line_width[0])
    strength = rng.uniform(0.75, 1.0) * np.clip(0.9 + 0.1 * fractal_noise_1d(rng, len(t)), 0, 1)
    return [paint(stroke(path, widths, strength), polarity_colour(rng, style))]


def dust(rng: np.random.Generator, size: tuple[int, int], style: Style) -> list[Layer]:
    """A scatter of specks 1–6 px across, mostly of one polarity (a dusty print or scan)."""
    h, w = size
    count = int(rng.integers(5, 40))
    dark = rng.random() < style.dark_share
    lo, hi = style.speck_size
    layers = []
    for _ in range(count):
        diameter = lo + (hi - lo) * rng.random() ** 2  # small specks are far commoner
        centre = random_point(rng, size)
        # An irregular speck: one to three discs, each within the first one's outline.
        parts = int(rng.integers(1, 4)) if diameter >= 2.5 else 1
        radii = np.full(parts, diameter / 2) * np.r_[1.0, rng.uniform(0.5, 0.8, parts - 1)]
        offsets = rng.normal(0, 1, (parts, 2)) * (diameter / 2 - radii)[:, None] * 0.7
        colour = dark_colour(rng) if dark ^ (rng.random() < 0.1) else light_colour(rng)
        patch = stamp_discs(centre + offsets, radii, rng.uniform(0.7, 1.0))
        layers.append(paint(patch, colour))
    return layers


def crack(rng: np.random.Generator, size: tuple[int, int], style: Style) -> list[Layer]:
    """A branching network of fine cracks, as in the emulsion of an old print."""
    side = min(size)
    length = side * rng.uniform(0.08, 0.4)
    paths = branching_paths(rng, random_point(rng, size), rng.uniform(0, 2 * math.pi), length,
                            branch_rate=rng.uniform(0.03, 0.12))
    width = stroke_width(rng, style, cap=2.0)
    patches = []
    for path in paths:
        t = np.linspace(0, 1, len(path))
        widths = np.maximum(width * (1 - 0.5 * t), style.line_width[0])  # thinner to the tip
        patches.append(stroke(path, widths, rng.uniform(0.7, 1.0)))
    colour = dark_colour(rng) if rng.random() < 0.6 else paper_white(rng)
    return [paint(merge(patches), colour)]


THIN_KINDS = {
    "scratch": scratch,
    "curved_scratch": curved_scratch,
    "hair": hair,
    "dust": dust,
    "crack": crack,
}
