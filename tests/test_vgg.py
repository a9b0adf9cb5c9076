"""VGG-16 features for the loss, loaded from local files: never downloaded in tests."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from torchvision.models import vgg16

from pconv_cli.core import (
    VGG16_FILE,
    VGG_WEIGHTS_ENV,
    InpaintingLoss,
    LossWeights,
    VGG16Features,
    load_vgg16,
)
from pconv_cli.errors import WeightsUnavailableError

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@pytest.fixture(scope="session")
def core_vgg_features_state() -> dict[str, torch.Tensor]:
    """The ``features.*`` tensors of ``vgg16(weights=None)``, with seeded random values.

    Only the convolutional part (59 MB, against 528 MB for the whole network): that is all
    the loss needs. Built on the meta device and filled here, to skip initialising the
    classifier.
    """
    with torch.device("meta"):
        layout = vgg16(weights=None).state_dict()
    g = torch.Generator().manual_seed(0)
    return {
        k: torch.randn(v.shape, generator=g) * 0.05
        for k, v in layout.items() if k.startswith("features.")
    }


@pytest.fixture(scope="session")
def core_vgg_file(tmp_path_factory, core_vgg_features_state) -> Path:
    path = tmp_path_factory.mktemp("vgg") / VGG16_FILE
    torch.save(core_vgg_features_state, path)
    return path


@pytest.fixture(autouse=True)
def core_no_vgg_sources(tmp_path, monkeypatch):
    """No weights from the environment or a real torchvision cache leak into a test."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(VGG_WEIGHTS_ENV, raising=False)


def assert_has_weights(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    loaded = model.state_dict()
    for name, tensor in state.items():
        assert torch.equal(loaded[name], tensor), name


def test_weights_load_from_a_given_file(core_vgg_file, core_vgg_features_state):
    model = load_vgg16(core_vgg_file, allow_download=False)

    assert_has_weights(model, core_vgg_features_state)


def test_weights_load_from_the_environment_variable(
    core_vgg_file, core_vgg_features_state, monkeypatch
):
    monkeypatch.setenv(VGG_WEIGHTS_ENV, str(core_vgg_file))

    model = load_vgg16(allow_download=False)

    assert_has_weights(model, core_vgg_features_state)


def test_given_file_takes_precedence_over_the_environment_variable(
    core_vgg_file, core_vgg_features_state, tmp_path, monkeypatch
):
    other = {k: torch.zeros_like(v) for k, v in core_vgg_features_state.items()}
    other_file = tmp_path / "other.pth"
    torch.save(other, other_file)
    monkeypatch.setenv(VGG_WEIGHTS_ENV, str(other_file))

    model = load_vgg16(core_vgg_file, allow_download=False)

    assert_has_weights(model, core_vgg_features_state)


def test_weights_load_from_torchvision_cache(core_vgg_file, core_vgg_features_state, tmp_path):
    checkpoints = tmp_path / "torch-home" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / VGG16_FILE).symlink_to(core_vgg_file)

    model = load_vgg16(allow_download=False)

    assert_has_weights(model, core_vgg_features_state)


def test_state_dict_of_vgg_features_module_without_prefix_loads(
    core_vgg_features_state, tmp_path
):
    path = tmp_path / "features-only.pth"
    torch.save({k.removeprefix("features."): v for k, v in core_vgg_features_state.items()}, path)

    model = load_vgg16(path, allow_download=False)

    assert_has_weights(model, core_vgg_features_state)


def test_features_only_file_leaves_no_random_classifier(core_vgg_file):
    model = load_vgg16(core_vgg_file, allow_download=False)

    assert all(p.is_meta for p in model.classifier.parameters())
    assert not any(p.is_meta for p in model.features.parameters())


def test_missing_file_names_the_torchvision_file_and_the_pixel_only_alternative(tmp_path):
    missing = tmp_path / "nowhere" / VGG16_FILE

    with pytest.raises(WeightsUnavailableError) as info:
        load_vgg16(missing)

    message = str(info.value)
    assert str(missing) in message and "does not exist" in message
    assert VGG16_FILE in message and "IMAGENET1K_V1" in message
    assert "--perceptual-weight 0 --style-weight 0" in message
    assert "\n" not in message


def test_environment_variable_naming_a_missing_file_is_reported(tmp_path, monkeypatch):
    missing = tmp_path / "gone.pth"
    monkeypatch.setenv(VGG_WEIGHTS_ENV, str(missing))

    with pytest.raises(WeightsUnavailableError, match="gone.pth does not exist"):
        load_vgg16()


