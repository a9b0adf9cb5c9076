"""Stains: ink blots, foxing, mould and tape. Soft ones are marked only where they show."""

from __future__ import annotations

import math

import numpy as np

from .geometry import Patch, blob, merge, scaled, smooth_noise_2d
from .layers import SOFT_VISIBLE, Layer, paint, stain
from .procedural import Style, random_point


def ink(rng: np.random.Generator, size: tuple[int, int], style: Style) -> list[Layer]:
    """An ink blot with splashes around it."""
    side = min(size)
    radius = max(3.0, side * rng.uniform(0.008, 0.05))
    centre = random_point(rng, size)
    colour = [np.array([0.05, 0.07, 0.22]), np.array([0.04, 0.04, 0.05]),
              np.array([0.25, 0.14, 0.07])][int(rng.integers(3))] * rng.uniform(0.7, 1.3)
    opacity = rng.uniform(0.8, 0.98)
    patches = []
    alpha, reach = blob(rng, radius, roughness=0.1, lobes=5)
    patches.append(Patch(int(round(centre[1])) - reach, int(round(centre[0])) - reach, alpha))
    for _ in range(rng.integers(0, 12)):
        angle = rng.uniform(0, 2 * math.pi)
        distance = radius * rng.uniform(1.1, 3.0)
        spot = centre + distance * np.array([math.cos(angle), math.sin(angle)])
        a, r = blob(rng, max(0.8, radius * rng.uniform(0.04, 0.25)), roughness=0.2)
        patches.append(Patch(int(round(spot[1])) - r, int(round(spot[0])) - r, a))
    blot = merge(patches)
    return [paint(scaled(blot, opacity), np.clip(colour, 0, 1))]


def foxing(rng: np.random.Generator, size: tuple[int, int], style: Style) -> list[Layer]:
    """Rust-brown spots scattered over an area: round-ish, soft-rimmed, some with a dark core."""
    side = min(size)
    centre = random_point(rng, size)
    spread = side * rng.uniform(0.03, 0.2)
    tint = np.array([0.88, 0.68, 0.45]) ** rng.uniform(0.7, 1.6)
    layers = []
    for _ in range(rng.integers(3, 25)):
        radius = 1.0 + (side * 0.02 + 2) * rng.random() ** 2
        alpha, reach = blob(rng, radius, roughness=0.08, lobes=4, edge=max(0.5, radius * 0.3))
        alpha *= rng.uniform(0.4, 1.0)
        if radius > 3 and rng.random() < 0.5:
            core, r = blob(rng, radius * 0.35, roughness=0.1, edge=0.8)
            window = alpha[reach - r:reach + r + 1, reach - r:reach + r + 1]
            np.maximum(window, core, out=window)
        spot = centre + rng.normal(0, spread, 2)
        patch = Patch(int(round(spot[1])) - reach, int(round(spot[0])) - reach, alpha)
        layers.append(stain(patch, tint, SOFT_VISIBLE))
    return layers


def mould(rng: np.random.Generator, size: tuple[int, int], style: Style) -> list[Layer]:
    """Mould: a cluster of fuzzy colonies, mottled inside, whitish bloom or dark grey-green."""
    side = min(size)
    centre = random_point(rng, size)
    spread = side * rng.uniform(0.01, 0.06)
    patches = []
    for _ in range(rng.integers(2, 12)):
        radius = max(2.0, side * rng.uniform(0.004, 0.03))
        # Many fine lobes: the hairy rim of a colony.
        alpha, reach = blob(rng, radius, roughness=0.12, lobes=16, edge=max(0.5, radius * 0.35))
        mottle = 0.6 + 0.4 * smooth_noise_2d(rng, alpha.shape, max(1.5, radius / 3))
        spot = centre + rng.normal(0, spread, 2)
        patches.append(Patch(int(round(spot[1])) - reach, int(round(spot[0])) - reach,
                             (alpha * mottle * rng.uniform(0.5, 0.95)).astype(np.float32)))
    patch = merge(patches)
    if rng.random() < 0.6:
        return [paint(patch, np.array([0.9, 0.91, 0.86]) * rng.uniform(0.92, 1.05),
                      SOFT_VISIBLE)]
    return [stain(patch, np.array([0.45, 0.5, 0.4]) * rng.uniform(0.6, 1.1), SOFT_VISIBLE)]


def tape(rng: np.random.Generator, size: tuple[int, int], style: Style) -> list[Layer]:
    """A strip of aged adhesive tape: a yellowish film, darker along its edges."""
    side = min(size)
    width = side * rng.uniform(0.05, 0.18)
    length = side * rng.uniform(0.25, 1.0)
    angle = (rng.choice([0.0, math.pi / 2]) + rng.normal(0, 0.08) if rng.random() < 0.6
             else rng.uniform(0, math.pi))
    centre = random_point(rng, size)
    cos, sin = abs(math.cos(angle)), abs(math.sin(angle))
    reach_x = int(math.ceil((length * cos + width * sin) / 2)) + 4
    reach_y = int(math.ceil((length * sin + width * cos) / 2)) + 4
    y, x = np.mgrid[-reach_y:reach_y + 1, -reach_x:reach_x + 1].astype(np.float32)
    u = x * math.cos(angle) + y * math.sin(angle)
    v = -x * math.sin(angle) + y * math.cos(angle)
    # Ends cut with a serrated dispenser blade; sides straight.
    teeth = rng.uniform(0.5, 2.5) * np.abs(((v / rng.uniform(1.5, 3.0)) % 2) - 1)
    inside_u = np.clip(length / 2 - teeth - np.abs(u) + 0.5, 0, 1)
    inside_v = np.clip(width / 2 - np.abs(v) + 0.5, 0, 1)
    body = (inside_u * inside_v).astype(np.float32)
    edges = (body * np.clip(2.0 - (width / 2 - np.abs(v)), 0, 1)).astype(np.float32)
    top, left = int(round(centre[1])) - reach_y, int(round(centre[0])) - reach_x
    tint = np.array([1.0, 0.93, 0.7]) ** rng.uniform(0.5, 2.0)
    haze = rng.uniform(0.03, 0.1)  # the film scatters a little light: blacks turn yellowish
    film = Layer(Patch(top, left, body), (tint * (1 - haze)).astype(np.float32),
                 (tint * haze).astype(np.float32), SOFT_VISIBLE)
    return [film, stain(Patch(top, left, edges * 0.6), tint * 0.75, SOFT_VISIBLE)]
