"""The damage detector network, its loss, tiled detection and the mask it leads to."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from pconv_cli.core.detector import (
    DamageDetector,
    DetectionLoss,
    DetectionLossWeights,
    DetectorConfig,
)
from pconv_cli.detection import damage_mask, detect_probabilities, disk, tile_margin
from pconv_cli.errors import ConfigError, InputError


def tiny_detector(depth: int = 3, width: int = 4, seed: int = 0) -> DamageDetector:
    torch.manual_seed(seed)
    model = DamageDetector(DetectorConfig(depth=depth, width=width))
    # A trained head, not the rare-damage prior, so outputs vary with the input.
    torch.nn.init.normal_(model.head.weight, std=1.0)
    torch.nn.init.zeros_(model.head.bias)
    return model.eval()


def test_output_is_one_logit_per_pixel():
    model = tiny_detector()
    logits = model(torch.rand(2, 3, 32, 48))
    assert logits.shape == (2, 1, 32, 48)


def test_size_off_the_grid_is_refused_with_the_multiple():
    with pytest.raises(ConfigError, match="multiple of 8"):
        tiny_detector()(torch.rand(1, 3, 30, 32))


def test_untrained_detector_starts_near_a_one_percent_prior():
    model = DamageDetector(DetectorConfig(depth=2, width=4)).eval()
    prob = torch.sigmoid(model(torch.rand(1, 3, 16, 16)))
    assert torch.allclose(prob, torch.full_like(prob, 0.01), atol=1e-3)


def test_config_round_trips_and_refuses_unknown_settings():
    config = DetectorConfig(depth=3, width=6, max_width_factor=4)
    assert DetectorConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="unknown detector settings"):
        DetectorConfig.from_dict({**config.to_dict(), "heads": 2})


@torch.inference_mode()
def test_pixels_beyond_the_receptive_radius_change_nothing():
    model = tiny_detector(depth=3)
    radius = model.config.receptive_radius()
    size = 2 * radius + 24
    size += (-size) % model.config.multiple
    image = torch.rand(1, 3, size, size)
    centre = size // 2
    base = model(image)[0, 0, centre, centre]

    far = image.clone()
    far[..., centre, centre + radius + 1] = 1 - far[..., centre, centre + radius + 1]
    far[..., centre - radius - 1, centre] = 1 - far[..., centre - radius - 1, centre]
    assert torch.allclose(model(far)[0, 0, centre, centre], base, atol=1e-6)

    near = image.clone()
    near[..., centre, centre + 2] = 1 - near[..., centre, centre + 2]
    assert not torch.allclose(model(near)[0, 0, centre, centre], base, atol=1e-6)


@pytest.mark.parametrize("shape", [(150, 230), (40, 41), (7, 300)])
def test_tiles_agree_with_one_pass_over_the_whole_image(shape):
    model = tiny_detector(depth=3)
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    whole = detect_probabilities(model, image, tile=10_000)
    tiled = detect_probabilities(model, image, tile=16)
    assert whole.shape == shape and whole.dtype == np.float32
    np.testing.assert_allclose(tiled, whole, atol=2e-6)
    assert 16 + 2 * tile_margin(model) < 10_000  # the small tiles really were tiles


def test_uint8_uint16_float_and_grey_inputs_give_the_same_probabilities():
    model = tiny_detector()
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    reference = detect_probabilities(model, image)
    as_float = detect_probabilities(model, image.astype(np.float32) / 255)
    as_16 = detect_probabilities(model, image.astype(np.uint16) * 257)
    np.testing.assert_allclose(as_float, reference, atol=1e-6)
    np.testing.assert_allclose(as_16, reference, atol=1e-6)
    grey = image[..., 0]
    np.testing.assert_allclose(detect_probabilities(model, grey),
                               detect_probabilities(model, np.stack([grey] * 3, -1)), atol=1e-6)


def test_a_non_image_array_is_refused():
    with pytest.raises(InputError, match="H×W×3"):
        detect_probabilities(tiny_detector(), np.zeros((4, 4, 4, 3)))


def test_loss_prefers_the_true_mask_and_counts_thin_damage():
    target = torch.zeros(2, 1, 32, 32)
    target[0, 0, 10, 3:29] = 1  # a one-pixel hair: about 2.5 % of one image
    right = torch.where(target > 0, 10.0, -10.0)
    loss = DetectionLoss()
    good = loss(right, target)
    missed = loss(torch.full_like(target, -10.0), target)
    assert good["total"] < 0.05
    assert missed["dice"] > 0.95  # finding nothing scores as badly as Dice can
    assert missed["total"] > 10 * good["total"]


def test_loss_weights_scale_their_terms():
    logits, target = torch.randn(1, 1, 8, 8), (torch.rand(1, 1, 8, 8) > 0.8).float()
    terms = DetectionLoss(DetectionLossWeights(bce=0.0, dice=2.0))(logits, target)
    assert torch.allclose(terms["total"], 2 * terms["dice"])


def test_mask_thresholds_and_counts_8_connected_regions():
    prob = np.zeros((20, 20), np.float32)
    prob[2, 2] = prob[3, 3] = 0.9  # diagonal neighbours: one region
    prob[10:12, 10:15] = 0.7
    prob[15, 15] = 0.4  # below the threshold
    found = damage_mask(prob, threshold=0.5)
    assert found.regions == 2
    assert found.mask.sum() == 12
    assert found.fraction == pytest.approx(12 / 400)


def test_min_area_drops_small_regions_only():
    prob = np.zeros((30, 30), np.float32)
    prob[1, 1] = 1.0
    prob[5:7, 5:7] = 1.0
    prob[20, 2:28] = 1.0
    found = damage_mask(prob, min_area=4)
    labels, _ = ndimage.label(prob > 0.5, structure=np.ones((3, 3)))
    sizes = np.bincount(labels.ravel())
    expected = np.isin(labels, [i for i in range(1, len(sizes)) if sizes[i] >= 4])
    np.testing.assert_array_equal(found.mask, expected)
    assert found.regions == 2


def test_grow_is_a_dilation_by_a_euclidean_disk():
    rng = np.random.default_rng(3)
    prob = (rng.random((25, 31)) > 0.97).astype(np.float32)
    grown = damage_mask(prob, grow=3).mask
    # Brute force: a pixel is marked if any marked pixel lies within distance 3.
    ys, xs = np.nonzero(prob > 0.5)
    yy, xx = np.mgrid[:25, :31]
    expected = np.zeros_like(grown)
    for y, x in zip(ys, xs, strict=True):
        expected |= (yy - y) ** 2 + (xx - x) ** 2 <= 9
    np.testing.assert_array_equal(grown, expected)
    assert disk(3).sum() == 29


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"threshold": 1.0}, "threshold"), ({"threshold": 0.0}, "threshold"),
    ({"grow": -1}, "grow"), ({"min_area": -2}, "min_area"),
])
def test_bad_mask_settings_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        damage_mask(np.zeros((4, 4), np.float32), **kwargs)
