"""``--method auto``: each hole region filled by a classical method or the model, by its width."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from pconv_cli.classical import classical_inpainter
from pconv_cli.errors import ConfigError
from pconv_cli.inference import TorchInpainter
from pconv_cli.metrics import hole_region_widths
from pconv_cli.routing import (
    DEFAULT_THIN_WIDTH,
    RoutedInpainter,
    classical_view,
    default_thin_method,
    load_method,
    parse_method,
    thin_regions,
)

HEIGHT, WIDTH = 64, 96
LINE = (10, slice(5, 40))  # a 1-px line
BLOB = (slice(24, 54), slice(56, 86))  # a 30-px square, far from the line


def photo(seed: int = 0) -> np.ndarray:
    """A smooth colour image with some texture: every method fills it differently."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH] / 32.0
    base = np.stack([0.5 + 0.3 * np.sin(x + c) * np.cos(y - c) for c in range(3)], axis=-1)
    return np.clip(base + 0.05 * rng.random((HEIGHT, WIDTH, 3)), 0, 1).astype(np.float32)[None]


def valid_with(*holes) -> np.ndarray:
    valid = np.ones((1, HEIGHT, WIDTH), dtype=bool)
    for hole in holes:
        valid[(0, *hole)] = False
    return valid


@pytest.fixture(scope="module")
def model(checkpoint) -> TorchInpainter:
    return TorchInpainter.from_checkpoint(checkpoint, "cpu")


@pytest.fixture(scope="module")
def biharmonic():
    return classical_inpainter("biharmonic")


def test_a_thin_line_gets_the_classical_fill_and_a_wide_blob_the_models(model, biharmonic):
    image, valid = photo(), valid_with(LINE, BLOB)
    routed = RoutedInpainter(model, biharmonic, DEFAULT_THIN_WIDTH).inpaint(image, valid)
    line_alone = biharmonic.inpaint(image, valid_with(LINE))
    assert np.array_equal(routed[(0, *LINE)], line_alone[(0, *LINE)])
    # The model fills the blob with the line already filled: it is a known pixel to it.
    with_line = image.copy()
    with_line[(0, *LINE)] = line_alone[(0, *LINE)]
    blob_by_model = model.inpaint(with_line, valid_with(BLOB))
    assert np.array_equal(routed[(0, *BLOB)], blob_by_model[(0, *BLOB)])
    assert not np.allclose(routed[(0, *BLOB)], biharmonic.inpaint(image, valid)[(0, *BLOB)])
    assert np.array_equal(routed[valid], image[valid])


def test_thin_width_0_is_the_model_and_a_huge_one_the_classical_method(model, biharmonic):
    image, valid = photo(1), valid_with(LINE, BLOB)
    assert np.array_equal(RoutedInpainter(model, biharmonic, 0).inpaint(image, valid),
                          model.inpaint(image, valid))
    assert np.array_equal(RoutedInpainter(model, biharmonic, 1e9).inpaint(image, valid),
                          biharmonic.inpaint(image, valid))


def test_a_network_of_thin_scratches_is_thin_though_their_crossings_are_wider():
    """Evaluate's measure takes a region's largest distance to a known pixel, reached where
    scratches cross; routing takes the 95th percentile. The scratches of the bundled example
    pier_scratches are 7-9 px wide but cross: one network measures over 20 px the first way,
    and goes to the classical method the second; a solid blob stays with the model."""
    from pathlib import Path

    from pconv_cli.imaging import load_mask

    mask = Path(__file__).resolve().parents[1] / "examples" / "masks" / "pier_scratches.png"
    valid = load_mask(mask)
    assert hole_region_widths(valid)[1].max() > 2 * DEFAULT_THIN_WIDTH
    assert thin_regions(valid, DEFAULT_THIN_WIDTH)[~valid].all()
    blob = np.ones_like(valid)
    blob[100:125, 200:225] = False  # 25 px across: about as wide as the network at its widest
    assert not thin_regions(blob, DEFAULT_THIN_WIDTH).any()


def test_regions_are_measured_as_evaluate_measures_hole_widths():
    valid = valid_with((slice(10, 15), slice(5, 60)), BLOB)[0]  # a 5-px line and the blob
    _labels, widths = hole_region_widths(valid)
    assert sorted(widths)[0] == 5  # evaluate's measure: 2·r − 1
    for threshold, line_is_thin in ((4, False), (5, True), (6, True)):
        thin = thin_regions(valid, threshold)
        assert thin[12, 30] == line_is_thin
        assert not thin[BLOB].any()
        assert not thin[valid].any()


