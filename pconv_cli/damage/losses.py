"""Folds and losses: creases, tears, missing corners and edges, wormholes.

Losses show what is behind the print (a white mount, a black scanner lid or cream paper),
often rimmed with the white paper core a torn print exposes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import ndimage

from .geometry import (
    Patch,
    blob,
    branching_paths,
    fractal_noise_1d,
    scaled,
    straight_path,
    stroke,
    wandering_path,
)
from .layers import SOFT_VISIBLE, Layer, paint, stain
from .procedural import (
    Style,
    backing_colour,
    broken_strength,
    paper_white,
    random_point,
    stroke_width,
)


def crease(rng: np.random.Generator, size: tuple[int, int], style: Style) -> list[Layer]:
    """A fold: a broken light line where the emulsion cracked, shaded dark on one side."""
    side = min(size)
    heading = rng.uniform(0, math.pi)
    length = side * rng.uniform(0.3, 1.5)
    direction = np.array([math.cos(heading), math.sin(heading)])
    path = straight_path(rng, random_point(rng, size) - direction * length / 2, heading, length,
                         wobble=rng.uniform(0.2, 0.8), step=10.0)
    normal = np.array([-direction[1], direction[0]]) * rng.choice([-1.0, 1.0])
    spread = rng.uniform(1.0, 3.0)  # px, how far the shading of the ridge reaches
    shade = stroke(path + normal * spread, 2 * spread, gaussian=True)
    glow = stroke(path - normal * spread, 2 * spread, gaussian=True)
    line = stroke(path, stroke_width(rng, style, cap=2.0),
                  broken_strength(rng, len(path), gaps=1.0))
    dark = rng.uniform(0.7, 0.9)
    return [
        stain(scaled(shade, 1.0), np.array([dark, dark * 0.98, dark * 0.95]), SOFT_VISIBLE),
        paint(scaled(glow, rng.uniform(0.1, 0.3)), paper_white(rng), SOFT_VISIBLE),
        paint(line, paper_white(rng)),
    ]


def tear(rng: np.random.Generator, size: tuple[int, int], style: Style) -> list[Layer]:
    """A rip in from an edge: a jagged gap showing the backing, rimmed with torn white paper."""
    h, w = size
    side = min(size)
    edge = int(rng.integers(4))
    along = rng.uniform(0.1, 0.9)
    start, heading = [
        (np.array([along * (w - 1), -2.0]), math.pi / 2),
        (np.array([along * (w - 1), h + 1.0]), -math.pi / 2),
        (np.array([-2.0, along * (h - 1)]), 0.0),
        (np.array([w + 1.0, along * (h - 1)]), math.pi),
    ][edge]
    length = side * rng.uniform(0.05, 0.35)
    path = branching_paths(rng, start, heading + rng.normal(0, 0.3), length,
                           branch_rate=0.0, step=2.0)[0]
    t = np.linspace(0, 1, len(path))
    opening = rng.uniform(2.0, max(3.0, side * 0.03)) * (1 - t) ** 0.7 + 0.8
    rim = opening + rng.uniform(1.0, 4.0) * (0.6 + 0.4 * np.abs(fractal_noise_1d(rng, len(t))))
    return [paint(stroke(path, rim), paper_white(rng)),
            paint(stroke(path, opening), backing_colour(rng))]


def _loss_layers(rng: np.random.Generator, size: tuple[int, int], origin: np.ndarray,
                 inward: float, span: float,
                 depth_of: Callable[[np.ndarray], np.ndarray]) -> list[Layer]:
    """A missing piece: pixels nearer the edge than a jagged line ``depth_of(v)``.

    ``origin`` is on the edge (or the corner), ``inward`` the angle pointing into the image,
    ``v`` the signed distance along the edge from ``origin``, up to ``span`` each way.
    """
    h, w = size
    u_dir = np.array([math.cos(inward), math.sin(inward)])
    v_dir = np.array([-u_dir[1], u_dir[0]])
    v = np.linspace(-span, span, max(4, int(2 * span) + 1))
    depth = depth_of(v)
    rim_width = rng.uniform(1.0, 4.0) * (0.5 + np.abs(fractal_noise_1d(rng, len(v))))
    reach = float(np.max(depth + rim_width)) + 2
    corners = np.array([origin + a * v_dir * span + b * u_dir * reach
                        for a in (-1, 1) for b in (0, 1)])
    x0, y0 = np.floor(corners.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 2
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    du, dv = (xx - origin[0]) * u_dir[0] + (yy - origin[1]) * u_dir[1], \
        (xx - origin[0]) * v_dir[0] + (yy - origin[1]) * v_dir[1]
    edge_depth = np.interp(dv, v, depth, left=-1e9, right=-1e9)
    rim_depth = edge_depth + np.interp(dv, v, rim_width)
    hole = np.clip(edge_depth - du + 0.5, 0, 1).astype(np.float32)
    rim = np.clip(rim_depth - du + 0.5, 0, 1).astype(np.float32)
    layers = [paint(Patch(y0, x0, hole), backing_colour(rng))]
    if rng.random() < 0.7:  # a torn print shows its white paper core along the edge
        layers.insert(0, paint(Patch(y0, x0, rim), paper_white(rng)))
    return layers


def missing_corner(rng: np.random.Generator, size: tuple[int, int], style: Style
                   ) -> list[Layer]:
    """A torn-off corner, its edge ragged."""
    h, w = size
    side = min(size)
    corner = int(rng.integers(4))
    origin = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]][corner], dtype=float)
    inward = math.pi / 4 + corner * math.pi / 2 + rng.normal(0, 0.25)
    depth = side * rng.uniform(0.04, 0.25)
    span = depth * 2.5
    noise = fractal_noise_1d(rng, max(4, int(2 * span) + 1), 0.6)
    noise *= depth * rng.uniform(0.04, 0.12) / max(np.abs(noise).max(), 1e-9)
    return _loss_layers(rng, size, origin, inward, span,
                        lambda v: depth + np.interp(v, np.linspace(-span, span, len(noise)),
                                                    noise))


def missing_edge(rng: np.random.Generator, size: tuple[int, int], style: Style
                 ) -> list[Layer]:
    """A piece missing from one edge: a ragged bay."""
    h, w = size
    side = min(size)
    edge = int(rng.integers(4))
    along = rng.uniform(0.1, 0.9)
    origin, inward = [
        (np.array([along * (w - 1), 0.0]), math.pi / 2),
        (np.array([along * (w - 1), h - 1.0]), -math.pi / 2),
        (np.array([0.0, along * (h - 1)]), 0.0),
        (np.array([w - 1.0, along * (h - 1)]), math.pi),
    ][edge]
    depth = side * rng.uniform(0.02, 0.12)
    half = side * rng.uniform(0.05, 0.3)
    noise = fractal_noise_1d(rng, max(4, int(2 * half) + 1), 0.65)
    noise *= depth * 0.2 / max(np.abs(noise).max(), 1e-9)
    bluntness = rng.uniform(0.5, 2.0)  # below 1 a square bite, above 1 a pointed one

    def depth_of(v: np.ndarray) -> np.ndarray:
        bay = depth * np.sqrt(np.clip(1 - (v / half) ** 2, 0, 1)) ** bluntness
        return bay + np.interp(v, np.linspace(-half, half, len(noise)), noise) - 0.5

    return _loss_layers(rng, size, origin, inward, half, depth_of)


def wormhole(rng: np.random.Generator, size: tuple[int, int], style: Style) -> list[Layer]:
    """A few round-ish holes or short tunnels showing the backing, with browned rims."""
    side = min(size)
    centre = random_point(rng, size)
    backing = backing_colour(rng)
    layers = []
    for _ in range(rng.integers(1, 6)):
        radius = max(2.0, side * rng.uniform(0.005, 0.02))
        where = centre + rng.normal(0, side * 0.03, 2)
        if rng.random() < 0.3:  # a tunnel eaten along the surface
            path = wandering_path(rng, where, rng.uniform(0, 2 * math.pi),
                                  radius * rng.uniform(2, 8), step=1.5, bend=0.2)
            hole = stroke(path, 2 * radius)
            rim = stroke(path, 2 * radius + rng.uniform(1.0, 3.0), 0.6)
        else:
            alpha, reach = blob(rng, radius, roughness=0.15)
            hole = Patch(int(round(where[1])) - reach, int(round(where[0])) - reach, alpha)
            grown = ndimage.gaussian_filter(np.pad(alpha, 3), 1.0) * 1.5
            rim = Patch(hole.top - 3, hole.left - 3, np.clip(grown, 0, 1))
        # browned paper round the hole, fading out within a pixel or two
        rim = scaled(rim, rng.uniform(0.3, 0.7))
        layers.append(stain(rim, np.array([0.6, 0.45, 0.3]) * rng.uniform(0.8, 1.1)))
        layers.append(paint(hole, backing))
    return layers
