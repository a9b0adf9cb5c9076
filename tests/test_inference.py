"""Inpainters: grey images are filled in grey, by the torch and the ONNX Runtime backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data

from pconv_cli.core import composite
from pconv_cli.export import export_onnx
from pconv_cli.imaging import LUMA_601
from pconv_cli.inference import GREY_TOLERANCE, OnnxInpainter, TorchInpainter, is_grey


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
    expected = composite(x, raw, m)[0].permute(1, 2, 0).numpy()
    luma = expected[~valid] @ LUMA_601
    assert np.allclose(out[~valid], luma[:, None], atol=1e-5)
    assert not np.allclose(expected[~valid], luma[:, None], atol=1e-3)  # it was tinted
