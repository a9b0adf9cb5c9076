"""ℓ1 / PSNR / SSIM against references written out here from their definitions."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from skimage import data

from pconv_cli.errors import ConfigError, InputError, WeightsUnavailableError
from pconv_cli.metrics import l1_percent, load_lpips, psnr, ssim


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
