"""Poisson seam blending, against a dense solve of its defining equations."""

import numpy as np
import pytest

from pconv_cli.errors import ConfigError
from pconv_cli.seams import blend_batch, blend_seams, check_blend

NEIGHBOURS = ((0, 1), (0, -1), (1, 0), (-1, 0))


def dense_reference(composite: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """One equation per hole pixel p, written out neighbour by neighbour:
    Σ_n (f_p − f_n) = Σ_{n in hole} (g_p − g_n), with f_n the known pixel where n is known."""
    hole = [(y, x) for y in range(valid.shape[0]) for x in range(valid.shape[1])
            if not valid[y, x]]
    number = {p: i for i, p in enumerate(hole)}
    a = np.zeros((len(hole), len(hole)))
    b = np.zeros((len(hole), composite.shape[2]))
    g = composite.astype(np.float64)
    for (y, x), i in number.items():
        for dy, dx in NEIGHBOURS:
            ny, nx = y + dy, x + dx
            if not (0 <= ny < valid.shape[0] and 0 <= nx < valid.shape[1]):
                continue
            a[i, i] += 1
            if valid[ny, nx]:
                b[i] += g[ny, nx]
            else:
                a[i, number[(ny, nx)]] -= 1
                b[i] += g[y, x] - g[ny, nx]
    out = g.copy()
    out[~valid] = np.clip(np.linalg.solve(a, b), 0, 1)
    return out


def random_case(seed: int, shape=(9, 11)):
    rng = np.random.default_rng(seed)
    valid = rng.random(shape) > 0.55
    valid[0, 0] = True  # at least one known pixel
    image = rng.random((*shape, 3)).astype(np.float32)
    return image, valid


@pytest.mark.parametrize("seed", range(5))
def test_blending_solves_the_equations_written_out_by_hand(seed):
    composite, valid = random_case(seed)
    assert not valid[:, 0].all() or not valid[0].all()  # holes reach the image border too
    out = blend_seams(composite, valid)
    assert np.allclose(out, dense_reference(composite, valid), atol=1e-5)
    assert np.array_equal(out[valid], composite[valid])  # known pixels are never touched


def test_a_level_offset_in_a_flat_region_is_removed_exactly():
    valid = np.ones((24, 30), bool)
    valid[4:15, 6:22] = False
    valid[18:, 25:] = False  # a hole on the image corner
    composite = np.full((24, 30, 3), [0.2, 0.5, 0.7], np.float32)
    composite[~valid] += 0.15
    out = blend_seams(composite, valid)
    assert np.allclose(out, np.array([0.2, 0.5, 0.7], np.float32), atol=1e-6)


def test_the_fill_keeps_its_detail_and_loses_its_step():
    rng = np.random.default_rng(3)
    valid = np.ones((40, 40), bool)
    valid[10:30, 12:32] = False
    truth = np.full((40, 40, 1), 0.5, np.float32)
    detail = 0.1 * rng.standard_normal((40, 40, 1)).astype(np.float32)
    composite = truth.copy()
    composite[~valid] += 0.2 + detail[~valid]  # a fill with texture and a level error
    out = blend_seams(composite, valid)
    step_before = np.abs(composite - truth)[~valid].mean()
    step_after = np.abs(out - truth)[~valid].mean()
    assert step_after < 0.5 * step_before
    # The correction is smooth: neighbouring fill pixels keep their differences closely.
    inner = (slice(12, 28), slice(14, 30))
    kept = np.diff(out[inner], axis=1) - np.diff(composite[inner], axis=1)
    assert np.abs(kept).mean() < 0.1 * np.abs(np.diff(composite[inner], axis=1)).mean()


def test_nothing_known_or_nothing_missing_returns_the_input():
    composite = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
    for valid in (np.zeros((8, 8), bool), np.ones((8, 8), bool)):
        assert np.array_equal(blend_seams(composite, valid), composite)


def test_a_batch_is_blended_image_by_image():
    cases = [random_case(seed) for seed in (7, 8)]
    composites = np.stack([c for c, _ in cases])
    valid = np.stack([v for _, v in cases])
    out = blend_batch(composites, valid)
    for i, (c, v) in enumerate(cases):
        assert np.array_equal(out[i], blend_seams(c, v))
    assert composites.dtype == out.dtype == np.float32


def test_unknown_blend_choices_are_refused():
    assert check_blend("none") == "none"
    with pytest.raises(ConfigError, match="--blend soft: choose poisson or none"):
        check_blend("soft")