def test_a_hole_without_any_known_pixel_goes_to_the_model(model, biharmonic):
    image = photo(2)
    valid = np.zeros((1, HEIGHT, WIDTH), dtype=bool)
    assert not thin_regions(valid[0], 1e9).any()
    routed = RoutedInpainter(model, biharmonic, 1e9).inpaint(image, valid)
    assert np.array_equal(routed, model.inpaint(image, valid))


def test_routed_inpainter_takes_what_the_model_takes(model, biharmonic):
    image8 = (photo(3)[0] * 255).astype(np.uint8)
    valid = valid_with(LINE, BLOB)[0].astype(np.uint8)  # one image, a 0/1 mask
    out = RoutedInpainter(model, biharmonic).inpaint(image8, valid)
    assert out.dtype == np.uint8 and out.shape == image8.shape
    assert np.array_equal(out[valid == 1], image8[valid == 1])


def test_the_router_reports_both_parts(model, biharmonic):
    routed = RoutedInpainter(model, biharmonic, 6)
    assert routed.name == "auto:biharmonic"
    assert "holes ≤ 6 px wide: biharmonic" in routed.backend
    assert routed.backend.startswith(model.backend)
    assert (routed.multiple, routed.flips, routed.blend) == (model.multiple, 1, "poisson")


def test_parse_method_names_the_choices():
    assert parse_method("auto:FSR") == ("auto", "fsr")
    assert parse_method("ns") == ("ns", None)
    assert parse_method("pconv") == ("pconv", None)
    with pytest.raises(ConfigError, match="thin-hole method of auto must be one of"):
        parse_method("auto:mean")
    with pytest.raises(ConfigError, match="--method magic: choose auto, pconv"):
        parse_method("magic")


@pytest.mark.parametrize("opencv", [True, False])
def test_auto_fills_thin_holes_with_biharmonic_whatever_is_installed(monkeypatch, opencv):
    if not opencv:
        monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    assert default_thin_method() == "biharmonic"
    assert parse_method("auto") == ("auto", "biharmonic")
    assert parse_method("auto:fsr") == ("auto", "fsr")


@pytest.mark.parametrize("method", ["ns", "telea", "fsr", "auto:fsr"])
def test_a_method_that_needs_opencv_without_it_is_one_line_naming_the_extra(monkeypatch,
                                                                           checkpoint, method):
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(ConfigError) as caught:
        load_method(method, model=checkpoint if method.startswith("auto") else None,
                    device="cpu")
    message = str(caught.value)
    assert "\n" not in message
    assert "needs OpenCV" in message and "pip install 'pconv[classical]'" in message


def test_model_options_with_a_classical_method_alone_are_refused(checkpoint):
    with pytest.raises(ConfigError, match="--method biharmonic fills every hole without a "
                                          "model: drop --model and --flips"):
        load_method("biharmonic", model=checkpoint, flips=4)


def test_a_negative_thin_width_is_refused(model, biharmonic):
    with pytest.raises(ConfigError, match="--thin-width -1: give a width in pixels"):
        RoutedInpainter(model, biharmonic, -1)


def test_the_classical_method_is_spared_wide_holes_far_from_every_thin_region():
    valid = np.ones((200, 200), dtype=bool)
    valid[10, 10:60] = False  # a thin line
    valid[20:40, 20:40] = False  # a wide hole near it
    valid[150:190, 150:190] = False  # a wide hole far from it
    thin = thin_regions(valid, DEFAULT_THIN_WIDTH)
    seen = classical_view(valid, thin, reach=48)
    assert not seen[10, 10:60].any()  # the line is a hole to it
    assert not seen[20:40, 20:40].any()  # the near hole too: never read as known
    assert seen[150:190, 150:190].all()  # the far one is not its business
    assert np.array_equal(classical_view(valid, valid == 0, reach=48), valid)  # all thin
    assert np.array_equal(classical_view(valid, thin, reach=None), valid)  # reads everything


