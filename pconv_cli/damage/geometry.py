"""Shapes of damage as soft alpha patches: thin curves, blobs and the random paths they follow.

A patch is ``(top, left, alpha)``: ``alpha`` is a float32 array in [0, 1] whose pixel (0, 0)
lies at image pixel (top, left). Patches may reach past the image; compositing clips them.

Thin curves are rasterised exactly by stamping discs along a densely sampled path: a pixel's
alpha is ``clip(2 * (radius - distance), 0, 1)`` for the nearest stamp, so every pixel whose
centre lies within half the width of the path is covered (the binarised curve is as wide as
asked, 1 px included) and the last half pixel of the edge is anti-aliased inside that width.
Coordinates are (x, y) = (column, row) in pixels, pixel centres at integers.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import ndimage

# Stamp spacing along a path, in pixels: well under a pixel, so that the union of discs of
# radius 0.5 (a 1 px line) has no gaps at any angle.
STAMP_SPACING = 0.3


class Patch(NamedTuple):
    top: int
    left: int
    alpha: np.ndarray  # float32 h×w in [0, 1]


def resample_path(
    points: np.ndarray, *values: np.ndarray, spacing: float = STAMP_SPACING
) -> tuple[np.ndarray, ...]:
    """Points every ``spacing`` px along a polyline (k×2, x y), with per-vertex values
    (radius, strength...) interpolated linearly along the way."""
    points = np.asarray(points, dtype=np.float64)
    if len(points) == 1:
        return (points, *(np.asarray(v, dtype=np.float64) for v in values))
    steps = np.hypot(*np.diff(points, axis=0).T)
    along = np.concatenate([[0.0], np.cumsum(steps)])
    count = max(2, int(math.ceil(along[-1] / spacing)) + 1)
    where = np.linspace(0.0, along[-1], count)
    dense = np.stack([np.interp(where, along, points[:, 0]),
                      np.interp(where, along, points[:, 1])], axis=1)
    return (dense, *(np.interp(where, along, np.asarray(v, dtype=np.float64)) for v in values))


def stamp_discs(centres: np.ndarray, radii: np.ndarray, strength: np.ndarray,
                *, gaussian: bool = False) -> Patch:
    """Union (by maximum) of anti-aliased discs: centres n×2 (x, y), radii and strengths n.

    ``gaussian``: soft spots instead, exp(-d²/2r²) out to 3r (along a path, the maximum of
    such spots is a Gaussian of the distance to the path: a soft band).
    """
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    radii = np.broadcast_to(np.asarray(radii, dtype=np.float64), len(centres))
    strength = np.broadcast_to(np.asarray(strength, dtype=np.float32), len(centres))
    extent = 3 * radii.max(initial=0.5) if gaussian else radii.max(initial=0.5)
    reach = int(math.ceil(extent)) + 1
    left = int(math.floor(centres[:, 0].min())) - reach
    top = int(math.floor(centres[:, 1].min())) - reach
    width = int(math.floor(centres[:, 0].max())) + reach + 1 - left
    height = int(math.floor(centres[:, 1].max())) + reach + 1 - top
    offsets = np.arange(-reach, reach + 1)
    # Every stamp visits the same square of pixels around its centre's pixel.
    base_x = np.floor(centres[:, 0]).astype(np.int64)[:, None, None] + offsets[None, None, :]
    base_y = np.floor(centres[:, 1]).astype(np.int64)[:, None, None] + offsets[None, :, None]
    distance = np.hypot(base_x - centres[:, 0, None, None], base_y - centres[:, 1, None, None])
    if gaussian:
        alpha = np.exp(-0.5 * (distance / radii[:, None, None]) ** 2).astype(np.float32)
        alpha[distance > 3 * radii[:, None, None]] = 0
    else:
        alpha = np.clip(2.0 * (radii[:, None, None] - distance), 0.0, 1.0).astype(np.float32)
    alpha *= strength[:, None, None]
    flat = ((base_y - top) * width + (base_x - left))
    flat, alpha = np.broadcast_arrays(flat, alpha)
    keep = alpha > 0
    canvas = np.zeros(height * width, dtype=np.float32)
    np.maximum.at(canvas, flat[keep], alpha[keep])
    return Patch(top, left, canvas.reshape(height, width))


def stroke(points: np.ndarray, widths: np.ndarray | float, strength: np.ndarray | float = 1.0,
           *, gaussian: bool = False) -> Patch:
    """A polyline ``widths`` px wide (per vertex, or one value) with per-vertex strength.

    ``gaussian``: a soft band whose profile across is a Gaussian of sigma ``widths / 2``.
    """
    k = len(points)
    widths = np.broadcast_to(np.asarray(widths, dtype=np.float64), k)
    strength = np.broadcast_to(np.asarray(strength, dtype=np.float64), k)
    dense, w, s = resample_path(points, widths, strength)
    # Wide strokes need fewer stamps: discs of radius r spaced d apart leave scallops
    # d²/8r deep along the edge, kept under a twentieth of a pixel.
    step = np.maximum(STAMP_SPACING, np.sqrt(0.2 * w))
    count = np.floor(np.cumsum(STAMP_SPACING / step))
    keep = np.r_[True, count[1:] != count[:-1]]
    keep[-1] = True
    return stamp_discs(dense[keep], w[keep] / 2, s[keep], gaussian=gaussian)


def merge(patches: list[Patch]) -> Patch:
    """One patch holding the maximum of several."""
    top = min(p.top for p in patches)
    left = min(p.left for p in patches)
    bottom = max(p.top + p.alpha.shape[0] for p in patches)
    right = max(p.left + p.alpha.shape[1] for p in patches)
    out = np.zeros((bottom - top, right - left), dtype=np.float32)
    for p in patches:
        view = out[p.top - top:p.top - top + p.alpha.shape[0],
                   p.left - left:p.left - left + p.alpha.shape[1]]
        np.maximum(view, p.alpha, out=view)
    return Patch(top, left, out)


def scaled(patch: Patch, factor: float) -> Patch:
    """The patch with its alpha multiplied by ``factor``."""
    return Patch(patch.top, patch.left, (patch.alpha * factor).astype(np.float32))


# --------------------------------------------------------------------------- random paths


def wandering_path(
    rng: np.random.Generator, start: np.ndarray, heading: float, length: float,
    *, step: float = 4.0, bend: float = 0.05, bend_change: float = 0.02,
) -> np.ndarray:
    """A smooth random curve (hair, fibre, curved scratch): its curvature itself wanders.

    ``bend`` is the initial turn per step in radians, ``bend_change`` how fast it drifts.
    """
    n = max(2, int(length / step) + 1)
    curvature = rng.normal(0, bend) + np.cumsum(rng.normal(0, bend_change, n - 1))
    angles = heading + np.concatenate([[0.0], np.cumsum(curvature)])
    steps = step * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return np.asarray(start, dtype=np.float64) + np.concatenate([[[0.0, 0.0]],
                                                                  np.cumsum(steps[1:], axis=0)])


def straight_path(
    rng: np.random.Generator, start: np.ndarray, heading: float, length: float,
    *, wobble: float = 0.3, step: float = 16.0,
) -> np.ndarray:
    """A nearly straight line with a sideways wobble of about ``wobble`` px (a film scratch)."""
    n = max(2, int(length / step) + 1)
    t = np.linspace(0.0, length, n)
    side = ndimage.gaussian_filter1d(rng.normal(0, wobble * 3, n), 2.0, mode="nearest")
    direction = np.array([math.cos(heading), math.sin(heading)])
    normal = np.array([-direction[1], direction[0]])
    return np.asarray(start, dtype=np.float64) + t[:, None] * direction + side[:, None] * normal


def branching_paths(
    rng: np.random.Generator, start: np.ndarray, heading: float, length: float,
    *, branch_rate: float = 0.08, step: float = 3.0, max_paths: int = 60,
) -> list[np.ndarray]:
    """A crack network: jagged paths that fork, each branch shorter than its parent."""
    paths: list[np.ndarray] = []
    queue = [(np.asarray(start, dtype=np.float64), heading, length)]
    while queue and len(paths) < max_paths:
        origin, angle, budget = queue.pop()
        n = max(2, int(budget / step) + 1)
        # Jagged: independent turns, pulled back toward the branch's heading.
        turns = rng.normal(0, 0.35, n - 1)
        angles = angle + ndimage.gaussian_filter1d(turns, 1.0) * 1.5
        seg = step * rng.uniform(0.6, 1.4, n - 1)
        moves = np.stack([np.cos(angles) * seg, np.sin(angles) * seg], axis=1)
        path = origin + np.concatenate([[[0.0, 0.0]], np.cumsum(moves, axis=0)])
        paths.append(path)
        forks = np.flatnonzero(rng.random(n - 1) < branch_rate)
        for i in forks[:3]:
            side = rng.choice([-1.0, 1.0])
            remaining = budget * (1 - i / n)
            queue.append((path[i + 1], angles[i] + side * rng.uniform(0.5, 1.4),
                          remaining * rng.uniform(0.3, 0.7)))
    return paths


def fractal_noise_1d(rng: np.random.Generator, n: int, roughness: float = 0.6) -> np.ndarray:
    """Zero-mean 1-D noise of n samples with detail at every scale (a torn edge's profile),
    about unit amplitude; ``roughness`` is how much each octave keeps of the last one's."""
    out = np.zeros(n)
    amplitude, cells = 1.0, 2
    while cells < 2 * n:
        knots = rng.normal(0, amplitude, cells + 1)
        out += np.interp(np.linspace(0, cells, n), np.arange(cells + 1), knots)
        amplitude *= roughness
        cells *= 2
    return out - out.mean()


def smooth_noise_2d(
    rng: np.random.Generator, shape: tuple[int, int], cell: float
) -> np.ndarray:
    """Smooth random field in about [-1, 1] with features about ``cell`` px across."""
    h, w = shape
    gh, gw = max(2, int(math.ceil(h / cell)) + 2), max(2, int(math.ceil(w / cell)) + 2)
    grid = rng.uniform(-1, 1, (gh, gw)).astype(np.float32)
    zoomed = ndimage.zoom(grid, ((h + 2 * cell) / gh, (w + 2 * cell) / gw), order=3,
                          grid_mode=True, mode="grid-mirror")
    off = int(cell)
    return zoomed[off:off + h, off:off + w]


def blob(rng: np.random.Generator, radius: float, roughness: float = 0.25, lobes: int = 6,
         edge: float = 0.5) -> tuple[np.ndarray, int]:
    """An irregular round shape of mean ``radius`` px: alpha patch and its centre offset.

    The outline's radius varies with the angle by a few random harmonics (``roughness`` their
    relative size); the edge ramps over ``edge`` px inside the outline.
    """
    harmonics = np.arange(2, 2 + lobes)
    amps = rng.normal(0, roughness, lobes) / np.sqrt(harmonics - 1)
    phases = rng.uniform(0, 2 * np.pi, lobes)
    peak = radius * (1 + np.abs(amps).sum())
    reach = int(math.ceil(peak)) + 1
    y, x = np.mgrid[-reach:reach + 1, -reach:reach + 1].astype(np.float32)
    theta = np.arctan2(y, x)
    outline = radius * (1 + (amps[:, None, None] * np.cos(
        harmonics[:, None, None] * theta[None] + phases[:, None, None])).sum(0))
    alpha = np.clip((outline - np.hypot(x, y)) / (2 * edge), 0.0, 1.0)
    return alpha.astype(np.float32), reach


def rotate_patch(alpha: np.ndarray, angle: float, scale: float, flip: bool) -> np.ndarray:
    """``alpha`` turned by ``angle`` radians and scaled, in a canvas that holds all of it."""
    h, w = alpha.shape
    cos, sin = math.cos(angle), math.sin(angle)
    out_w = int(math.ceil((abs(w * cos) + abs(h * sin)) * scale)) + 2
    out_h = int(math.ceil((abs(w * sin) + abs(h * cos)) * scale)) + 2
    # affine_transform maps output (row, col) to input (row, col): the inverse rotation.
    inverse = np.array([[cos, sin], [-sin, cos]]) / scale
    if flip:
        inverse = inverse @ np.array([[1.0, 0.0], [0.0, -1.0]])
    centre_out = np.array([(out_h - 1) / 2, (out_w - 1) / 2])
    centre_in = np.array([(h - 1) / 2, (w - 1) / 2])
    offset = centre_in - inverse @ centre_out
    if scale < 0.7:  # shrinking: average first, or thin fibres alias into dotted lines
        alpha = ndimage.gaussian_filter(alpha, 0.4 / scale)
    return ndimage.affine_transform(alpha, inverse, offset, output_shape=(out_h, out_w),
                                    order=1, mode="constant", cval=0.0, prefilter=False)
