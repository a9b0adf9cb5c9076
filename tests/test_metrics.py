"""ℓ1 / PSNR / SSIM against references written out here from their definitions."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from skimage import data

from pconv_cli.errors import ConfigError, InputError, WeightsUnavailableError
from pconv_cli.metrics import (
    WIDTH_GROUPS,
    hole_l1_percent,
    hole_psnr,
    hole_region_widths,
    hole_width_groups,
    l1_percent,
    load_lpips,
    psnr,
    ssim,
)


def reference_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Wang et al. 2004: an 11×11 Gaussian window (σ 1.5, normalised), population variances,
    C1 = (0.01·L)², C2 = (0.03·L)² with L = 1, averaged over the windows that fit inside the
    image and over the channels."""
    radius = 5  # ⌊3.5·1.5 + 0.5⌋
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (t / 1.5) ** 2)
    kernel = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01**2, 0.03**2
    per_channel = []
    for c in range(x.shape[2]):
        wx = np.lib.stride_tricks.sliding_window_view(x[..., c], kernel.shape)
        wy = np.lib.stride_tricks.sliding_window_view(y[..., c], kernel.shape)

        def local(a: np.ndarray) -> np.ndarray:
            return np.einsum("ijkl,kl->ij", a, kernel)

        mx, my = local(wx), local(wy)
        vx = local(wx * wx) - mx**2
        vy = local(wy * wy) - my**2
        cxy = local(wx * wy) - mx * my
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        per_channel.append(s.mean())
    return float(np.mean(per_channel))


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    truth = data.astronaut()[100:148, 180:228].astype(np.float64) / 255.0
    rng = np.random.default_rng(0)
    noisy = np.clip(truth + rng.normal(0, 0.05, truth.shape), 0, 1)
    return noisy, truth


def test_l1_is_the_mean_absolute_error_of_the_whole_image_in_percent():
    truth = np.zeros((10, 10, 3))
    prediction = truth.copy()
    prediction[:5] = 0.25  # half the image off by 0.25 → 12.5 %
    assert l1_percent(prediction, truth) == pytest.approx(12.5)


def test_psnr_of_a_constant_error_of_a_tenth_is_20_db():
    truth = np.full((16, 16, 3), 0.5)
    assert psnr(truth + 0.1, truth) == pytest.approx(20.0)


def test_psnr_matches_its_formula_on_noise(pair):
    noisy, truth = pair
    mse = np.mean((noisy - truth) ** 2)
    assert psnr(noisy, truth) == pytest.approx(10 * np.log10(1 / mse), rel=1e-12)


def test_psnr_of_an_exact_reconstruction_is_infinite(pair):
    _, truth = pair
    assert psnr(truth, truth) == math.inf


def test_ssim_matches_the_gaussian_window_definition(pair):
    noisy, truth = pair
    assert ssim(noisy, truth) == pytest.approx(reference_ssim(noisy, truth), abs=1e-9)


def test_ssim_of_identical_images_is_one(pair):
    _, truth = pair
    assert ssim(truth, truth) == pytest.approx(1.0)


def test_ssim_refuses_images_smaller_than_its_window():
    tiny = np.zeros((10, 10, 3))
    with pytest.raises(InputError, match="SSIM window"):
        ssim(tiny, tiny)


def test_metrics_refuse_images_of_different_shapes():
    with pytest.raises(InputError, match="differ in shape"):
        l1_percent(np.zeros((12, 12, 3)), np.zeros((12, 13, 3)))


def test_lpips_without_its_package_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "lpips", None)  # import lpips now raises ImportError
    with pytest.raises(ConfigError, match=r"--lpips needs the lpips package.*'pconv\[lpips\]'"):
        load_lpips("cpu")


def test_lpips_with_local_weights_is_zero_for_identical_images(tmp_path, monkeypatch, pair):
    pytest.importorskip("lpips")
    import torch
    from torchvision.models import alexnet

    from pconv_cli.metrics import alexnet_weights_path

    # Random trunk weights in a private torchvision cache: this checks the loading path.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = alexnet_weights_path()
    path.parent.mkdir(parents=True)
    torch.save(alexnet(weights=None).state_dict(), path)
    scorer = load_lpips("cpu")
    noisy, truth = pair
    same, different = scorer(np.stack([truth, truth]), np.stack([truth, noisy]))
    assert same == pytest.approx(0.0, abs=1e-6)
    assert different > 0


def test_lpips_without_the_trunk_weights_is_one_line_naming_where_they_go(tmp_path,
                                                                          monkeypatch):
    pytest.importorskip("lpips")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsUnavailableError, match="AlexNet weights are not on this machine"):
        load_lpips("cpu")


