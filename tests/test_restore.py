"""pconv.restore and the image I/O it relies on (pconv_cli.imaging): batch restoration that never
loses a file."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from detect_helpers import bright_detector, save_detector, scratched
from PIL import Image, ImageOps, JpegImagePlugin

from pconv_cli.detect import TorchDetector, bundled_detector_installed, detect_folder
from pconv_cli.errors import ConfigError, InputError
from pconv_cli.export import export_onnx
from pconv_cli.imaging import (
    ImageFile,
    apply_orientation,
    grow_holes,
    parse_color,
    read_image,
    read_painted_mask,
    write_image,
)
from pconv_cli.inference import OnnxInpainter, TorchInpainter
from pconv_cli.restore import (
    RUN_RECORD,
    RestoreOptions,
    hole_boxes,
    make_jobs,
    parse_shard,
    plan,
    restore,
    restore_image,
    shard_for_rank,
    tile_box,
)

SIZE = (48, 64)  # height, width


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def inpainter(checkpoint) -> TorchInpainter:
    return TorchInpainter.from_checkpoint(checkpoint, device="cpu")


def photo(seed: int, size=SIZE, channels: int = 3, dtype=np.uint8) -> np.ndarray:
    """A smooth random picture (gradients + noise), like a photograph and unlike a test card."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([(yy * (c + 1) + xx * (2 - c)) % 1 for c in range(channels)], axis=-1)
    full = 65535 if dtype == np.uint16 else 255
    pixels = np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1) * full
    out = pixels.astype(dtype)
    return out[..., 0] if channels == 1 else out


def hole_mask(size=SIZE, box=(10, 12, 30, 40)) -> np.ndarray:
    """File pixels: white (255) = hole."""
    mask = np.zeros(size, np.uint8)
    top, left, bottom, right = box
    mask[top:bottom, left:right] = 255
    return mask


def write_pair(folder: Path, masks: Path, rel: str, pixels: np.ndarray,
               mask: np.ndarray | None = None, **save) -> Path:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **save)
    mask_path = masks / Path(rel).with_suffix(".png")
    mask_path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(hole_mask(pixels.shape[:2]) if mask is None else mask).save(mask_path)
    return path


def digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run(inpainter, src: Path, out: Path, **options):
    return restore(src, out, inpainter, RestoreOptions(**options))


# ------------------------------------------------------------------ pixels outside holes


