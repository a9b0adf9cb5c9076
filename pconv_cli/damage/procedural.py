"""Procedural damage kinds: each a function ``(rng, (height, width), style) -> [Layer]``.

Thin kinds (scratches, hairs, specks, cracks) have fixed pixel widths, set by ``Style``: they
are what a scan at any resolution shows of a fibre or a scratch. Extents (lengths, stains,
losses) are fractions of the image's shorter side, so a crop and a full scan look alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .geometry import (
    Patch,
    blob,
    branching_paths,
    fractal_noise_1d,
    merge,
    smooth_noise_2d,
    stamp_discs,
    straight_path,
    stroke,
    wandering_path,
)
from .layers import Layer, paint, stain

# Changes smaller than this are not counted as damage for soft stains (foxing, mould, tape,
# crease shading): about 5 grey levels, where a careful eye starts to see a blotch.
SOFT_VISIBLE = 0.02


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


def _polarity(rng: np.random.Generator, style: Style) -> np.ndarray:
    return dark_colour(rng) if rng.random() < style.dark_share else light_colour(rng)


def _backing(rng: np.random.Generator) -> np.ndarray:
    """What shows through a loss: a white mount, a black scanner lid or cream paper."""
    choice = rng.integers(3)
    if choice == 0:
        base = np.full(3, rng.uniform(0.9, 1.0))
    elif choice == 1:
        base = np.full(3, rng.uniform(0.0, 0.08))
    else:
        base = np.array([0.93, 0.88, 0.76]) * rng.uniform(0.85, 1.05)
    return np.clip(base + rng.normal(0, 0.01, 3), 0, 1).astype(np.float32)


def _paper_white(rng: np.random.Generator) -> np.ndarray:
    return np.clip(np.array([0.96, 0.95, 0.91]) * rng.uniform(0.9, 1.04), 0, 1).astype(
        np.float32)


def _width(rng: np.random.Generator, style: Style, cap: float = math.inf) -> float:
    lo, hi = style.line_width
    hi = max(lo, min(hi, cap))
    return lo + (hi - lo) * rng.random() ** 1.5  # thin ones are the commonest


def _point(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    return rng.random(2) * np.array([w - 1, h - 1])


def _breaks(rng: np.random.Generator, n: int, gaps: float) -> np.ndarray:
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
    start = _point(rng, size) - direction * length / 2
    path = straight_path(rng, start, heading, length, wobble=rng.uniform(0.0, 0.6))
    width = _width(rng, style)
    strength = _breaks(rng, len(path), gaps=rng.choice([0.0, 1.0]))
    patch = stroke(path, width * rng.uniform(0.85, 1.0, len(path)), strength)
    return [paint(patch, _polarity(rng, style))]


def curved_scratch(rng: np.random.Generator, size: tuple[int, int], style: Style
                   ) -> list[Layer]:
    """One to four parallel arcs, as a film sliding over grit leaves (cinch marks)."""
    side = min(size)
    length = side * rng.uniform(0.1, 0.6)
    path = wandering_path(rng, _point(rng, size), rng.uniform(0, 2 * math.pi), length,
                          step=4.0, bend=rng.uniform(0.005, 0.03), bend_change=0.002)
    tangent = np.gradient(path, axis=0)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    normal /= np.maximum(np.hypot(*normal.T), 1e-9)[:, None]
    colour = _polarity(rng, style)
    width = _width(rng, style, cap=2.5)
    patches = []
    offset = 0.0
    for _ in range(rng.integers(1, 5)):
        strength = _breaks(rng, len(path), gaps=1.0)
        patches.append(stroke(path + offset * normal, width, strength))
        offset += 2 * width + rng.uniform(2.0, 6.0)  # apart, so that the arcs never merge
    return [paint(merge(patches), colour)]


def hair(rng: np.random.Generator, size: tuple[int, int], style: Style) -> list[Layer]:
    """A thin curved fibre, tapering at the ends."""
    side = min(size)
    length = float(np.clip(side * rng.uniform(0.08, 0.6), 12, 1200))
    path = wandering_path(rng, _point(rng, size), rng.uniform(0, 2 * math.pi), length,
                          step=2.5, bend=rng.uniform(0.01, 0.08), bend_change=0.015)
    t = np.linspace(0, 1, len(path))
    width = _width(rng, style, cap=3.0)
    taper = np.clip(np.sin(np.pi * t) * 3, 0.45, 1.0)
    widths = np.maximum(width * taper, style.line_width[0])
    strength = rng.uniform(0.75, 1.0) * np.clip(0.9 + 0.1 * fractal_noise_1d(rng, len(t)), 0, 1)
    return [paint(stroke(path, widths, strength), _polarity(rng, style))]


def dust(rng: np.random.Generator, size: tuple[int, int], style: Style) -> list[Layer]:
    """A scatter of specks 1–6 px across, mostly of one polarity (a dusty print or scan)."""
    h, w = size
    count = int(rng.integers(5, 40))
    dark = rng.random() < style.dark_share
    lo, hi = style.speck_size
    layers = []
    for _ in range(count):
        diameter = lo + (hi - lo) * rng.random() ** 2  # small specks are far commoner
        centre = _point(rng, size)
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
    paths = branching_paths(rng, _point(rng, size), rng.uniform(0, 2 * math.pi), length,
                            branch_rate=rng.uniform(0.03, 0.12))
    width = _width(rng, style, cap=2.0)
    patches = []
    for path in paths:
        t = np.linspace(0, 1, len(path))
        widths = np.maximum(width * (1 - 0.5 * t), style.line_width[0])  # thinner to the tip
        patches.append(stroke(path, widths, rng.uniform(0.7, 1.0)))
    colour = dark_colour(rng) if rng.random() < 0.6 else _paper_white(rng)
    return [paint(merge(patches), colour)]


THIN_KINDS = {
    "scratch": scratch,
    "curved_scratch": curved_scratch,
    "hair": hair,
    "dust": dust,
    "crack": crack,
}


# --------------------------------------------------------------------------- folds and losses


def crease(rng: np.random.Generator, size: tuple[int, int], style: Style) -> list[Layer]:
    """A fold: a broken light line where the emulsion cracked, shaded dark on one side."""
    side = min(size)
    heading = rng.uniform(0, math.pi)
    length = side * rng.uniform(0.3, 1.5)
    direction = np.array([math.cos(heading), math.sin(heading)])
    path = straight_path(rng, _point(rng, size) - direction * length / 2, heading, length,
                         wobble=rng.uniform(0.2, 0.8), step=10.0)
    normal = np.array([-direction[1], direction[0]]) * rng.choice([-1.0, 1.0])
    spread = rng.uniform(1.0, 3.0)  # px, how far the shading of the ridge reaches
    shade = stroke(path + normal * spread, 2 * spread, gaussian=True)
    glow = stroke(path - normal * spread, 2 * spread, gaussian=True)
    line = stroke(path, _width(rng, style, cap=2.0), _breaks(rng, len(path), gaps=1.0))
    dark = rng.uniform(0.7, 0.9)
    return [
        stain(_scaled(shade, 1.0), np.array([dark, dark * 0.98, dark * 0.95]), SOFT_VISIBLE),
        paint(_scaled(glow, rng.uniform(0.1, 0.3)), _paper_white(rng), SOFT_VISIBLE),
        paint(line, _paper_white(rng)),
    ]


def _scaled(patch: Patch, factor: float) -> Patch:
    return Patch(patch.top, patch.left, (patch.alpha * factor).astype(np.float32))


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
    return [paint(stroke(path, rim), _paper_white(rng)),
            paint(stroke(path, opening), _backing(rng))]


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
    layers = [paint(Patch(y0, x0, hole), _backing(rng))]
    if rng.random() < 0.7:  # a torn print shows its white paper core along the edge
        layers.insert(0, paint(Patch(y0, x0, rim), _paper_white(rng)))
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
    centre = _point(rng, size)
    backing = _backing(rng)
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
        rim = _scaled(rim, rng.uniform(0.3, 0.7))
        layers.append(stain(rim, np.array([0.6, 0.45, 0.3]) * rng.uniform(0.8, 1.1)))
        layers.append(paint(hole, backing))
    return layers


# --------------------------------------------------------------------------- stains


def ink(rng: np.random.Generator, size: tuple[int, int], style: Style) -> list[Layer]:
    """An ink blot with splashes around it."""
    side = min(size)
    radius = max(3.0, side * rng.uniform(0.008, 0.05))
    centre = _point(rng, size)
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
    return [paint(_scaled(blot, opacity), np.clip(colour, 0, 1))]


def foxing(rng: np.random.Generator, size: tuple[int, int], style: Style) -> list[Layer]:
    """Rust-brown spots scattered over an area: round-ish, soft-rimmed, some with a dark core."""
    side = min(size)
    centre = _point(rng, size)
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
    centre = _point(rng, size)
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
    centre = _point(rng, size)
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


PROCEDURAL_KINDS = {
    **THIN_KINDS,
    "crease": crease,
    "tear": tear,
    "missing_corner": missing_corner,
    "missing_edge": missing_edge,
    "wormhole": wormhole,
    "ink": ink,
    "foxing": foxing,
    "mould": mould,
    "tape": tape,
}
