"""Inpainters: grey images are filled in grey and flip ensembles average mirrored model calls,
by the torch and the ONNX Runtime backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data

from pconv_cli.core import composite, crop_to, pad_to_multiple
from pconv_cli.errors import ConfigError, InputError
from pconv_cli.export import export_onnx
from pconv_cli.imaging import LUMA_601, to_uint8
from pconv_cli.inference import (
    GREY_TOLERANCE,
    OnnxInpainter,
    TorchInpainter,
    is_grey,
    load_inpainter,
)
from pconv_cli.seams import blend_seams


def grey_photo() -> np.ndarray:
    """camera(), 64×96, as three equal channels in [0, 1]."""
    grey = data.camera()[100:164, 200:296].astype(np.float32) / 255
    return np.repeat(grey[..., None], 3, axis=2)


def colour_photo() -> np.ndarray:
    return data.astronaut()[100:164, 200:296].astype(np.float32) / 255


def holes(shape=(64, 96)) -> np.ndarray:
    valid = np.ones(shape, bool)
    valid[10:30, 20:50] = False
    valid[40:60, 60:90] = False
    return valid


@pytest.fixture(scope="module")
def onnx_model(checkpoint, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    export_onnx(checkpoint, path)
    return path


def test_is_grey_tells_grey_from_colour_and_allows_jpeg_noise():
    valid = holes()
    grey = grey_photo()
    assert is_grey(grey, valid)
    rng = np.random.default_rng(0)
    noisy = np.clip(grey + rng.uniform(-1, 1, grey.shape) * GREY_TOLERANCE / 2, 0, 1)
    assert is_grey(noisy, valid)
    assert not is_grey(colour_photo(), valid)
    tinted = grey.copy()
    tinted[:8, :, 0] += 0.1  # a coloured strip, 12% of the pixels
    assert not is_grey(tinted, valid)
    assert not is_grey(grey, np.zeros_like(valid))  # nothing known: no evidence


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_grey_images_get_grey_fills_and_colour_images_keep_colour(backend, checkpoint,
                                                                  onnx_model):
    torch.manual_seed(0)
    inpainter = (TorchInpainter.from_checkpoint(checkpoint, device="cpu") if backend == "torch"
                 else OnnxInpainter(onnx_model, device="cpu"))
    valid = holes()
    images = np.stack([grey_photo(), colour_photo()])
    valids = np.stack([valid, valid])
    out = inpainter.inpaint(images * valids[..., None], valids)

    grey_out, colour_out = out
    assert np.array_equal(grey_out[valid], images[0][valid])  # known pixels untouched
    fill = grey_out[~valid]
    assert np.allclose(fill[:, 0], fill[:, 1]) and np.allclose(fill[:, 1], fill[:, 2])
    spread = colour_out[~valid].max(axis=1) - colour_out[~valid].min(axis=1)
    assert spread.max() > 0.01  # a random-weight net tints its fills; colour images keep that


def test_grey_fill_is_the_luma_of_the_prediction(checkpoint):
    inpainter = TorchInpainter.from_checkpoint(checkpoint, device="cpu")
    image, valid = grey_photo(), holes()
    out = inpainter.inpaint(image[None], valid[None])[0]
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    m = torch.from_numpy(valid.astype(np.float32))[None, None]
    with torch.inference_mode():
        raw = inpainter.model(x * m, m).clamp(0, 1)
    expected = blend_seams(composite(x, raw, m)[0].permute(1, 2, 0).numpy(), valid)
    luma = expected[~valid] @ LUMA_601
    assert np.allclose(out[~valid], luma[:, None], atol=1e-5)
    assert not np.allclose(expected[~valid], luma[:, None], atol=1e-3)  # it was tinted


def test_seam_blending_follows_the_model_and_can_be_turned_off(checkpoint):
    image, valid = colour_photo(), holes()
    masked = (image * valid[..., None])[None]
    raw = TorchInpainter.from_checkpoint(checkpoint, device="cpu", blend="none")
    blended = TorchInpainter.from_checkpoint(checkpoint, device="cpu")
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    m = torch.from_numpy(valid.astype(np.float32))[None, None]
    with torch.inference_mode():
        expected = composite(x, raw.model(x * m, m).clamp(0, 1), m)[0].permute(1, 2, 0).numpy()
    raw_out = raw.inpaint(masked, valid[None])[0]
    assert np.allclose(raw_out, expected, atol=1e-5)
    assert np.allclose(blended.inpaint(masked, valid[None])[0], blend_seams(raw_out, valid),
                       atol=1e-5)
    assert (raw.backend, blended.backend) == ("torch cpu", "torch cpu, Poisson blend")
    with pytest.raises(ConfigError, match="--blend soft"):
        load_inpainter(model=checkpoint, device="cpu", blend="soft")


def mirrored_mean(model, image: np.ndarray, valid: np.ndarray, members) -> np.ndarray:
    """Brute force: the model on each copy (mirrored over ``dims``, then transposed if asked;
    padded, as the inpainter pads), mapped back, averaged, composited with the known pixels."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    m = torch.from_numpy(valid.astype(np.float32))[None, None]

    def there(t, dims, transposed):
        t = t.flip(dims) if dims else t
        return t.transpose(2, 3) if transposed else t

    def back(t, dims, transposed):
        t = t.transpose(2, 3) if transposed else t
        return t.flip(dims) if dims else t

    outputs = []
    with torch.inference_mode():
        for dims, transposed in members:
            fx, fm = there(x, dims, transposed), there(m, dims, transposed)
            padded, padded_mask, size = pad_to_multiple(fx * fm, fm, model.config.multiple)
            out = crop_to(model(padded, padded_mask), size).clamp(0, 1)
            outputs.append(back(out, dims, transposed))
    mean = torch.stack(outputs).mean(0)
    return composite(x, mean, m)[0].permute(1, 2, 0).numpy()


