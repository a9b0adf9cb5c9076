"""Poisson seam blending: make a fill continuous with the known pixels around it.

A network's fill is good inside a hole but often a little off in level right at its outline,
and the eye (and SSIM) sees the step: on the default model the error within 2 px of the
outline is above the best classical method's while further in it is below every classical
method's (measured in docs/model-card.md, with and without the blend). Blending keeps the
fill's own detail and removes the step, as Pérez et al. (2003) do when cloning one image into
another and as Iizuka et al. (2017) do after their inpainting network.

The blended fill ``f`` solves, over the hole pixels (4-neighbours, inside the image):

    Σ_n (f_p − f_n) = Σ_{n in hole} (g_p − g_n),   with f_n = I_n for known neighbours n,

where ``g`` is the fill and ``I`` the known image: inside the hole ``f`` keeps the fill's
differences between neighbours, and across the outline it follows no step at all. Written as
``f = g + c``, the correction ``c`` is harmonic inside the hole, and at each outline edge it
makes up the step ``I_n − g_p``; it is smooth, so it changes the level of a fill, not its
detail. The image border is a free edge (no neighbour there). Every hole region of an image
that has any known pixel touches one, so the system has one solution; an image with no known
pixel keeps its fill. The cost grows with the hole pixels (docs/benchmarks.md).

The solver is algebraic multigrid (PyAMG's Ruge–Stüben hierarchy, accelerating conjugate
gradients), built once per image and used for every channel: where the solve is long it is
faster than a sparse LU factorisation of the same system, and its memory grows linearly with
the hole pixels, where an LU factor's fill-in does not (docs/benchmarks.md compares the two).
It stops at a relative residual of :data:`SOLVER_TOLERANCE`, chosen so that the fill stays
below one step of a 16-bit image (1.5e-5) from the exact solution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import ConfigError

if TYPE_CHECKING:  # scipy and pyamg load when a seam is blended: the CLI reads the choices
    import scipy.sparse as sparse

BLEND_CHOICES = ("poisson", "none")
DEFAULT_BLEND = "poisson"
SOLVER_TOLERANCE = 1e-5
_NEIGHBOURS = ((0, 1), (0, -1), (1, 0), (-1, 0))


def check_blend(blend: str) -> str:
    if blend not in BLEND_CHOICES:
        raise ConfigError(f"--blend {blend}: choose {' or '.join(BLEND_CHOICES)}")
    return blend


def blend_seams(composite: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The Poisson-blended copy of one H×W×C ``composite`` (known pixels are the image's own)
    with library mask ``valid`` (H×W, True = known); known pixels are returned unchanged."""
    result = np.array(composite, dtype=np.float32, copy=True)
    system = seam_system(result, valid)
    if system is not None:
        ys, xs = system.pixels
        correction = solve_multigrid(system.laplacian, system.step)
        result[ys, xs] = np.clip(result[ys, xs] + correction, 0.0, 1.0)
    return result


@dataclass(frozen=True)
class SeamSystem:
    """``laplacian @ correction = step`` over the hole pixels at ``pixels`` (rows, columns)."""

    laplacian: sparse.csr_matrix
    step: np.ndarray  # n×C: Σ over each pixel's known neighbours of (I_n − g_p)
    pixels: tuple[np.ndarray, np.ndarray]


def seam_system(composite: np.ndarray, valid: np.ndarray) -> SeamSystem | None:
    """The linear system of :func:`blend_seams`; None when there is nothing to solve (no
    hole, or no known pixel)."""
    hole = ~np.asarray(valid, dtype=bool)
    n = int(hole.sum())
    if n == 0 or n == hole.size:
        return None
    height, width = hole.shape
    index = np.full(hole.shape, -1, dtype=np.int64)
    index[hole] = np.arange(n)
    ys, xs = np.nonzero(hole)
    fill = composite[ys, xs].astype(np.float64)
    diagonal = np.zeros(n)
    step = np.zeros_like(fill)
    rows, cols = [], []
    for dy, dx in _NEIGHBOURS:
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
        p, ny, nx = np.nonzero(inside)[0], ny[inside], nx[inside]
        diagonal[p] += 1
        to_hole = hole[ny, nx]
        rows.append(p[to_hole])
        cols.append(index[ny[to_hole], nx[to_hole]])
        at_outline = p[~to_hole]
        # each hole pixel has at most one neighbour per direction: no index repeats here
        step[at_outline] += composite[ny[~to_hole], nx[~to_hole]] - fill[at_outline]
    rows_all, cols_all = np.concatenate(rows), np.concatenate(cols)
    import scipy.sparse as sparse

    laplacian = sparse.csr_matrix(
        (np.concatenate([diagonal, -np.ones(len(rows_all))]),
         (np.concatenate([np.arange(n), rows_all]), np.concatenate([np.arange(n), cols_all]))),
        shape=(n, n),
    )
    return SeamSystem(laplacian, step, (ys, xs))


def solve_multigrid(laplacian: sparse.csr_matrix, step: np.ndarray) -> np.ndarray:
    """The correction for every channel of ``step``, from one multigrid hierarchy."""
    import pyamg

    hierarchy = pyamg.ruge_stuben_solver(laplacian)
    return np.stack([hierarchy.solve(step[:, c], tol=SOLVER_TOLERANCE, accel="cg")
                     for c in range(step.shape[1])], axis=1)


def blend_batch(composites: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """:func:`blend_seams` for each image of an N×H×W×C batch."""
    return np.stack([blend_seams(c, v) for c, v in zip(composites, valid, strict=True)])
