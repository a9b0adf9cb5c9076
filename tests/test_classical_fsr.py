"""Frequency Selective Reconstruction (OpenCV contrib) as a classical method of evaluate."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from pconv_cli.classical import CLASSICAL_METHODS, FSRInpainter, classical_inpainter
from pconv_cli.errors import ConfigError
from pconv_cli.evaluate import build_methods, default_methods, parse_methods

cv2 = pytest.importorskip("cv2")
needs_xphoto = pytest.mark.skipif(not hasattr(cv2, "xphoto"),
                                  reason="needs opencv-contrib-python-headless")
LEVEL = 1 / 255  # OpenCV fills 8-bit images: one grey level is the finest answer it can give


def thin_holes(shape: tuple[int, int]) -> np.ndarray:
    """A library mask (True = valid) with a 1-px hair, a 3-px scratch and a 5×5 speck."""
    valid = np.ones(shape, dtype=bool)
    h, w = shape
    valid[4:h - 4, w // 4] = False
    valid[h // 2:h // 2 + 3, 4:w - 4] = False
    valid[8:13, w - 14:w - 9] = False
    return valid


@needs_xphoto
@pytest.mark.parametrize("name", ["fsr", "fsr-best"])
def test_fsr_fills_a_flat_image_with_its_colour(name):
    colour = np.array([0.8, 0.6, 0.3], dtype=np.float32)  # sepia-ish paper
    image = np.broadcast_to(colour, (48, 64, 3)).copy()
    valid = thin_holes((48, 64))
    masked = image * valid[..., None]
    out = classical_inpainter(name).inpaint(masked[None], valid[None])[0]
    assert np.abs(out - image).max() <= LEVEL
    assert np.array_equal(out[valid], image[valid])  # known pixels are the input's own


@needs_xphoto
def test_fsr_continues_a_gradient_across_thin_holes():
    ramp = np.linspace(0.1, 0.9, 96, dtype=np.float32)
    image = np.repeat(np.broadcast_to(ramp[None, :], (64, 96))[..., None], 3, axis=2).copy()
    valid = thin_holes((64, 96))
    out = classical_inpainter("fsr").inpaint((image * valid[..., None])[None], valid[None])[0]
    error = np.abs(out - image)[~valid]
    assert error.max() <= 3 * LEVEL  # the ramp rises 2 levels a pixel
    # The mean of the known pixels, the trivial answer, is far off.
    assert np.abs(image[valid].mean() - image[~valid]).mean() > 20 * LEVEL


@needs_xphoto
def test_fsr_keeps_grey_images_grey_and_is_named_and_described():
    rng = np.random.default_rng(0)
    grey = rng.random((40, 40, 1)).astype(np.float32).repeat(3, axis=2)
    valid = thin_holes((40, 40))
    method = classical_inpainter("fsr")
    out = method.inpaint((grey * valid[..., None])[None], valid[None])[0]
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 0], out[..., 2])
    assert method.name == "fsr" and method.backend.startswith("opencv-contrib ")
    assert method.batched is False  # one image at a time, in the worker pool


@needs_xphoto
def test_fsr_refuses_bad_input_like_the_other_classical_methods():
    method = classical_inpainter("fsr")
    with pytest.raises(ConfigError, match="N×H×W×C images and N×H×W masks"):
        method.inpaint(np.zeros((16, 16, 3)), np.ones((16, 16), dtype=bool))
    with pytest.raises(ConfigError, match="N×H×W×C images and N×H×W masks"):
        method.inpaint(np.zeros((1, 16, 16, 3)), np.ones((1, 8, 16), dtype=bool))
    with pytest.raises(ConfigError, match="choose fsr or fsr-best"):
        FSRInpainter("fsr-ultra")


@needs_xphoto
def test_fsr_with_nothing_to_fill_or_nothing_known():
    image = np.full((1, 16, 16, 3), 0.25, dtype=np.float32)
    method = classical_inpainter("fsr")
    assert np.array_equal(method.inpaint(image, np.ones((1, 16, 16), dtype=bool)), image)
    empty = method.inpaint(image, np.zeros((1, 16, 16), dtype=bool))
    assert np.all(empty == 0.5)  # nothing to draw on: the documented neutral grey


def test_plain_opencv_without_xphoto_is_one_line_naming_the_extra(monkeypatch):
    plain = types.ModuleType("cv2")
    plain.__version__ = "5.1.0"
    monkeypatch.setitem(sys.modules, "cv2", plain)  # an OpenCV without the contrib modules
    for name in ("fsr", "fsr-best"):
        with pytest.raises(ConfigError) as info:
            build_methods(methods=[name])
        message = str(info.value)
        assert "\n" not in message
        assert "cv2.xphoto" in message and "opencv-contrib-python-headless" in message
        assert "pip install 'pconv[classical]'" in message


def test_no_opencv_at_all_names_the_contrib_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    with pytest.raises(ConfigError, match=r"opencv-contrib-python-headless \(pip install "
                                          r"'pconv\[classical\]'\)"):
        classical_inpainter("fsr")


def test_fsr_is_a_known_method_but_not_a_default_one():
    assert {"fsr", "fsr-best"} <= set(CLASSICAL_METHODS)
    assert parse_methods("ns,FSR,fsr-best") == ["ns", "fsr", "fsr-best"]
    assert "fsr" not in default_methods() and "fsr-best" not in default_methods()


@needs_xphoto
def test_fsr_fills_busy_colour_images_channel_by_channel_without_colour_wrap():
    rng = np.random.default_rng(1)
    noise = rng.random((40, 40)).astype(np.float32)
    image = np.stack([noise, noise, 1.0 - noise], axis=-1)  # red = green, blue inverted
    valid = thin_holes((40, 40))
    out = classical_inpainter("fsr").inpaint((image * valid[..., None])[None], valid[None])[0]
    assert np.array_equal(out[..., 0], out[..., 1])
    # Blue is filled from its own known pixels alone, as OpenCV fills a one-channel image.
    blue = np.rint(image[..., 2] * valid * 255).astype(np.uint8)
    expected = np.zeros_like(blue)
    cv2.xphoto.inpaint(blue, np.where(valid, 255, 0).astype(np.uint8), expected,
                       cv2.xphoto.INPAINT_FSR_FAST)
    assert np.array_equal(np.rint(out[..., 2] * 255)[~valid], expected[~valid])