MIRRORS = [(), (3,), (2,), (2, 3)]


@pytest.mark.parametrize(("flips", "members"), [
    (2, [(dims, False) for dims in MIRRORS[:2]]),
    (4, [(dims, False) for dims in MIRRORS]),
    (8, [(dims, transposed) for transposed in (False, True) for dims in MIRRORS]),
])
def test_a_flip_ensemble_is_the_mean_of_the_model_on_mirrored_copies(checkpoint, flips,
                                                                     members):
    image = colour_photo()[:60, :90]  # not a multiple of 8, not square: copies are padded
    valid = holes((60, 90))
    single = TorchInpainter.from_checkpoint(checkpoint, device="cpu")
    ensemble = TorchInpainter.from_checkpoint(checkpoint, device="cpu", flips=flips)
    out = ensemble.inpaint((image * valid[..., None])[None], valid[None])[0]

    expected = blend_seams(mirrored_mean(ensemble.model, image, valid, members), valid)
    assert np.allclose(out, expected, atol=1e-5)  # float32 sums in another order
    assert np.array_equal(out[valid], image[valid])  # known pixels are the input's, exactly
    alone = single.inpaint((image * valid[..., None])[None], valid[None])[0]
    assert np.abs(out - alone)[~valid].max() > 1e-3  # the mirrored copies do disagree
    assert ensemble.backend == f"torch cpu, {flips} flips, Poisson blend"


@pytest.mark.parametrize("flips", [4, 8])
def test_onnx_runtime_flip_ensemble_matches_torch(checkpoint, onnx_model, flips):
    images = np.stack([colour_photo(), grey_photo()])  # 64×96: the transposes are 96×64
    valid = np.stack([holes(), holes()])
    masked = images * valid[..., None]
    torch_out = TorchInpainter.from_checkpoint(checkpoint, device="cpu", flips=flips).inpaint(
        masked, valid)
    ort = OnnxInpainter(onnx_model, device="cpu", flips=flips)
    ort_out = ort.inpaint(masked, valid)
    assert np.allclose(ort_out, torch_out, atol=1e-4)
    assert ort.backend == f"onnxruntime CPUExecutionProvider, {flips} flips, Poisson blend"
    fill = ort_out[1][~valid[1]]  # grey fills survive the ensemble
    assert np.allclose(fill[:, 0], fill[:, 2])


@pytest.mark.parametrize("flips", [0, 3, 16])
def test_other_flip_counts_are_refused(checkpoint, flips):
    with pytest.raises(ConfigError, match="choose 1 .* 2, 4 or 8"):
        load_inpainter(model=checkpoint, device="cpu", flips=flips)


@pytest.fixture(scope="module")
def inpainter(checkpoint):
    return load_inpainter(model=checkpoint, device="cpu")


def test_uint8_images_are_filled_as_their_float_values_and_come_back_uint8(inpainter):
    photo = (colour_photo() * 255).round().astype(np.uint8)
    valid = holes()
    expected = inpainter.inpaint(photo[None].astype(np.float32) / 255, valid[None])
    out = inpainter.inpaint(photo[None], valid[None])
    assert out.dtype == np.uint8 and out.shape == photo[None].shape
    assert np.array_equal(out, to_uint8(expected))
    assert np.array_equal(out[0][valid], photo[valid])  # known pixels exactly the input's
    assert out[0][~valid].mean() > 40  # not the near-black fill of 0-255 read as [0, 1]


def test_one_image_with_one_mask_gives_one_image(inpainter):
    image, valid = colour_photo(), holes()
    batch = inpainter.inpaint(image[None], valid[None])
    single = inpainter.inpaint(image, valid)
    assert single.shape == image.shape and single.dtype == np.float32
    assert np.array_equal(single, batch[0])
    as_uint8 = inpainter.inpaint(to_uint8(image), valid)
    assert as_uint8.shape == image.shape and as_uint8.dtype == np.uint8