def test_lpips_with_unreadable_trunk_weights_is_one_line(tmp_path, monkeypatch):
    pytest.importorskip("lpips")
    from pconv_cli.metrics import alexnet_weights_path

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = alexnet_weights_path()
    path.parent.mkdir(parents=True)
    for damaged in (b"not a state dict", b"junk"):  # refused by the unpickler, by struct
        path.write_bytes(damaged)
        with pytest.raises(WeightsUnavailableError, match="could not be loaded"):
            load_lpips("cpu")


# --------------------------------------------------------------------------- inside the holes


def test_hole_scores_average_over_the_hole_pixels_only():
    truth = np.full((20, 30, 3), 0.5)
    prediction = truth.copy()
    holes = np.zeros((20, 30), dtype=bool)
    holes[5:7, 4:24] = True  # 40 hole pixels of 600
    prediction[holes] += 0.1
    assert hole_l1_percent(prediction, truth, holes) == pytest.approx(10.0)
    assert hole_psnr(prediction, truth, holes) == pytest.approx(20.0)  # MSE 0.01
    # The whole-image scores dilute the same error by the hole's share of the image.
    assert l1_percent(prediction, truth) == pytest.approx(10.0 * 40 / 600)
    assert hole_psnr(truth, truth, holes) == math.inf


def test_hole_scores_refuse_a_mask_without_holes_or_of_another_size():
    image = np.zeros((8, 8, 3))
    with pytest.raises(InputError, match="at least one hole pixel"):
        hole_psnr(image, image, np.zeros((8, 8), dtype=bool))
    with pytest.raises(InputError, match="does not match"):
        hole_l1_percent(image, image, np.ones((4, 8), dtype=bool))


@pytest.mark.parametrize(("width", "measured", "group"), [
    (1, 1, "<=2px"), (2, 1, "<=2px"), (3, 3, "3-6px"), (4, 3, "3-6px"),
    (5, 5, "3-6px"), (6, 5, "3-6px"), (7, 7, ">6px"), (12, 11, ">6px"),
])
def test_a_straight_line_hole_measures_its_width(width, measured, group):
    for axis in (0, 1):
        valid = np.ones((40, 40), dtype=bool)
        if axis == 0:
            valid[5:35, 10:10 + width] = False
        else:
            valid[10:10 + width, 5:35] = False
        labels, widths = hole_region_widths(valid)
        assert widths.tolist() == [measured]
        groups = hole_width_groups(valid)
        labels_of_group = [label for label, _ in WIDTH_GROUPS]
        assert set(np.unique(groups[~valid])) == {labels_of_group.index(group)}
        assert (groups[valid] == -1).all()


def test_each_hole_region_gets_its_own_width_group():
    valid = np.ones((60, 60), dtype=bool)
    valid[5:55, 5] = False  # a hair
    valid[5:55, 20:24] = False  # a scratch
    yy, xx = np.mgrid[:60, :60]
    valid[(yy - 30) ** 2 + (xx - 45) ** 2 <= 36] = False  # a blot 13 px across
    groups = hole_width_groups(valid)
    assert set(np.unique(groups[:, 5][5:55])) == {0}
    assert set(np.unique(groups[5:55, 20:24])) == {1}
    assert groups[30, 45] == 2
    hair, scratch, blot = hole_region_widths(valid)[1]
    assert (hair, scratch) == (1.0, 3.0)
    assert 11.0 <= blot <= 13.0  # a digital disc: its inscribed radius is about 6


def test_a_diagonal_one_pixel_hair_is_thin():
    valid = np.ones((30, 30), dtype=bool)
    valid[np.arange(2, 28), np.arange(2, 28)] = False
    assert (hole_width_groups(valid)[~valid] == 0).all()


@pytest.mark.parametrize("seed", range(4))
def test_region_widths_equal_those_of_one_distance_transform_of_the_whole_mask(seed):
    from scipy import ndimage

    from pconv_cli.metrics import hole_region_widths

    rng = np.random.default_rng(seed)
    valid = ndimage.binary_opening(rng.random((70, 90)) > 0.25)  # holes of many sizes
    valid[0, :30] = False  # regions on the image's edges too
    valid[40:70, 85:] = False
    labels, widths = hole_region_widths(valid)
    distance = ndimage.distance_transform_edt(~valid)
    count = labels.max()
    expected = 2 * ndimage.maximum(distance, labels, index=np.arange(1, count + 1)) - 1
    np.testing.assert_array_equal(widths, expected)
