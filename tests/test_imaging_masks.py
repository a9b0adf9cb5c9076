"""Mask files to library masks: white (255) = hole on disk, True = valid inside."""

from __future__ import annotations

import numpy as np
import pytest

from pconv_cli.imaging import hole_file_to_valid, valid_to_hole_file
from pconv_cli.imaging.masks import MASK_THRESHOLD


@pytest.mark.parametrize("dtype, scale", [(np.uint8, 255), (np.uint16, 65535),
                                          (np.float32, 255)])
def test_every_level_is_a_hole_from_mid_grey_up_whatever_the_pixel_type(dtype, scale):
    levels = np.linspace(0, scale, 1024).astype(dtype)
    expected_hole = levels.astype(np.float64) >= MASK_THRESHOLD / 255 * scale
    assert np.array_equal(hole_file_to_valid(levels), ~expected_hole)
    assert np.array_equal(hole_file_to_valid(levels, invert=True), expected_hole)


def test_of_several_channels_the_brightest_counts_and_the_round_trip_keeps_the_mask():
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[0, 0, 2] = 255  # a hole painted in blue only
    assert np.array_equal(hole_file_to_valid(rgb), np.array([[False, True], [True, True]]))
    valid = np.random.default_rng(0).random((5, 7)) > 0.3
    assert np.array_equal(hole_file_to_valid(valid_to_hole_file(valid)), valid)