def test_masks_may_be_bool_or_0_1_numbers_or_one_mask_for_a_batch(inpainter):
    images = np.stack([colour_photo(), grey_photo()])
    valid = np.stack([holes(), holes()])
    expected = inpainter.inpaint(images, valid)
    for mask in (valid.astype(np.uint8), valid.astype(np.float32), valid.astype(np.int64)):
        assert np.array_equal(inpainter.inpaint(images, mask), expected)
    assert np.array_equal(inpainter.inpaint(images, holes()), expected)  # shared H×W mask
    assert np.array_equal(inpainter.inpaint(images, valid[..., None]), expected)  # N×H×W×1
    one = inpainter.inpaint(images[:1], valid[:1])[0]
    assert np.array_equal(inpainter.inpaint(images[0], valid[0, ..., None]), one)  # H×W×1
    assert np.array_equal(inpainter.inpaint(images.astype(np.float64), valid), expected)


@pytest.mark.parametrize(("images", "valid", "message"), [
    (colour_photo() * 255, holes(), r"float images must lie in \[0, 1\], found values from 0 "),
    (np.full((64, 96, 3), np.nan, np.float32), holes(), "NaN or infinite"),
    ((colour_photo() * 255).astype(np.int64), holes(), "uint8 .* or float .* got dtype int64"),
    (grey_photo()[..., 0], holes(), r"H×W×3 .* got shape \(64, 96\); convert grey"),
    (np.zeros((64, 96, 4), np.float32), holes(), r"got shape \(64, 96, 4\)"),
    (np.zeros((1, 2, 64, 96, 3), np.float32), holes(), "H×W×3 .* or N×H×W×3"),
    (colour_photo(), holes().astype(np.uint8) * 255, "0/1 .* mask_image < 128"),
    (colour_photo(), holes().astype(str), "bool or 0/1 numbers, got dtype <U"),
    (colour_photo(), holes((60, 96)), "mask size 96x60 differs from image size 96x64"),
    (colour_photo(), holes()[None], r"one H×W×3 image takes an H×W mask, got .* \(1, 64, 96\)"),
    (np.stack([colour_photo()] * 2), np.stack([holes()] * 3), "3 masks for 2 images"),
    (np.stack([colour_photo()] * 2), np.zeros((2, 64, 96, 2), bool), r"N×H×W masks .* 2\)"),
])
def test_unusable_inputs_are_refused_with_a_clear_message(inpainter, images, valid, message):
    with pytest.raises(InputError, match=message):
        inpainter.inpaint(images, valid)


@pytest.fixture(scope="module")
def static_models(checkpoint, tmp_path_factory) -> dict[str, Path]:
    """Fixed-size exports: 24 wide and 16 high, and 24×24."""
    folder = tmp_path_factory.mktemp("static")
    return {"wide": export_onnx(checkpoint, folder / "wide.onnx", static_size=(16, 24)).path,
            "square": export_onnx(checkpoint, folder / "square.onnx", static_size=(24, 24)).path}


def test_flips_8_with_a_fixed_non_square_model_is_refused_naming_flips_4(static_models):
    with pytest.raises(ConfigError, match=r"--flips 8 .* size 24x16 \(WxH\).* use --flips 4"):
        load_inpainter(onnx=static_models["wide"], device="cpu", flips=8)


def test_a_fixed_non_square_model_runs_flips_4_like_torch(checkpoint, static_models):
    image, valid = colour_photo()[:16, :24], holes()[:16, :24]
    expected = TorchInpainter.from_checkpoint(checkpoint, device="cpu", flips=4).inpaint(
        image, valid)
    out = load_inpainter(onnx=static_models["wide"], device="cpu", flips=4).inpaint(image, valid)
    assert np.allclose(out, expected, atol=1e-4)


def test_a_fixed_square_model_runs_flips_8_on_non_square_inputs_like_torch(checkpoint,
                                                                           static_models):
    image, valid = colour_photo()[:20, :22], holes()[:20, :22]  # padded to 24×24 by both
    expected = TorchInpainter.from_checkpoint(checkpoint, device="cpu", flips=8).inpaint(
        image, valid)
    out = load_inpainter(onnx=static_models["square"], device="cpu", flips=8).inpaint(image,
                                                                                       valid)
    assert np.allclose(out, expected, atol=1e-4)
    with pytest.raises(InputError, match=r"32x20 input is larger .* fixed size 24x24 \(WxH\)"):
        load_inpainter(onnx=static_models["square"], device="cpu").inpaint(
            colour_photo()[:20, :32], holes()[:20, :32])
