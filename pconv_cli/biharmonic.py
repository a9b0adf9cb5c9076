"""Biharmonic inpainting of many small holes in one sparse solve.

The fill is scikit-image's ``inpaint_biharmonic`` (Damelin and Hoang, 2018): every hole pixel
``p`` gets the equation Σ_o c_o·u(p + o) = 0 over the 13-point stencil of the discrete
biharmonic operator (the Laplacian of the Laplacian; within 2 px of the image's border, the
stencil of that operator on the neighbourhood that fits, as scikit-image computes it), known
neighbours moved to the right-hand side; the fill is then clipped, per channel, to the range of
the known pixels. The equations and the solver (SuperLU with the same ordering) are scikit-image's,
so the fills agree to rounding before the clip (tests/test_biharmonic.py compares them); the
clip is to the range of the known pixels the fill reads, where scikit-image takes every known
pixel of the image it is given (a crop's, or a 24 MP scan's: a pass over all of it).

What differs is the bookkeeping. scikit-image labels the mask, builds the system row by row in
Python for the points near the image's border and converts the image to float; restore calls
it once per thin region of a scan (hundreds of specks and hairs), and that overhead was most of
the time. Here the system is built with array operations over the hole pixels only (the image
is read at the hole pixels' neighbours and converted there), whatever the image's size: the
cost grows with the hole pixels, not with the image.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

RADIUS = 2  # the stencil's reach, px


@lru_cache(maxsize=64)
def _stencil(shape: tuple[int, int], centre: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(offsets k×2, coefficients k) of the biharmonic operator at ``centre`` of a neighbourhood
    of ``shape`` (smaller than 5×5 at the image's border), as scikit-image derives it."""
    from scipy.ndimage import laplace

    delta = np.zeros(shape)
    delta[centre] = 1.0
    operator = laplace(laplace(delta))
    ys, xs = np.nonzero(operator)
    offsets = np.stack([ys - centre[0], xs - centre[1]], axis=1)
    return offsets, operator[ys, xs]


def biharmonic_fill(image: Any, valid: np.ndarray, wanted: np.ndarray | None = None,
                    known_range: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The fill of the ``wanted`` hole pixels (default: every pixel where ``valid``, H×W bool,
    is False): an n×C float64 array in the order of ``np.nonzero(wanted)`` (row by row).

    ``image``: H×W×C pixels read as float, or anything that ``image[ys, xs]`` turns into the
    float pixels at those coordinates (k×C; restore passes a view that converts a scan's
    native pixels only where they are read). Other holes within the stencil's reach of a wanted
    pixel are solved for too (their values never enter the fill). ``known_range``: per-channel
    (low, high) the fill is clipped to; default: the range of the known pixels it reads (the
    rims of the holes), where scikit-image clips to the range of every known pixel it is given.
    Raises ValueError when no pixel is known.
    """
    from scipy import sparse
    from scipy.sparse.linalg import spsolve

    height, width = valid.shape
    if valid.all() or (wanted is not None and not (wanted & ~valid).any()):
        return np.zeros((0, np.asarray(image[np.zeros(1, int), np.zeros(1, int)]).shape[-1]))
    if not valid.any():
        raise ValueError("biharmonic fill: no known pixel to start from")
    flat = _unknowns(valid, ~valid if wanted is None else wanted & ~valid)
    ys, xs = np.divmod(flat, width)
    n = len(flat)
    rows, cols, coefs, known_rows, known_coefs, known_at = [], [], [], [], [], []
    # Pixels whose whole 5×5 neighbourhood lies inside the image share the full stencil.
    inner = ((ys >= RADIUS) & (ys < height - RADIUS) & (xs >= RADIUS) & (xs < width - RADIUS))
    groups = [(np.flatnonzero(inner), _stencil((5, 5), (RADIUS, RADIUS)))]
    for i in np.flatnonzero(~inner):  # near the border: a stencil of its own (few pixels)
        top, left = max(ys[i] - RADIUS, 0), max(xs[i] - RADIUS, 0)
        shape = (min(ys[i] + RADIUS + 1, height) - top, min(xs[i] + RADIUS + 1, width) - left)
        groups.append((np.array([i]), _stencil(shape, (ys[i] - top, xs[i] - left))))
    for members, (offsets, values) in groups:
        if not len(members):
            continue
        ny = ys[members, None] + offsets[None, :, 0]  # members × stencil
        nx = xs[members, None] + offsets[None, :, 1]
        row = np.broadcast_to(members[:, None], ny.shape)
        coef = np.broadcast_to(values[None, :], ny.shape)
        hole = ~valid[ny, nx]
        # A hole neighbour is an unknown of the system; a known one moves to the right side.
        cols.append(np.searchsorted(flat, ny[hole] * width + nx[hole]))
        rows.append(row[hole])
        coefs.append(coef[hole])
        known_rows.append(row[~hole])
        known_coefs.append(coef[~hole])
        known_at.append((ny[~hole], nx[~hole]))
    at = tuple(np.concatenate(axis) for axis in zip(*known_at, strict=True))
    neighbours = np.asarray(image[at], dtype=np.float64)  # the known pixels the fill reads
    rhs = np.zeros((n, neighbours.shape[-1]))
    np.add.at(rhs, np.concatenate(known_rows), -np.concatenate(known_coefs)[:, None] * neighbours)
    matrix = sparse.csc_array((np.concatenate(coefs), (np.concatenate(rows),
                                                       np.concatenate(cols))), shape=(n, n))
    solution = spsolve(matrix, rhs, use_umfpack=False, permc_spec="MMD_ATA").reshape(n, -1)
    if wanted is not None:
        solution = solution[np.searchsorted(flat, np.flatnonzero(wanted & ~valid))]
    # Clipped, as scikit-image clips, to a range of known pixels; here by default those the
    # fill is computed from (its rims), which needs no pass over a large image.
    low, high = known_range if known_range is not None else (neighbours.min(axis=0),
                                                             neighbours.max(axis=0))
    return np.clip(solution, low, high)


def _unknowns(valid: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Flat indices (sorted) of the wanted hole pixels and of every hole pixel their stencils
    reach, and theirs in turn: a system that never reads an unknown pixel as known."""
    height, width = valid.shape
    offsets, _ = _stencil((5, 5), (RADIUS, RADIUS))
    found = np.flatnonzero(wanted)
    new = found
    while len(new):
        ys, xs = np.divmod(new, width)
        ny, nx = ys[:, None] + offsets[None, :, 0], xs[:, None] + offsets[None, :, 1]
        inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
        ny, nx = ny[inside], nx[inside]
        reached = np.unique(ny[~valid[ny, nx]] * width + nx[~valid[ny, nx]])
        new = np.setdiff1d(reached, found, assume_unique=True)
        found = np.union1d(found, new)
    return found
