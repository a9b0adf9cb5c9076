"""Training data: crops resampled from the crop's own region, decoded photos kept in memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from pconv_cli import data as data_module
from pconv_cli.data import DecodedImages, random_rescale_crop, rescale_then_crop


@pytest.mark.parametrize("photo_scale", [1, 6])  # downscales by up to 3× and by up to 18×
def test_a_random_crop_matches_rescaling_the_whole_photo(photo_scale):
    photo = Image.fromarray(data.astronaut()).resize((512 * photo_scale, 384 * photo_scale))
    for seed in range(12):
        fast = np.asarray(random_rescale_crop(photo, 128, np.random.default_rng(seed)), np.int16)
        slow = np.asarray(rescale_then_crop(photo, 128, np.random.default_rng(seed)), np.int16)
        assert fast.shape == (128, 128, 3)
        assert np.abs(fast - slow).max() <= 3
        assert np.abs(fast - slow).mean() < 0.25


def test_a_photo_as_small_as_the_crop_is_cut_not_resampled():
    photo = Image.fromarray(data.astronaut()[:128, :200])
    crop = random_rescale_crop(photo, 128, np.random.default_rng(0))
    x = next(x for x in range(73) if np.array_equal(np.asarray(crop),
                                                     np.asarray(photo)[:, x:x + 128]))
    assert 0 <= x <= 72


def write_photos(folder: Path, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        path = folder / f"{i}.png"
        Image.fromarray(np.roll(data.astronaut()[:100, :120], 7 * i, axis=1)).save(path)
        paths.append(path)
    return paths


def test_decoded_photos_are_kept_and_are_what_decoding_gives(tmp_path, monkeypatch):
    paths = write_photos(tmp_path, 2)
    decodes: list[Path] = []
    real_open = data_module._open_rgb
    monkeypatch.setattr(data_module, "_open_rgb", lambda p: decodes.append(p) or real_open(p))
    cache = DecodedImages()
    first = [np.asarray(cache.open(p)) for p in paths]
    again = [np.asarray(cache.open(p)) for p in paths]
    assert decodes == paths  # decoded once each
    for a, b, p in zip(first, again, paths, strict=True):
        assert np.array_equal(a, b) and np.array_equal(a, np.asarray(Image.open(p)))


def test_the_least_recently_used_photo_leaves_first_and_a_too_large_one_is_not_kept(
        tmp_path, monkeypatch):
    a, b, c = write_photos(tmp_path, 3)
    decodes: list[Path] = []
    real_open = data_module._open_rgb
    monkeypatch.setattr(data_module, "_open_rgb", lambda p: decodes.append(p) or real_open(p))
    cache = DecodedImages(max_bytes=2 * 100 * 120 * 3)  # room for two
    for path in (a, b, a, c):  # c pushes out b, the least recently used
        cache.open(path)
    decodes.clear()
    cache.open(a), cache.open(c)
    assert decodes == []
    cache.open(b)
    assert decodes == [b]
    tiny = DecodedImages(max_bytes=100)
    tiny.open(a), tiny.open(a)
    assert decodes == [b, a, a]


def test_the_hold_out_is_capped_and_the_rest_is_trained_on():
    files = [Path(f"{i}.png") for i in range(40)]
    train, val = data_module.split_validation(files, 0.5, seed=1, max_images=16)
    assert len(val) == 16 and len(train) == 24
    assert sorted(train + val) == sorted(files)
    assert data_module.split_validation(files, 0.5, seed=1, max_images=16) == (train, val)
    assert len(data_module.split_validation(files, 0.05, seed=1, max_images=16)[1]) == 2