@pytest.mark.parametrize("method", ["biharmonic", "ns"])
def test_restore_fills_thin_regions_of_a_large_image_before_tiling(model, method):
    """restore fills the thin regions of the whole image (biharmonic in one solve, the other
    methods region by region in crops of their reach) as the router fills them on the whole
    image, and tiles only the wide holes for the model."""
    if method != "biharmonic":
        pytest.importorskip("cv2")
    thin_method = classical_inpainter(method)
    from pconv_cli.imaging import ImageFile
    from pconv_cli.restore import RestoreOptions, fill_thin_regions_first, make_jobs, restore_image

    rng = np.random.default_rng(3)
    height, width = 600, 900
    pixels = (rng.random((height, width, 3)) * 255).astype(np.uint8)
    image = ImageFile(pixels, "RGB", "PNG")
    valid = np.ones((height, width), bool)
    valid[100, 50:850] = False  # a hair across the image
    for y, x in rng.integers(20, 580, (40, 2)):  # scattered specks
        valid[y:y + 3, x:x + 3] = False
    valid[400:470, 600:680] = False  # one wide hole
    routed = RoutedInpainter(model, thin_method, DEFAULT_THIN_WIDTH)

    filled, left = fill_thin_regions_first(routed, image, valid)
    thin = thin_regions(valid, DEFAULT_THIN_WIDTH)
    assert np.array_equal(left, valid | thin) and not left[400:470, 600:680].any()
    whole = routed.thin.inpaint(pixels[None].astype(np.float32) / 255,
                                classical_view(valid, thin, routed.thin.reach)[None])[0]
    np.testing.assert_allclose(filled.pixels[thin] / 255, whole[thin], atol=0.5 / 255 + 1e-6)
    assert np.array_equal(filled.pixels[valid], pixels[valid])

    options = RestoreOptions(hd_trigger=256, hd_size=128, hd_margin=16)
    jobs = make_jobs(filled, left, options, routed.multiple)
    assert jobs and all(job.box[0] >= 300 for job in jobs)  # only around the wide hole
    restored = restore_image(routed, image, valid, options)
    assert np.array_equal(restored.pixels[thin], filled.pixels[thin])
    assert np.array_equal(restored.pixels[valid], pixels[valid])


def test_restore_writes_an_image_whose_holes_are_all_thin(checkpoint, tmp_path):
    from PIL import Image

    from pconv_cli.restore import RestoreOptions, restore

    src, masks = tmp_path / "in", tmp_path / "masks"
    src.mkdir()
    masks.mkdir()
    pixels = (np.random.default_rng(4).random((300, 400, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(src / "a.png")
    mask = np.zeros((300, 400), np.uint8)
    mask[150, 20:380] = 255
    Image.fromarray(mask).save(masks / "a.png")
    inpainter = load_method("auto", model=str(checkpoint), device="cpu")
    report = restore(src, tmp_path / "out", inpainter, RestoreOptions(masks=masks))
    assert report.count("restored") == 1
    after = np.asarray(Image.open(tmp_path / "out" / "a.png"))
    assert np.array_equal(after[mask == 0], pixels[mask == 0])


@pytest.mark.parametrize("method", ["biharmonic", "ns", "telea"])
def test_a_crop_grown_by_the_methods_reach_fills_a_region_as_the_whole_image_does(method):
    """restore fills each thin region in a crop grown by its method's ``reach``: that must be
    the fill the whole image gives (a reach too small would change it)."""
    if method != "biharmonic":
        pytest.importorskip("cv2")
    inpainter = classical_inpainter(method)
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:120, 0:160] / 16.0
    image = np.stack([0.5 + 0.3 * np.sin(x + c) * np.cos(y - c) for c in range(3)], axis=-1)
    image = np.clip(image + 0.1 * rng.random(image.shape), 0, 1).astype(np.float32)
    valid = np.ones((120, 160), dtype=bool)
    valid[50:53, 40:110] = False  # a hair
    valid[70:74, 60:64] = False  # a speck near it
    whole = inpainter.inpaint(image[None], valid[None])[0]
    reach = inpainter.reach
    rows, cols = slice(50 - reach, 74 + reach), slice(40 - reach, 110 + reach)
    crop = inpainter.inpaint(image[None, rows, cols], valid[None, rows, cols])[0]
    holes = ~valid[rows, cols]
    expected = whole[rows, cols]
    if method == "biharmonic":  # scikit-image clips its fill to the range of the known pixels
        known = image[rows, cols][~holes]
        expected = np.clip(expected, known.min(axis=0), known.max(axis=0))
    np.testing.assert_allclose(crop[holes], expected[holes], atol=1e-6)
    if method != "biharmonic":  # one pixel less of context: not the same fill any more
        small = slice(50 - reach + 1, 74 + reach - 1), slice(40 - reach + 1, 110 + reach - 1)
        narrower = inpainter.inpaint(image[None, small[0], small[1]],
                                     valid[None, small[0], small[1]])[0]
        assert not np.allclose(narrower[~valid[small]], whole[small][~valid[small]], atol=1e-6)
