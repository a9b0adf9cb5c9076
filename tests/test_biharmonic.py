"""pconv's biharmonic fill against scikit-image's inpaint_biharmonic, the reference it
reproduces: same equations, same solver; the clip is to the range of the known pixels the fill
reads, where scikit-image takes every known pixel of the image."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.restoration import inpaint_biharmonic

from pconv_cli.biharmonic import biharmonic_fill


def scene(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / 9.0
    image = np.stack([0.5 + 0.35 * np.sin(x * (c + 1) + y) for c in range(3)], axis=-1)
    return np.clip(image + 0.2 * rng.random(image.shape), 0, 1)


def holes(height: int, width: int, seed: int) -> np.ndarray:
    """Specks, hairs and blotches, some touching the border and a corner."""
    rng = np.random.default_rng(seed)
    valid = rng.random((height, width)) > 0.03  # single-pixel specks everywhere
    valid[height // 2, 3:width - 3] = False  # a hair
    valid[:3, :4] = False  # the corner
    valid[height - 2:, width // 3:width // 3 + 6] = False  # on the bottom edge
    valid[10:16, width - 1] = False  # on the right edge
    valid[20:27, 30:36] = False  # a blotch
    return valid


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_fill_is_scikit_images_at_every_hole_pixel(seed):
    image, valid = scene(48, 64, seed), holes(48, 64, seed)
    reference = inpaint_biharmonic(image, ~valid, channel_axis=-1)
    ys, xs = np.nonzero(~valid)
    everything = (image[valid].min(axis=0), image[valid].max(axis=0))  # scikit-image's clip
    np.testing.assert_allclose(biharmonic_fill(image, valid, known_range=everything),
                               reference[ys, xs], atol=1e-9)


def test_a_grey_image_and_integer_pixels_fill_like_floats():
    image, valid = scene(40, 50, 4), holes(40, 50, 4)
    grey = image[..., :1]
    reference = inpaint_biharmonic(grey[..., 0], ~valid)
    ys, xs = np.nonzero(~valid)
    everything = (grey[valid].min(axis=0), grey[valid].max(axis=0))
    np.testing.assert_allclose(biharmonic_fill(grey, valid, known_range=everything)[:, 0],
                               reference[ys, xs], atol=1e-9)
    as_uint8 = np.round(image * 255).astype(np.uint8)
    np.testing.assert_allclose(biharmonic_fill(as_uint8, valid),
                               biharmonic_fill(as_uint8.astype(np.float64), valid), atol=1e-9)


def test_the_fill_is_clipped_to_the_range_of_the_known_pixels_it_reads():
    x = np.arange(30, dtype=np.float64)
    image = np.broadcast_to((1 - np.abs(x - 15) / 15)[None, :, None], (30, 30, 1)).copy()
    image[0, 0] = 5.0  # far from the hole: not read, not part of the range
    valid = np.ones((30, 30), dtype=bool)
    valid[:, 9:22] = False  # the tent's ridge is in the hole: the fill rises above its rim
    rim = image[:, [7, 8, 22, 23], 0]
    unclipped = biharmonic_fill(image, valid, known_range=(np.full(1, -9.0), np.full(1, 9.0)))
    assert unclipped.max() > rim.max() + 0.01
    fill = biharmonic_fill(image, valid)
    assert fill.max() == pytest.approx(rim.max()) and fill.min() >= 0.0


def test_nothing_known_is_refused_and_nothing_to_fill_is_empty():
    with pytest.raises(ValueError, match="no known pixel"):
        biharmonic_fill(np.zeros((4, 4, 3)), np.zeros((4, 4), dtype=bool))
    assert biharmonic_fill(np.zeros((4, 4, 3)), np.ones((4, 4), dtype=bool)).shape == (0, 3)


def test_a_wanted_subset_is_filled_as_in_the_whole_solve_and_never_reads_a_hole():
    """Only the wanted pixels are returned; holes their stencils reach (a blotch 2 px from the
    hair) are solved for with them, so the hair's fill is the whole solve's; farther holes are
    left out and do not change it."""
    image = scene(60, 80, 7)
    valid = np.ones((60, 80), dtype=bool)
    valid[30, 5:70] = False  # a hair
    valid[33:45, 20:35] = False  # a blotch 2 px below it
    valid[5:12, 60:75] = False  # a blotch far from it
    wanted = np.zeros_like(valid)
    wanted[30, 5:70] = True
    whole = biharmonic_fill(image, valid)
    at_hair = np.isin(np.flatnonzero(~valid), np.flatnonzero(wanted))
    np.testing.assert_allclose(biharmonic_fill(image, valid, wanted), whole[at_hair], atol=1e-9)
    garbage = image.copy()
    garbage[5:12, 60:75] = 7.0  # the far blotch's pixels are never read
    garbage[33:45, 20:35] = -3.0  # nor the near one's: they are unknowns
    np.testing.assert_allclose(biharmonic_fill(garbage, valid, wanted,
                                               known_range=(np.zeros(3), np.ones(3))),
                               whole[at_hair], atol=1e-9)