def test_nothing_cached_and_download_not_allowed_is_a_clear_error():
    with pytest.raises(WeightsUnavailableError) as info:
        load_vgg16(allow_download=False)

    message = str(info.value)
    assert "no file given and none cached" in message
    assert VGG16_FILE in message and VGG_WEIGHTS_ENV in message and "--vgg-weights" in message


def test_malicious_pickle_is_refused_and_runs_no_code(tmp_path):
    marker = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    path = tmp_path / VGG16_FILE
    torch.save({"features.0.weight": Payload()}, path)

    with pytest.raises(WeightsUnavailableError, match="cannot read VGG-16 weights") as info:
        load_vgg16(path)

    assert not marker.exists()
    assert "\n" not in str(info.value)


def test_plain_pickle_is_refused_and_runs_no_code(tmp_path):
    marker = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    path = tmp_path / VGG16_FILE
    path.write_bytes(pickle.dumps({"features.0.weight": Payload()}, protocol=2))

    with pytest.raises(WeightsUnavailableError, match="cannot read VGG-16 weights"):
        load_vgg16(path)

    assert not marker.exists()


def test_tensors_of_wrong_shape_are_a_clear_error(core_vgg_features_state, tmp_path):
    path = tmp_path / "wrong.pth"
    state = dict(core_vgg_features_state)
    state["features.0.weight"] = torch.zeros(8, 3, 3, 3)
    torch.save(state, path)

    with pytest.raises(WeightsUnavailableError, match="not a torchvision VGG-16 state_dict"):
        load_vgg16(path)


def test_file_without_feature_tensors_is_a_clear_error(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, path)

    with pytest.raises(WeightsUnavailableError, match="lacks 25 feature tensors"):
        load_vgg16(path)


def test_file_that_is_not_a_dict_is_a_clear_error(tmp_path):
    path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), path)

    with pytest.raises(WeightsUnavailableError, match="not a VGG-16 state_dict"):
        load_vgg16(path)


def test_features_are_pool1_pool2_pool3_of_the_normalised_image(core_vgg_file):
    vgg = load_vgg16(core_vgg_file)
    extractor = VGG16Features(vgg)
    image = torch.rand(2, 3, 32, 48)

    with torch.no_grad():
        feats = extractor(image)
        x = (image - IMAGENET_MEAN) / IMAGENET_STD
        pool1 = vgg.features[:5](x)
        pool2 = vgg.features[5:10](pool1)
        pool3 = vgg.features[10:17](pool2)

    assert [tuple(f.shape) for f in feats] == [(2, 64, 16, 24), (2, 128, 8, 12), (2, 256, 4, 6)]
    for got, expected in zip(feats, (pool1, pool2, pool3), strict=True):
        torch.testing.assert_close(got, expected)


def test_feature_extractor_stays_frozen_in_eval_mode(core_vgg_file):
    extractor = VGG16Features(load_vgg16(core_vgg_file))
    image = torch.rand(1, 3, 16, 16, requires_grad=True)

    extractor.train()
    sum(f.sum() for f in extractor(image)).backward()

    assert not extractor.training and not any(m.training for m in extractor.modules())
    assert all(not p.requires_grad and p.grad is None for p in extractor.parameters())
    assert image.grad is not None and bool(image.grad.abs().sum() > 0)


def test_loss_builds_vgg_features_from_a_weights_file(core_vgg_file):
    loss = InpaintingLoss(vgg_weights=core_vgg_file, allow_download=False)
    g = torch.Generator().manual_seed(0)
    output, target = torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 3, 32, 32, generator=g)
    mask = (torch.rand(2, 1, 32, 32, generator=g) > 0.3).float()

    terms = loss(output, target, mask)

    assert isinstance(loss.features, VGG16Features)
    assert terms["perceptual"].item() > 0 and terms["style_out"].item() > 0
    assert bool(torch.isfinite(terms["total"]))


def test_loss_with_feature_terms_and_no_weights_is_an_error_not_random_vgg():
    with pytest.raises(WeightsUnavailableError, match=VGG16_FILE):
        InpaintingLoss(LossWeights(), allow_download=False)


def test_style_term_alone_still_needs_vgg():
    with pytest.raises(WeightsUnavailableError):
        InpaintingLoss(LossWeights(perceptual=0.0), allow_download=False)