def test_png_output_equals_input_outside_holes(inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    write_pair(src, masks, "a.png", photo(0))
    report = run(inpainter, src, tmp_path / "out", masks=masks)
    assert report.count("restored") == 1
    before = np.asarray(Image.open(src / "a.png"))
    after = np.asarray(Image.open(tmp_path / "out" / "a.png"))
    hole = hole_mask() == 255
    assert np.array_equal(after[~hole], before[~hole])
    assert (after[hole] != before[hole]).any()


def test_restore_image_replaces_only_hole_pixels_for_an_irregular_mask(inpainter, tmp_path):
    rng = np.random.default_rng(3)
    Image.fromarray(photo(1)).save(tmp_path / "x.png")
    image = read_image(tmp_path / "x.png")
    valid = rng.random(SIZE) > 0.3
    restored = restore_image(inpainter, image, valid)
    assert np.array_equal(restored.pixels[valid], image.pixels[valid])
    assert (restored.pixels[~valid] != image.pixels[~valid]).any()


def test_grayscale_stays_grayscale(inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    write_pair(src, masks, "g.png", photo(2, channels=1))
    run(inpainter, src, tmp_path / "out", masks=masks)
    out = Image.open(tmp_path / "out" / "g.png")
    assert out.mode == "L"
    hole = hole_mask() == 255
    assert np.array_equal(np.asarray(out)[~hole], photo(2, channels=1)[~hole])


def test_rgba_keeps_its_alpha_channel(inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    pixels = photo(3, channels=4)
    write_pair(src, masks, "a.png", pixels)
    run(inpainter, src, tmp_path / "out", masks=masks)
    out = Image.open(tmp_path / "out" / "a.png")
    assert out.mode == "RGBA"
    assert np.array_equal(np.asarray(out)[..., 3], pixels[..., 3])


def test_16bit_grayscale_png_stays_16bit_and_exact_outside_holes(inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    pixels = photo(4, channels=1, dtype=np.uint16)
    src.mkdir()
    Image.frombytes("I;16", (SIZE[1], SIZE[0]), pixels.astype("<u2").tobytes()).save(src / "d.png")
    masks.mkdir()
    Image.fromarray(hole_mask()).save(masks / "d.png")
    run(inpainter, src, tmp_path / "out", masks=masks)
    out = Image.open(tmp_path / "out" / "d.png")
    assert out.mode.startswith("I;16")
    after = np.asarray(out).astype(np.uint16)
    hole = hole_mask() == 255
    assert np.array_equal(after[~hole], pixels[~hole])
    assert after[hole].max() > 255  # the prediction is written at 16 bits, not 8


def test_16bit_rgb_png_stays_16bit_and_exact_outside_holes(inpainter, tmp_path):
    cv2 = pytest.importorskip("cv2")
    src, masks = tmp_path / "in", tmp_path / "masks"
    src.mkdir()
    masks.mkdir()
    pixels = photo(5, dtype=np.uint16)
    cv2.imwrite(str(src / "c.png"), pixels[..., ::-1])
    Image.fromarray(hole_mask()).save(masks / "c.png")
    run(inpainter, src, tmp_path / "out", masks=masks)
    after = cv2.imread(str(tmp_path / "out" / "c.png"), cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert after.dtype == np.uint16
    hole = hole_mask() == 255
    assert np.array_equal(after[~hole], pixels[~hole])


def test_16bit_rgb_tiff_stays_16bit_and_keeps_dpi(inpainter, tmp_path):
    tifffile = pytest.importorskip("tifffile")
    src, masks = tmp_path / "in", tmp_path / "masks"
    src.mkdir()
    masks.mkdir()
    pixels = photo(6, dtype=np.uint16)
    tifffile.imwrite(src / "t.tif", pixels, photometric="rgb", compression="zlib",
                     resolution=(300, 300), resolutionunit="INCH")
    Image.fromarray(hole_mask()).save(masks / "t.png")
    run(inpainter, src, tmp_path / "out", masks=masks)
    after = tifffile.imread(tmp_path / "out" / "t.tif")
    assert after.dtype == np.uint16
    hole = hole_mask() == 255
    assert np.array_equal(after[~hole], pixels[~hole])
    assert Image.open(tmp_path / "out" / "t.tif").info["dpi"] == pytest.approx((300, 300))


def test_exif_orientation_is_applied_and_reset(inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    src.mkdir()
    masks.mkdir()
    stored = photo(7)  # stored 48×64, displayed rotated (orientation 6): 64×48
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "pconv-test-camera"
    Image.fromarray(stored).save(src / "r.png", exif=exif.tobytes())
    upright = np.asarray(ImageOps.exif_transpose(Image.open(src / "r.png")))
    Image.fromarray(hole_mask(upright.shape[:2], (5, 5, 20, 20))).save(masks / "r.png")
    run(inpainter, src, tmp_path / "out", masks=masks)
    out = Image.open(tmp_path / "out" / "r.png")
    assert out.size == (48, 64)
    assert out.getexif().get(0x0112) is None
    assert out.getexif().get(0x010F) == "pconv-test-camera"
    hole = hole_mask(upright.shape[:2], (5, 5, 20, 20)) == 255
    assert np.array_equal(np.asarray(out)[~hole], upright[~hole])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_apply_orientation_matches_pillow(orientation):
    pixels = photo(8, size=(6, 9))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", exif=exif.tobytes())
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(buffer.getvalue()))))
    assert np.array_equal(apply_orientation(pixels, orientation), expected)


def test_icc_profile_exif_and_dpi_are_kept(inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0131] = "scanner software"
    write_pair(src, masks, "m.png", photo(9), icc_profile=icc, dpi=(600, 600),
               exif=exif.tobytes())
    run(inpainter, src, tmp_path / "out", masks=masks)
    out = Image.open(tmp_path / "out" / "m.png")
    assert out.info["icc_profile"] == icc
    assert out.info["dpi"] == pytest.approx((600, 600), abs=0.01)
    assert out.getexif()[0x0131] == "scanner software"


def test_jpeg_output_reuses_the_source_quantisation_tables(inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    write_pair(src, masks, "j.jpg", photo(10), quality=70)
    run(inpainter, src, tmp_path / "out", masks=masks)
    source, out = Image.open(src / "j.jpg"), Image.open(tmp_path / "out" / "j.jpg")
    assert out.format == "JPEG"
    assert out.quantization == source.quantization
    assert JpegImagePlugin.get_sampling(out) == JpegImagePlugin.get_sampling(source)


def test_lossless_webp_stays_lossless_and_exact_outside_holes(inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    write_pair(src, masks, "w.webp", photo(11), lossless=True)
    run(inpainter, src, tmp_path / "out", masks=masks)
    after = np.asarray(Image.open(tmp_path / "out" / "w.webp").convert("RGB"))
    hole = hole_mask() == 255
    assert np.array_equal(after[~hole], photo(11)[~hole])


def test_cmyk_tiff_stays_cmyk_and_exact_outside_holes(inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    src.mkdir()
    masks.mkdir()
    cmyk = Image.fromarray(photo(12)).convert("CMYK")
    cmyk.save(src / "k.tif", compression="tiff_lzw")
    Image.fromarray(hole_mask()).save(masks / "k.png")
    run(inpainter, src, tmp_path / "out", masks=masks)
    out = Image.open(tmp_path / "out" / "k.tif")
    assert out.mode == "CMYK"
    hole = hole_mask() == 255
    assert np.array_equal(np.asarray(out)[~hole], np.asarray(cmyk)[~hole])


def test_format_png_converts_jpeg_and_keeps_known_pixels_of_the_decoded_jpeg(inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    write_pair(src, masks, "j.jpg", photo(13), quality=90)
    run(inpainter, src, tmp_path / "out", masks=masks, format="png")
    decoded = np.asarray(Image.open(src / "j.jpg"))
    after = np.asarray(Image.open(tmp_path / "out" / "j.png"))
    hole = hole_mask() == 255
    assert np.array_equal(after[~hole], decoded[~hole])


def test_write_image_16bit_rgba_png_round_trips(tmp_path):
    cv2 = pytest.importorskip("cv2")
    pixels = photo(14, channels=4, dtype=np.uint16)
    source = tmp_path / "s.png"
    cv2.imwrite(str(source), pixels[..., [2, 1, 0, 3]])
    image = read_image(source)
    assert image.mode == "RGBA" and image.bit_depth == 16
    write_image(tmp_path / "o.png", image, format="PNG")
    assert np.array_equal(read_image(tmp_path / "o.png").pixels, pixels)


def write_png16_grey_alpha(path: Path, pixels: np.ndarray) -> None:
    """A 16-bit grey + alpha PNG (colour type 4), written by hand: Pillow cannot write one."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    height, width, _ = pixels.shape
    rows = np.ascontiguousarray(pixels, ">u2").view(np.uint8).reshape(height, -1)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 4, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_16bit_grey_alpha_png_stays_16bit_grey_alpha_with_its_alpha_untouched(inpainter,
                                                                             tmp_path):
    pytest.importorskip("cv2")
    src, masks = tmp_path / "in", tmp_path / "masks"
    src.mkdir()
    masks.mkdir()
    grey = photo(15, channels=1, dtype=np.uint16)
    alpha = photo(16, channels=1, dtype=np.uint16) | 0x8000  # opaque enough, not constant
    write_png16_grey_alpha(src / "la.png", np.stack([grey, alpha], axis=-1))
    Image.fromarray(hole_mask()).save(masks / "la.png")
    report = run(inpainter, src, tmp_path / "out", masks=masks)
    assert report.count("restored") == 1, report.results
    out = read_image(tmp_path / "out" / "la.png")
    assert out.mode == "LA" and out.bit_depth == 16
    header = (tmp_path / "out" / "la.png").read_bytes()[24:26]
    assert header == bytes([16, 4])  # 16-bit, colour type 4 (grey + alpha)
    hole = hole_mask() == 255
    assert np.array_equal(out.pixels[..., 1], alpha)
    assert np.array_equal(out.pixels[..., 0][~hole], grey[~hole])


# ------------------------------------------------------------------------ large images


def test_hole_boxes_cover_every_hole_pixel_and_do_not_overlap():
    rng = np.random.default_rng(0)
    valid = np.ones((300, 400), bool)
    for _ in range(12):
        top, left = rng.integers(0, 280), rng.integers(0, 380)
        valid[top:top + rng.integers(2, 20), left:left + rng.integers(2, 20)] = False
    boxes = hole_boxes(valid, margin=16, multiple=8)
    covered = np.zeros(valid.shape, np.int32)
    for top, left, bottom, right in boxes:
        covered[top:bottom, left:right] += 1
    assert (covered[~valid] == 1).all()
    assert covered.max() == 1


def test_hole_boxes_keep_the_margin_around_a_hole():
    valid = np.ones((200, 200), bool)
    valid[100:110, 90:95] = False
    (box,) = hole_boxes(valid, margin=20, multiple=1)
    top, left, bottom, right = box
    assert top <= 80 and left <= 70 and bottom >= 130 and right >= 115


@pytest.mark.parametrize("strategy", ["crop", "resize", "original"])
def test_large_image_strategies_change_only_hole_pixels(inpainter, tmp_path, strategy):
    src, masks = tmp_path / "in", tmp_path / "masks"
    size = (120, 200)
    mask = np.zeros(size, np.uint8)
    mask[10:25, 15:40] = 255
    mask[90:110, 150:190] = 255
    write_pair(src, masks, "big.png", photo(15, size=size), mask)
    run(inpainter, src, tmp_path / "out", masks=masks, hd_strategy=strategy, hd_trigger=64,
        hd_margin=12, hd_size=64)
    after = np.asarray(Image.open(tmp_path / "out" / "big.png"))
    hole = mask == 255
    assert np.array_equal(after[~hole], photo(15, size=size)[~hole])
    assert (after[hole] != photo(15, size=size)[hole]).mean() > 0.5


def test_crop_of_a_whole_image_box_matches_the_original_strategy(inpainter, tmp_path):
    # A margin that covers the image makes the one crop the whole image: same result.
    src, masks = tmp_path / "in", tmp_path / "masks"
    write_pair(src, masks, "a.png", photo(16))
    run(inpainter, src, tmp_path / "crop", masks=masks, hd_strategy="crop", hd_trigger=8,
        hd_margin=1000, hd_size=10_000)
    run(inpainter, src, tmp_path / "orig", masks=masks, hd_strategy="original")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "crop" / "a.png")),
                          np.asarray(Image.open(tmp_path / "orig" / "a.png")))


@pytest.mark.parametrize(("box", "tile", "margin", "multiple"), [
    ((0, 0, 300, 500), (128, 128), 24, 8), ((7, 13, 410, 99), (100, 64), 30, 8),
    ((0, 0, 64, 64), (128, 128), 24, 8), ((5, 5, 1000, 333), (256, 256), 200, 16),
])
def test_tiles_keep_a_partition_of_the_box_and_fit_the_tile(box, tile, margin, multiple):
    top, left, bottom, right = box
    covered = np.zeros((bottom, right), int)
    for window, keep in tile_box(box, tile, margin, multiple):
        wt, wl, wb, wr = window
        kt, kl, kb, kr = keep
        assert wb - wt <= tile[0] and wr - wl <= tile[1]
        assert top <= wt <= kt < kb <= wb <= bottom and left <= wl <= kl < kr <= wr <= right
        covered[kt:kb, kl:kr] += 1
    assert (covered[top:bottom, left:right] == 1).all()  # every pixel kept exactly once
    assert covered.sum() == (bottom - top) * (right - left)


def test_large_crops_are_tiled_at_native_resolution_not_shrunk():
    height, width = 700, 1500
    image = ImageFile(np.zeros((height, width, 3), np.uint8), "RGB", "PNG")
    valid = np.ones((height, width), bool)
    valid[350, 10:1490] = False  # a hair across the whole scan: one long crop
    valid[100:103, 200:204] = False
    options = RestoreOptions(hd_trigger=512, hd_size=256, hd_margin=32)
    jobs = make_jobs(image, valid, options, multiple=8)
    assert len(jobs) > 1
    assert not any(job.scaled for job in jobs)
    assert all(max(job.shape) <= 256 for job in jobs)
    kept = np.zeros((height, width), int)
    for job in jobs:
        kt, kl, kb, kr = job.keep
        kept[kt:kb, kl:kr] += 1
    assert (kept[~valid] == 1).all()  # every hole pixel is filled by exactly one tile
    assert all(not valid[job.keep[0]:job.keep[2], job.keep[1]:job.keep[3]].all()
               for job in jobs)  # and no tile is spent on intact image


def test_resize_is_the_strategy_that_shrinks():
    image = ImageFile(np.zeros((700, 1500, 3), np.uint8), "RGB", "PNG")
    valid = np.ones((700, 1500), bool)
    valid[350, 10:1490] = False
    jobs = make_jobs(image, valid, RestoreOptions(hd_strategy="resize", hd_trigger=512,
                                                  hd_size=256), multiple=8)
    assert len(jobs) == 1 and jobs[0].scaled and max(jobs[0].shape) == 256


def test_a_hair_across_a_large_image_is_filled_through_tiles_everywhere(inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    height, width = 300, 1400
    damaged = np.zeros((height, width, 3), np.uint8)
    damaged[:, ::2] = 200
    mask = np.zeros((height, width), np.uint8)
    mask[150, 20:1380] = 255
    damaged[mask == 255] = 255  # the hair: white, a value the stripes never take
    write_pair(src, masks, "scan.png", damaged, mask)
    run(inpainter, src, tmp_path / "out", masks=masks, hd_trigger=512, hd_size=256,
        hd_margin=32)
    after = np.asarray(Image.open(tmp_path / "out" / "scan.png"))
    hole = mask == 255
    assert np.array_equal(after[~hole], damaged[~hole])
    assert not (after[hole] == 255).all(axis=-1).any()  # no tile left a hair pixel unfilled


# ----------------------------------------------------------------------------- masks


def test_masks_pair_by_relative_path_in_nested_folders(inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    write_pair(src, masks, "x/a.png", photo(17))
    other = np.zeros(SIZE, np.uint8)
    other[0:8, 0:8] = 255
    write_pair(src, masks, "y/a.png", photo(17), other)
    report = run(inpainter, src, tmp_path / "out", masks=masks, recursive=True)
    assert report.count("restored") == 2
    ya = np.asarray(Image.open(tmp_path / "out" / "y" / "a.png"))
    assert np.array_equal(ya[8:, :], photo(17)[8:, :])  # its own mask, not x/a's


def test_images_sharing_a_stem_use_masks_named_after_the_full_file_name(inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    src.mkdir()
    masks.mkdir()
    Image.fromarray(photo(18)).save(src / "a.jpg", quality=95)
    Image.fromarray(photo(19)).save(src / "a.png")
    Image.fromarray(hole_mask(box=(0, 0, 8, 8))).save(masks / "a.jpg.png")
    Image.fromarray(hole_mask(box=(30, 40, 40, 60))).save(masks / "a.png.png")
    report = run(inpainter, src, tmp_path / "out", masks=masks)
    assert report.count("restored") == 2
    out = np.asarray(Image.open(tmp_path / "out" / "a.png"))
    assert np.array_equal(out[:30], photo(19)[:30])


def test_a_stem_mask_shared_by_two_images_is_an_error_not_a_silent_pairing(inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    src.mkdir()
    masks.mkdir()
    Image.fromarray(photo(18)).save(src / "a.jpg")
    Image.fromarray(photo(19)).save(src / "a.png")
    Image.fromarray(hole_mask()).save(masks / "a.png")
    report = run(inpainter, src, tmp_path / "out", masks=masks)
    assert report.count("failed") == 2
    assert all("a.jpg and a.png" in r.reason for r in report.failed)


def test_two_mask_files_for_one_image_are_reported_ambiguous(inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    write_pair(src, masks, "a.png", photo(20))
    Image.fromarray(hole_mask()).save(masks / "a.bmp")
    report = run(inpainter, src, tmp_path / "out", masks=masks)
    assert report.failed[0].reason.startswith("ambiguous masks a.bmp and a.png")


def test_format_change_keeps_inputs_with_the_same_stem_apart(inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    src.mkdir()
    masks.mkdir()
    Image.fromarray(photo(21)).save(src / "a.jpg")
    Image.fromarray(photo(22)).save(src / "a.png")
    report = run(inpainter, src, tmp_path / "out", mask=write_mask(tmp_path), format="png")
    assert report.count("restored") == 2
    assert sorted(p.name for p in (tmp_path / "out").glob("a*")) == ["a.jpg.png", "a.png"]


def write_mask(tmp_path: Path, size=SIZE) -> Path:
    path = tmp_path / "one-mask.png"
    Image.fromarray(hole_mask(size)).save(path)
    return path


def test_one_mask_for_every_image_is_resized_with_resize_masks(inpainter, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(photo(23, size=(96, 128))).save(src / "big.png")
    report = run(inpainter, src, tmp_path / "out", mask=write_mask(tmp_path), resize_masks=True)
    assert report.count("restored") == 1
    after = np.asarray(Image.open(tmp_path / "out" / "big.png"))
    hole = np.kron(hole_mask() == 255, np.ones((2, 2), bool))
    assert np.array_equal(after[~hole], photo(23, size=(96, 128))[~hole])


def test_invert_mask_treats_black_as_hole(inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    write_pair(src, masks, "a.png", photo(24), 255 - hole_mask())
    run(inpainter, src, tmp_path / "out", masks=masks, invert_mask=True)
    after = np.asarray(Image.open(tmp_path / "out" / "a.png"))
    hole = hole_mask() == 255
    assert np.array_equal(after[~hole], photo(24)[~hole])


def test_grey_mask_levels_are_thresholded_at_mid_grey(inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    mask = np.full(SIZE, 100, np.uint8)  # below mid-grey: valid
    mask[10:30, 12:40] = 200  # above: hole
    write_pair(src, masks, "a.png", photo(25), mask)
    run(inpainter, src, tmp_path / "out", masks=masks)
    after = np.asarray(Image.open(tmp_path / "out" / "a.png"))
    assert np.array_equal(after[mask == 100], photo(25)[mask == 100])


def test_mask_from_alpha_fills_transparent_pixels_and_writes_opaque(inpainter, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    pixels = photo(26, channels=4)
    pixels[..., 3] = 255
    pixels[10:30, 12:40, 3] = 0
    Image.fromarray(pixels).save(src / "a.png")
    report = run(inpainter, src, tmp_path / "out", mask_from="alpha")
    assert report.count("restored") == 1
    out = Image.open(tmp_path / "out" / "a.png")
    assert out.mode == "RGB"
    assert np.array_equal(np.asarray(out)[pixels[..., 3] == 255],
                          pixels[..., :3][pixels[..., 3] == 255])


def test_options_need_exactly_one_mask_source():
    if not bundled_detector_installed():  # with one, no mask source means: detect
        with pytest.raises(ConfigError, match="no masks given"):
            RestoreOptions().validate()
    with pytest.raises(ConfigError, match="only one"):
        RestoreOptions(mask=Path("m.png"), mask_from="alpha").validate()


# ------------------------------------------------------------------------- robustness


@pytest.fixture
def messy_folder(tmp_path) -> tuple[Path, Path]:
    """Nested good images and every kind of bad input."""
    src, masks = tmp_path / "in", tmp_path / "masks"
    write_pair(src, masks, "good/a.png", photo(30))
    write_pair(src, masks, "good/deeper/b.jpg", photo(31))
    write_pair(src, masks, "corrupt.png", photo(32))
    (src / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    write_pair(src, masks, "truncated.png", photo(33))
    data = (src / "truncated.png").read_bytes()
    (src / "truncated.png").write_bytes(data[: len(data) // 2])
    write_pair(src, masks, "empty.jpg", photo(34))
    (src / "empty.jpg").write_bytes(b"")
    (src / "anim.gif").write_bytes(b"GIF89a")
    Image.fromarray(photo(35)).save(src / "nomask.png")
    write_pair(src, masks, "wrongsize.png", photo(36), hole_mask((20, 20), (0, 0, 5, 5)))
    write_pair(src, masks, "bomb.png", photo(37, size=(400, 400)),
               hole_mask((400, 400), (0, 0, 50, 50)))
    all_hole = np.full(SIZE, 255, np.uint8)
    write_pair(src, masks, "allhole.png", photo(38), all_hole)
    (src / "notes.txt").write_text("not an image")
    return src, masks


EXPECTED_FAILURES = {
    "corrupt.png": "not a readable image",
    "truncated.png": "truncated or corrupt",
    "empty.jpg": "empty file",
    "anim.gif": "unsupported format .gif",
    "nomask.png": "no mask for it",
    "wrongsize.png": "--resize-masks",
    "bomb.png": "decompression-bomb guard",
    "allhole.png": "covers the whole image",
}


def test_bad_files_are_skipped_with_a_reason_and_the_rest_restored(inpainter, messy_folder,
                                                                   tmp_path):
    src, masks = messy_folder
    report = run(inpainter, src, tmp_path / "out", masks=masks, recursive=True,
                 max_pixels=100_000)
    reasons = {r.relative: r.reason for r in report.failed}
    assert set(reasons) == set(EXPECTED_FAILURES)
    for name, phrase in EXPECTED_FAILURES.items():
        assert phrase in reasons[name], (name, reasons[name])
        assert "\n" not in reasons[name]
    assert report.count("restored") == 2
    assert (tmp_path / "out" / "good" / "deeper" / "b.jpg").is_file()
    assert report.ignored == 1  # notes.txt


def test_failures_csv_lists_each_failed_file_with_its_reason(inpainter, messy_folder, tmp_path):
    src, masks = messy_folder
    report = run(inpainter, src, tmp_path / "out", masks=masks, recursive=True,
                 max_pixels=100_000)
    with open(tmp_path / "out" / "failures.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["file"]: r["reason"] for r in rows} == {r.relative: r.reason for r in report.failed}


def test_inputs_and_masks_are_never_modified(inpainter, messy_folder, tmp_path):
    src, masks = messy_folder
    before = digest(src), digest(masks)
    run(inpainter, src, tmp_path / "out", masks=masks, recursive=True, max_pixels=100_000)
    assert (digest(src), digest(masks)) == before


def test_no_temporary_files_are_left_in_the_output(inpainter, messy_folder, tmp_path):
    src, masks = messy_folder
    run(inpainter, src, tmp_path / "out", masks=masks, recursive=True, max_pixels=100_000)
    assert not [p for p in (tmp_path / "out").rglob(".*") if p.name != RUN_RECORD]


def test_an_image_without_holes_is_copied_byte_for_byte(inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    write_pair(src, masks, "clean.jpg", photo(40), np.zeros(SIZE, np.uint8), quality=80)
    report = run(inpainter, src, tmp_path / "out", masks=masks)
    assert report.count("unchanged") == 1
    assert (tmp_path / "out" / "clean.jpg").read_bytes() == (src / "clean.jpg").read_bytes()


def test_output_folder_inside_the_input_is_not_taken_as_input(inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    write_pair(src, masks, "a.png", photo(41))
    run(inpainter, src, src / "restored", masks=masks, recursive=True)
    report = run(inpainter, src, src / "restored", masks=masks, recursive=True)
    assert [r.relative for r in report.results] == ["a.png"]


def test_mask_folder_inside_the_input_is_not_taken_as_input(inpainter, tmp_path):
    src = tmp_path / "in"
    write_pair(src, src / "masks", "a.png", photo(42))
    report = run(inpainter, src, tmp_path / "out", masks=src / "masks", recursive=True)
    assert [(r.relative, r.status) for r in report.results] == [("a.png", "restored")]


def test_skip_existing_makes_a_rerun_resume(inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    for i in range(3):
        write_pair(src, masks, f"{i}.png", photo(50 + i))
    run(inpainter, src, tmp_path / "out", masks=masks)
    (tmp_path / "out" / "1.png").unlink()
    report = run(inpainter, src, tmp_path / "out", masks=masks)
    assert (report.count("skipped"), report.count("restored")) == (2, 1)


def test_overwrite_redoes_existing_outputs(inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    write_pair(src, masks, "a.png", photo(55))
    run(inpainter, src, tmp_path / "out", masks=masks)
    report = run(inpainter, src, tmp_path / "out", masks=masks, skip_existing=False)
    assert report.count("restored") == 1


def test_interrupt_stops_cleanly_with_a_report_and_failures_csv(inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    for i in range(12):
        write_pair(src, masks, f"{i:02d}.png", photo(60 + i))

    def interrupt(result):  # Ctrl-C arriving while the first result is reported
        raise KeyboardInterrupt

    report = restore(src, tmp_path / "out", inpainter,
                     RestoreOptions(masks=masks, workers=1, batch_size=1), on_result=interrupt)
    assert report.interrupted
    assert report.remaining > 0
    assert (tmp_path / "out" / "failures.csv").is_file()
    assert not [p for p in (tmp_path / "out").rglob(".*") if p.name != RUN_RECORD]
    resumed = run(inpainter, src, tmp_path / "out", masks=masks)
    assert resumed.count("restored") + resumed.count("skipped") == 12


class BatchRecordingInpainter(TorchInpainter):
    """The real torch inpainter, recording how many images each model call holds."""

    def inpaint(self, images, valid):
        self.batches.append(len(images))
        return super().inpaint(images, valid)

    @classmethod
    def load(cls, checkpoint: Path) -> BatchRecordingInpainter:
        inpainter = cls.from_checkpoint(checkpoint, device="cpu")
        inpainter.batches = []
        return inpainter


def test_same_size_images_are_inferred_in_batches(checkpoint, tmp_path):
    recording = BatchRecordingInpainter.load(checkpoint)
    src, masks = tmp_path / "in", tmp_path / "masks"
    for i in range(8):
        write_pair(src, masks, f"{i}.png", photo(70 + i))
    report = run(recording, src, tmp_path / "out", masks=masks, batch_size=4)
    assert report.count("restored") == 8
    assert recording.batches == [4, 4]


def test_a_model_call_holds_at_most_hd_size_squared_pixels(checkpoint, tmp_path):
    recording = BatchRecordingInpainter.load(checkpoint)
    src, masks = tmp_path / "in", tmp_path / "masks"
    for i in range(4):
        write_pair(src, masks, f"{i}.png", photo(75 + i))
    run(recording, src, tmp_path / "out", masks=masks, batch_size=4, hd_size=100)
    assert recording.batches == [3, 1]  # 100² // (48·64) = 3 images per call


def test_previews_show_input_mask_and_result_side_by_side(inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    write_pair(src, masks, "sub/a.png", photo(80))
    run(inpainter, src, tmp_path / "out", masks=masks, recursive=True, concat=True)
    preview = Image.open(tmp_path / "out" / "_previews" / "sub" / "a.png.jpg")
    assert preview.size == (3 * SIZE[1], SIZE[0])


# ----------------------------------------------------------------------------- sharding


def test_shards_cover_every_file_exactly_once(messy_folder, tmp_path):
    src, masks = messy_folder
    seen: list[str] = []
    for k in range(1, 4):
        tasks, failures, _, _ = plan(src, tmp_path / "out",
                                     RestoreOptions(masks=masks, recursive=True, shard=(k, 3)))
        seen += [t.relative.as_posix() for t in tasks] + [f.relative for f in failures]
    tasks, failures, _, _ = plan(src, tmp_path / "out", RestoreOptions(masks=masks, recursive=True))
    everything = [t.relative.as_posix() for t in tasks] + [f.relative for f in failures]
    assert sorted(seen) == sorted(everything)
    assert len(seen) == len(set(seen)) == 10


def test_shards_write_their_own_failures_csv(inpainter, messy_folder, tmp_path):
    src, masks = messy_folder
    report = run(inpainter, src, tmp_path / "out", masks=masks, recursive=True, shard=(2, 3))
    assert report.failures_csv.name == "failures-2-of-3.csv"


def test_shard_for_rank_splits_each_shard_between_torchrun_ranks():
    env = {"RANK": "3", "WORLD_SIZE": "4"}
    assert shard_for_rank(None, env) == (4, 4)
    assert shard_for_rank((2, 3), env) == (8, 12)
    assert shard_for_rank((2, 3), {}) == (2, 3)
    shares = {shard_for_rank((k, 3), {"RANK": str(r), "WORLD_SIZE": "4"})
              for k in (1, 2, 3) for r in range(4)}
    assert shares == {(i, 12) for i in range(1, 13)}


def test_parse_shard_rejects_k_outside_1_to_n():
    assert parse_shard("1/4") == (1, 4)
    with pytest.raises(ConfigError):
        parse_shard("0/4")
    with pytest.raises(ConfigError):
        parse_shard("five")


# ------------------------------------------------------------------------------ backends


def test_torch_and_onnx_backends_agree(checkpoint, inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    for i in range(3):
        write_pair(src, masks, f"{i}.png", photo(90 + i))
    export_onnx(checkpoint, tmp_path / "tiny.onnx")
    onnx = OnnxInpainter(tmp_path / "tiny.onnx", device="cpu")
    run(inpainter, src, tmp_path / "torch", masks=masks)
    run(onnx, src, tmp_path / "onnx", masks=masks)
    for i in range(3):
        a = np.asarray(Image.open(tmp_path / "torch" / f"{i}.png")).astype(int)
        b = np.asarray(Image.open(tmp_path / "onnx" / f"{i}.png")).astype(int)
        assert np.abs(a - b).max() <= 1  # float rounding may flip a level at .5
        assert (a != b).mean() < 0.01


@pytest.mark.parametrize("pixels", [0, 1, 2, 5])
def test_grown_holes_are_every_pixel_within_that_distance_of_a_hole(pixels):
    rng = np.random.default_rng(pixels)
    valid = rng.random((23, 31)) > 0.03
    before = valid.copy()
    grown = grow_holes(valid, pixels)
    holes = np.argwhere(~valid)
    for y in range(valid.shape[0]):
        for x in range(valid.shape[1]):
            near = ((holes - (y, x)) ** 2).sum(axis=1).min() <= pixels * pixels
            assert grown[y, x] == (not near)
    assert np.array_equal(valid, before)  # the input is not modified


# ------------------------------------------------------- where IN, OUT and the masks lie


def test_out_a_parent_of_the_input_restores_every_image(inpainter, tmp_path):
    src, masks = tmp_path / "parent" / "in", tmp_path / "masks"
    write_pair(src, masks, "a.png", photo(30))
    write_pair(src, masks, "sub/b.png", photo(31))
    report = run(inpainter, src, tmp_path / "parent", masks=masks, recursive=True)
    assert report.count("restored") == 2, report.results
    assert (tmp_path / "parent" / "a.png").is_file()
    assert (tmp_path / "parent" / "sub" / "b.png").is_file()


def test_mask_folder_a_parent_of_the_input_pairs_as_usual(inpainter, tmp_path):
    parent = tmp_path / "parent"
    src = parent / "in"
    write_pair(src, parent, "a.png", photo(32))  # the mask is parent/a.png
    report = run(inpainter, src, tmp_path / "out", masks=parent)
    assert report.count("restored") == 1, report.results


def test_masks_beside_the_images_are_used_as_masks_not_restored(inpainter, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name, seed in (("a.jpg", 33), ("b.png", 34)):
        Image.fromarray(photo(seed)).save(src / name)
        Image.fromarray(hole_mask()).save(src / f"{name}.png")  # a.jpg.png: a.jpg's mask
    before = digest(src)
    report = run(inpainter, src, tmp_path / "out", masks=src)
    assert sorted(r.relative for r in report.results) == ["a.jpg", "b.png"]
    assert report.count("restored") == 2, report.results
    assert sorted(p.name for p in (tmp_path / "out").glob("*.*g")) == ["a.jpg", "b.png"]
    assert digest(src) == before


def test_a_stem_mask_beside_its_image_is_reported_not_restored_as_an_image(inpainter, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(photo(35)).save(src / "a.jpg")
    Image.fromarray(hole_mask()).save(src / "a.png")  # meant as a.jpg's mask, but an image too
    report = run(inpainter, src, tmp_path / "out", masks=src)
    reasons = {r.relative: r.reason for r in report.failed}
    assert set(reasons) == {"a.jpg", "a.png"}
    assert "is one of the input images" in reasons["a.jpg"]
    assert "a.jpg.png" in reasons["a.jpg"]


def test_an_empty_input_folder_is_an_error_that_writes_nothing(inpainter, tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (src / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="no images to restore") as caught:
        run(inpainter, src, tmp_path / "out", mask_from="alpha")
    assert str(src) in str(caught.value) and "--recursive" in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_restoring_a_file_into_the_folder_that_holds_it_is_refused(inpainter, tmp_path):
    src, masks = tmp_path / "same", tmp_path / "masks"
    write_pair(src, masks, "a.png", photo(36))
    before = digest(src)
    with pytest.raises(InputError, match="OUT is the folder that holds a.png"):
        run(inpainter, src / "a.png", src, masks=masks)
    assert digest(src) == before  # no failures.csv, no restored copy over the input


def test_concat_on_a_rerun_writes_the_previews_the_first_run_did_not(inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    write_pair(src, masks, "a.png", photo(37))
    run(inpainter, src, tmp_path / "out", masks=masks)
    report = run(inpainter, src, tmp_path / "out", masks=masks, concat=True)
    assert report.count("restored") == 1
    assert (tmp_path / "out" / "_previews" / "a.png.jpg").is_file()
    again = run(inpainter, src, tmp_path / "out", masks=masks, concat=True)
    assert again.count("skipped") == 1


def test_only_a_mask_of_more_than_half_hole_gets_a_warning(inpainter, tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    half = hole_mask(box=(0, 0, SIZE[0], SIZE[1] // 2))  # exactly 50%: no warning
    most = hole_mask(box=(0, 0, SIZE[0], SIZE[1] // 2 + 8))
    write_pair(src, masks, "half.png", photo(38), mask=half)
    write_pair(src, masks, "most.png", photo(39), mask=most)
    report = run(inpainter, src, tmp_path / "out", masks=masks)
    warnings = {r.relative: r.warning for r in report.results}
    assert report.count("restored") == 2 and report.ok
    assert warnings["half.png"] == ""
    assert "62% of the image as hole" in warnings["most.png"]
    assert "pass --invert-mask" in warnings["most.png"]


# ------------------------------------------------------------- masks found by the detector


@pytest.fixture(scope="module")
def detector_ckpt(tmp_path_factory) -> Path:
    return save_detector(tmp_path_factory.mktemp("det") / "bright.pt", bright_detector())


def write_scratched(folder: Path, rel: str, seed: int = 0) -> np.ndarray:
    pixels, damage = scratched(seed=seed)
    (folder / rel).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(folder / rel)
    return damage


def test_detected_masks_are_restored_and_kept_in_out_masks(inpainter, detector_ckpt, tmp_path):
    src = tmp_path / "in"
    damage = {"a.png": write_scratched(src, "a.png"),
              "sub/b.png": write_scratched(src, "sub/b.png", seed=1)}
    out = tmp_path / "out"
    report = run(inpainter, src, out, mask_from="detect", detector=detector_ckpt, recursive=True)
    assert report.ok and report.count("restored") == 2
    for rel, hole in damage.items():
        before = np.asarray(Image.open(src / rel))
        after = np.asarray(Image.open(out / rel))
        assert np.array_equal(after[~hole], before[~hole])  # only the scratches change
        assert (after[hole] != before[hole]).any()
        kept = np.asarray(Image.open(out / "_masks" / rel))
        assert np.array_equal(kept == 255, hole)


def test_without_a_mask_option_a_given_detector_finds_the_masks(inpainter, detector_ckpt,
                                                                tmp_path):
    write_scratched(tmp_path / "in", "a.png")
    options = RestoreOptions(detector=detector_ckpt)
    report = restore(tmp_path / "in", tmp_path / "out", inpainter, options)
    assert options.mask_from == "detect" and report.count("restored") == 1
    assert (tmp_path / "out" / "_masks" / "a.png").is_file()


def test_restore_keeps_the_masks_detect_writes(inpainter, detector_ckpt, tmp_path):
    src = tmp_path / "in"
    write_scratched(src, "a.png")
    write_scratched(src, "a.tif", seed=3)  # the same stem: full-name masks
    run(inpainter, src, tmp_path / "out", mask_from="detect", detector=detector_ckpt,
        grow=1, min_area=3)
    detector = TorchDetector.from_checkpoint(detector_ckpt, device="cpu")
    from pconv_cli.detect import DetectOptions

    detect_folder(src, tmp_path / "masks", detector, DetectOptions(grow=1, min_area=3))
    for name in ("a.png", "a.tif.png"):
        kept = (tmp_path / "out" / "_masks" / name).read_bytes()
        assert kept == (tmp_path / "masks" / name).read_bytes()


def test_the_kept_masks_repeat_the_run(inpainter, detector_ckpt, tmp_path):
    src = tmp_path / "in"
    write_scratched(src, "a.png")
    first = tmp_path / "first"
    run(inpainter, src, first, mask_from="detect", detector=detector_ckpt, grow_mask=1)
    again = tmp_path / "again"
    run(inpainter, src, again, masks=first / "_masks", grow_mask=1)
    assert np.array_equal(np.asarray(Image.open(first / "a.png")),
                          np.asarray(Image.open(again / "a.png")))


def test_detection_settings_are_recorded_and_a_change_is_refused(inpainter, detector_ckpt,
                                                                 tmp_path):
    write_scratched(tmp_path / "in", "a.png")
    out = tmp_path / "out"
    run(inpainter, tmp_path / "in", out, mask_from="detect", detector=detector_ckpt)
    settings = json.loads((out / RUN_RECORD).read_text())["settings"]
    assert settings["mask-from"] == "detect" and settings["threshold"] == 0.5
    assert settings["detector"] == "bright" and len(settings["detector-sha256"]) == 64
    with pytest.raises(InputError, match="--threshold 0.4 \\(was 0.5\\)"):
        run(inpainter, tmp_path / "in", out, mask_from="detect", detector=detector_ckpt,
            threshold=0.4)


def test_a_kept_mask_missing_makes_the_file_be_redone(inpainter, detector_ckpt, tmp_path):
    write_scratched(tmp_path / "in", "a.png")
    out = tmp_path / "out"
    run(inpainter, tmp_path / "in", out, mask_from="detect", detector=detector_ckpt)
    (out / "_masks" / "a.png").unlink()
    report = run(inpainter, tmp_path / "in", out, mask_from="detect", detector=detector_ckpt)
    assert report.count("restored") == 1 and (out / "_masks" / "a.png").is_file()


@pytest.mark.skipif(bundled_detector_installed(), reason="a bundled detector is installed")
def test_without_masks_or_a_detector_the_error_names_detector():
    with pytest.raises(ConfigError, match="no masks given: .*--detector CKPT"):
        RestoreOptions().validate()
    with pytest.raises(ConfigError, match="--mask-from detect: no bundled detector is "
                                          "installed; pass --detector CKPT"):
        RestoreOptions(mask_from="detect").validate()


def test_detector_with_mask_files_is_refused(detector_ckpt):
    with pytest.raises(ConfigError, match="--detector finds the masks"):
        RestoreOptions(masks=Path("m"), detector=detector_ckpt).validate()
    with pytest.raises(ConfigError, match="only one"):
        RestoreOptions(masks=Path("m"), mask_from="detect").validate()


def test_an_input_folder_named_masks_is_refused_when_detecting(inpainter, detector_ckpt,
                                                               tmp_path):
    write_scratched(tmp_path / "in", "_masks/a.png")
    with pytest.raises(InputError, match="top-level folder '_masks'"):
        run(inpainter, tmp_path / "in", tmp_path / "out", mask_from="detect",
            detector=detector_ckpt, recursive=True)


# ------------------------------------------------------------------------- painted masks

MAGENTA = (255, 0, 255)


def painted_copy(pixels: np.ndarray, box=(10, 12, 30, 40)) -> np.ndarray:
    painted = pixels.copy()
    top, left, bottom, right = box
    painted[top:bottom, left:right] = MAGENTA
    return painted


@pytest.mark.parametrize("text", ["#ff00ff", "ff00ff", "#F0F", "magenta", "rgb(255,0,255)"])
def test_colours_are_read_in_the_usual_spellings(text):
    assert parse_color(text) == MAGENTA


def test_a_colour_that_is_not_one_is_refused():
    with pytest.raises(InputError, match="not a colour"):
        parse_color("#ff00f")


def test_the_painted_pixels_of_a_png_are_exactly_the_holes(tmp_path):
    Image.fromarray(painted_copy(photo(0))).save(tmp_path / "p.png")
    valid = read_painted_mask(tmp_path / "p.png", MAGENTA)
    assert np.array_equal(~valid, hole_mask() == 255)


def test_a_painted_jpeg_drifts_but_its_strokes_are_found(tmp_path):
    pixels = photo(0, size=(96, 128))
    painted = pixels.copy()
    painted[40:44, 10:110] = MAGENTA  # a 4-px stroke
    painted[60:80, 20:40] = MAGENTA
    Image.fromarray(painted).save(tmp_path / "p.jpg", quality=85)
    drifted = np.asarray(Image.open(tmp_path / "p.jpg"), dtype=int)
    assert np.abs(drifted[41:43, 12:108] - MAGENTA).max() > 0  # JPEG moved the colour
    hole = ~read_painted_mask(tmp_path / "p.jpg", MAGENTA, tolerance=40)
    truth = np.zeros((96, 128), bool)
    truth[40:44, 10:110] = True
    truth[60:80, 20:40] = True
    assert hole[61:79, 21:39].all() and hole[41:43, 12:108].mean() > 0.95
    assert not hole[grow_holes(~truth, 3)].any()  # nothing away from the paint


def test_restore_with_painted_masks_fills_the_painted_pixels(inpainter, tmp_path):
    src, painted = tmp_path / "in", tmp_path / "painted"
    src.mkdir()
    painted.mkdir()
    pixels = photo(0)
    Image.fromarray(pixels).save(src / "a.png")
    Image.fromarray(painted_copy(pixels)).save(painted / "a.png")
    out = tmp_path / "out"
    report = run(inpainter, src, out, masks=painted, mask_color="#ff00ff")
    assert report.count("restored") == 1
    after = np.asarray(Image.open(out / "a.png"))
    hole = hole_mask() == 255
    assert np.array_equal(after[~hole], pixels[~hole])
    assert (after[hole] != pixels[hole]).any()  # the painted pixels were filled
    settings = json.loads((out / RUN_RECORD).read_text())["settings"]
    assert settings["mask-color"] == "#ff00ff" and settings["color-tolerance"] == 40.0


def test_mask_color_needs_mask_files_and_no_invert():
    with pytest.raises(ConfigError, match="--mask-color reads painted copies"):
        RestoreOptions(mask_from="alpha", mask_color="#f0f").validate()
    with pytest.raises(ConfigError, match="--invert-mask does not apply"):
        RestoreOptions(masks=Path("m"), mask_color="#f0f", invert_mask=True).validate()


def test_a_hole_too_wide_for_a_tile_is_inferred_whole_at_hd_size():
    """Tiles inside a missing corner would see no image; that crop is shrunk instead, while
    a thin scratch elsewhere stays at native resolution."""
    height, width = 1000, 1500
    image = ImageFile(np.zeros((height, width, 3), np.uint8), "RGB", "PNG")
    valid = np.ones((height, width), bool)
    valid[:700, :700] = False  # a missing corner, larger than --hd-trigger
    valid[900, 800:1450] = False  # a scratch far from it
    jobs = make_jobs(image, valid, RestoreOptions(hd_trigger=512, hd_size=256, hd_margin=32),
                     multiple=8)
    corner = [job for job in jobs if job.box[0] == 0 and job.box[1] == 0]
    assert len(corner) == 1 and corner[0].scaled and max(corner[0].shape) == 256
    scratch = [job for job in jobs if job.box[1] > 700]
    assert scratch and not any(job.scaled for job in scratch)


def test_widest_hole_measures_widths_on_the_grid():
    from pconv_cli.restore import widest_hole

    valid = np.ones((400, 400), bool)
    assert widest_hole(valid) == 0
    valid[100, 20:380] = False
    assert widest_hole(valid) <= 16  # a 1-px line: one grid cell
    valid[200:320, 200:320] = False
    assert 100 <= widest_hole(valid) <= 150  # a 120-px square
