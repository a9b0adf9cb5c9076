"""pconv_cli.detect: damage masks for folders of images, with torch and ONNX Runtime."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from detect_helpers import bright_detector, random_detector, save_detector, scratched
from PIL import Image

from pconv_cli import detect as detect_module
from pconv_cli import detection
from pconv_cli.detect import (
    DETECT_CSV,
    DETECT_RECORD,
    DetectOptions,
    OnnxDetector,
    TorchDetector,
    default_detector_path,
    detect_folder,
    find_damage,
    load_damage_detector,
    overlay,
)
from pconv_cli.errors import CheckpointError, ConfigError, InputError, WeightsUnavailableError
from pconv_cli.export import export_onnx
from pconv_cli.imaging import load_mask, read_image


@pytest.fixture(scope="module")
def bright_ckpt(tmp_path_factory) -> Path:
    return save_detector(tmp_path_factory.mktemp("det") / "bright.pt", bright_detector())


@pytest.fixture(scope="module")
def detector(bright_ckpt) -> TorchDetector:
    return TorchDetector.from_checkpoint(bright_ckpt, device="cpu")


@pytest.fixture(scope="module")
def random_onnx(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("random-det")
    ckpt = save_detector(folder / "random.pt", random_detector())
    onnx = folder / "random.onnx"
    export_onnx(ckpt, onnx)
    return ckpt, onnx


def damage_of(path: Path) -> np.ndarray:
    """A written mask file as True = damage."""
    return ~load_mask(path)


def write_scratched(folder: Path, rel: str, **kwargs) -> np.ndarray:
    pixels, damage = scratched(**kwargs)
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return damage


def test_the_default_tile_is_detections_own():
    assert detect_module.DEFAULT_TILE == detection.DEFAULT_TILE
    assert detect_module.PRECISIONS == detection.PRECISIONS


def test_masks_mark_the_scratches_white_in_a_mirrored_tree(detector, tmp_path):
    src = tmp_path / "in"
    truth = {"a.png": write_scratched(src, "a.png"),
             "sub/b.png": write_scratched(src, "sub/b.png", seed=1, scratches=((5, 0, 64),))}
    report = detect_folder(src, tmp_path / "out", detector, DetectOptions(recursive=True))
    assert report.ok and report.count("detected") == 2
    for rel, damage in truth.items():
        written = Image.open(tmp_path / "out" / rel)
        assert written.mode == "L" and written.size == (64, 48)
        assert set(np.unique(np.asarray(written))) == {0, 255}
        assert np.array_equal(damage_of(tmp_path / "out" / rel), damage)


def test_detect_csv_has_each_images_damaged_fraction_and_regions(detector, tmp_path):
    src = tmp_path / "in"
    damage = write_scratched(src, "a.png")
    write_scratched(src, "clean.png", scratches=())
    detect_folder(src, tmp_path / "out", detector)
    with open(tmp_path / "out" / DETECT_CSV, newline="") as handle:
        rows = {row["file"]: row for row in csv.DictReader(handle)}
    assert rows["a.png"]["regions"] == "2"
    assert float(rows["a.png"]["damaged_fraction"]) == pytest.approx(damage.mean(), abs=1e-6)
    assert rows["clean.png"]["regions"] == "0" and float(rows["clean.png"]["damaged_fraction"]) == 0
    assert (rows["a.png"]["width"], rows["a.png"]["height"]) == ("64", "48")


def test_mask_has_the_size_and_orientation_restore_reads(detector, tmp_path):
    pixels, damage = scratched()
    src = tmp_path / "in"
    src.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: upright it is rotated 90° clockwise
    Image.fromarray(pixels).save(src / "turned.png", exif=exif.tobytes())
    detect_folder(src, tmp_path / "out", detector)
    upright = read_image(src / "turned.png")
    written = damage_of(tmp_path / "out" / "turned.png")
    assert written.shape == (upright.height, upright.width) == (64, 48)
    assert np.array_equal(written, np.rot90(damage, k=-1))


@pytest.mark.parametrize("mode", ["L", "I;16", "RGBA"])
def test_grey_16_bit_and_alpha_images_are_read_as_restore_reads_them(detector, tmp_path, mode):
    pixels, damage = scratched()
    grey = pixels.mean(axis=2)
    if mode == "L":
        img = Image.fromarray(grey.astype(np.uint8))
    elif mode == "I;16":
        img = Image.fromarray((grey * 257).astype(np.uint16))
    else:
        img = Image.fromarray(np.dstack([pixels, np.full(grey.shape, 255, np.uint8)]))
    (tmp_path / "in").mkdir()
    img.save(tmp_path / "in" / "x.png")
    detect_folder(tmp_path / "in", tmp_path / "out", detector)
    assert np.array_equal(damage_of(tmp_path / "out" / "x.png"), damage)


def test_tiles_give_the_masks_of_one_pass(random_onnx, tmp_path):
    ckpt, _ = random_onnx
    torch_detector = TorchDetector.from_checkpoint(ckpt, device="cpu")
    image = read_image(_noisy_png(tmp_path / "x.png", (75, 130)))
    whole = torch_detector.probabilities(image, tile=4096)
    tiled = torch_detector.probabilities(image, tile=32)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def _noisy_png(path: Path, size) -> Path:
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


def test_onnx_runtime_and_torch_give_the_same_probabilities_and_masks(random_onnx, tmp_path):
    ckpt, onnx = random_onnx
    image = read_image(_noisy_png(tmp_path / "x.png", (75, 130)))
    by_torch = TorchDetector.from_checkpoint(ckpt, device="cpu")
    by_ort = OnnxDetector(onnx, "cpu")
    assert by_ort.margin == by_torch.margin and by_ort.multiple == by_torch.multiple
    p_torch = by_torch.probabilities(image, tile=24)
    p_ort = by_ort.probabilities(image, tile=24)
    assert np.abs(p_torch - p_ort).max() < 1e-4
    threshold = float(np.median(p_torch))  # half the pixels are damage: a demanding comparison
    m_torch = find_damage(by_torch, image, threshold=threshold, tile=24).mask
    m_ort = find_damage(by_ort, image, threshold=threshold, tile=24).mask
    differing = m_torch != m_ort
    assert m_torch.any() and not m_torch.all()
    # Only pixels whose probability is within float noise of the threshold may differ.
    assert np.all(np.abs(p_torch[differing] - threshold) < 1e-4)


def test_threshold_grow_and_min_area_shape_the_mask(detector, tmp_path):
    pixels, _ = scratched(scratches=((10, 5, 40),))
    pixels[30, 30] = 250  # a one-pixel speck
    (tmp_path / "in").mkdir()
    Image.fromarray(pixels).save(tmp_path / "in" / "a.png")
    image = read_image(tmp_path / "in" / "a.png")
    plain = find_damage(detector, image)
    assert plain.regions == 2
    no_specks = find_damage(detector, image, min_area=5)
    assert no_specks.regions == 1 and not no_specks.mask[30, 30]
    grown = find_damage(detector, image, min_area=5, grow=2)
    assert grown.mask.sum() > no_specks.mask.sum() and grown.mask[12:14, 5:40].all()


def test_bad_files_are_listed_and_the_others_detected(detector, tmp_path):
    src = tmp_path / "in"
    write_scratched(src, "good.png")
    (src / "broken.png").write_bytes(b"not a png")
    (src / "anim.gif").write_bytes(b"GIF89a")
    report = detect_folder(src, tmp_path / "out", detector)
    assert not report.ok
    assert {r.relative for r in report.failed} == {"broken.png", "anim.gif"}
    assert (tmp_path / "out" / "good.png").is_file()
    with open(tmp_path / "out" / "failures.csv", newline="") as handle:
        listed = {row["file"] for row in csv.DictReader(handle)}
    assert listed == {"broken.png", "anim.gif"}


def test_a_rerun_skips_existing_masks_and_keeps_their_rows(detector, tmp_path):
    src = tmp_path / "in"
    write_scratched(src, "a.png")
    write_scratched(src, "b.png", seed=2)
    out = tmp_path / "out"
    detect_folder(src, out, detector)
    before = (out / "a.png").stat().st_mtime_ns
    report = detect_folder(src, out, detector)
    assert report.count("skipped") == 2 and report.count("detected") == 0
    assert (out / "a.png").stat().st_mtime_ns == before
    with open(out / DETECT_CSV, newline="") as handle:
        assert [row["file"] for row in csv.DictReader(handle)] == ["a.png", "b.png"]


def test_other_settings_into_the_same_out_are_refused_unless_overwrite(detector, tmp_path):
    src = tmp_path / "in"
    write_scratched(src, "a.png")
    out = tmp_path / "out"
    detect_folder(src, out, detector)
    assert json.loads((out / DETECT_RECORD).read_text())["settings"]["threshold"] == 0.5
    with pytest.raises(InputError, match="--threshold 0.3 \\(was 0.5\\)"):
        detect_folder(src, out, detector, DetectOptions(threshold=0.3))
    report = detect_folder(src, out, detector, DetectOptions(threshold=0.3, skip_existing=False))
    assert report.count("detected") == 1


def test_images_sharing_a_stem_get_masks_restore_pairs_with_them(detector, tmp_path):
    src = tmp_path / "in"
    write_scratched(src, "a.png")
    write_scratched(src, "a.tif", scratches=((2, 2, 20),))
    detect_folder(src, tmp_path / "out", detector)
    assert (tmp_path / "out" / "a.png").is_file() and (tmp_path / "out" / "a.tif.png").is_file()
    assert damage_of(tmp_path / "out" / "a.tif.png")[2:4, 2:20].all()


def test_preview_tints_the_damage_magenta(detector, tmp_path):
    src = tmp_path / "in"
    damage = write_scratched(src, "a.png")
    detect_folder(src, tmp_path / "out", detector, DetectOptions(preview=True))
    preview = np.asarray(Image.open(tmp_path / "out" / "_previews" / "a.jpg"), dtype=int)
    assert preview.shape == (48, 64, 3)
    tinted, clean = preview[damage].mean(axis=0), preview[~damage].mean(axis=0)
    assert tinted[0] > 150 and tinted[2] > 150 and tinted[1] < 120  # magenta
    assert clean.max() < 110


def test_a_hair_stays_visible_in_the_preview_of_a_large_image(detector):
    pixels = np.full((3000, 5000, 3), 60, np.uint8)
    damage = np.zeros((3000, 5000), bool)
    damage[1501, :] = True  # one pixel high
    image = read_image_from(pixels)
    small = overlay(image, damage, side=1000)
    assert max(small.shape[:2]) <= 1000
    assert (small[:, :, 0] > 150).any(axis=1).sum() >= 1


def read_image_from(pixels: np.ndarray):
    from pconv_cli.imaging import ImageFile

    return ImageFile(pixels=pixels, mode="RGB", format="PNG")


def test_out_may_not_be_the_input_folder(detector, tmp_path):
    write_scratched(tmp_path, "a.png")
    with pytest.raises(InputError, match="detect never overwrites its inputs"):
        detect_folder(tmp_path, tmp_path, detector)


def test_a_folder_without_images_says_so(detector, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="no images to look for damage in"):
        detect_folder(tmp_path / "in", tmp_path / "out", detector)


@pytest.mark.parametrize("options, message", [
    (DetectOptions(threshold=1.0), "--threshold 1: must be between 0 and 1"),
    (DetectOptions(grow=-1), "--grow must be"),
    (DetectOptions(tile=0), "--tile must be at least 1"),
])
def test_bad_settings_are_refused_before_anything_is_read(detector, tmp_path, options, message):
    write_scratched(tmp_path / "in", "a.png")
    with pytest.raises(ConfigError, match=message):
        detect_folder(tmp_path / "in", tmp_path / "out", detector, options)
    assert not (tmp_path / "out").exists()


def test_without_a_bundled_detector_the_error_names_the_option(monkeypatch, tmp_path):
    monkeypatch.setattr(detect_module, "DEFAULT_DETECTOR_PATH", tmp_path / "detector.pt")
    with pytest.raises(WeightsUnavailableError,
                       match="no bundled detector is installed; pass --model CKPT"):
        load_damage_detector(option="--model CKPT")


def test_a_bundled_detector_when_present_is_the_default(monkeypatch, tmp_path, bright_ckpt):
    installed = tmp_path / "detector.pt"
    installed.write_bytes(bright_ckpt.read_bytes())
    monkeypatch.setattr(detect_module, "DEFAULT_DETECTOR_PATH", installed)
    assert default_detector_path() == installed
    assert load_damage_detector(device="cpu").name == "detector"


def test_an_inpainter_is_refused_as_a_detector_in_one_line(checkpoint):
    with pytest.raises(CheckpointError, match="holds an inpainting model"):
        load_damage_detector(checkpoint, device="cpu")


def test_an_inpainter_onnx_is_refused_as_a_detector(checkpoint, tmp_path):
    onnx = tmp_path / "inpainter.onnx"
    export_onnx(checkpoint, onnx)
    with pytest.raises(CheckpointError, match="holds an inpainting model"):
        OnnxDetector(onnx, "cpu")


def test_a_model_path_ending_in_onnx_runs_with_onnx_runtime(random_onnx):
    _, onnx = random_onnx
    assert load_damage_detector(onnx, device="cpu").backend.startswith("onnxruntime")


def test_precision_auto_is_bf16_only_where_the_cpu_computes_it_natively(monkeypatch):
    import torch

    from pconv_cli.detection import resolve_precision

    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    for native in (False, True):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda n=native: n)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
        assert resolve_precision("auto", cpu) == ("bf16" if native else "fp32")
    with pytest.raises(ConfigError, match="--precision fp16"):
        resolve_precision("fp16", cpu)


def test_bf16_detection_marks_what_fp32_marks_but_a_few_pixels(random_onnx):
    """bf16 rounds the activations: the probabilities move by a little, and a mask only where
    a probability sits at the threshold."""
    ckpt, onnx = random_onnx
    image = (np.random.default_rng(4).random((96, 128, 3)) * 255).astype(np.uint8)
    fp32 = TorchDetector.from_checkpoint(ckpt, device="cpu", precision="fp32")
    bf16 = TorchDetector.from_checkpoint(ckpt, device="cpu", precision="bf16")
    assert bf16.backend == "torch cpu, bf16" and fp32.backend == "torch cpu"
    exact, rounded = fp32.probabilities(image), bf16.probabilities(image)
    assert 0 < np.abs(exact - rounded).max() < 0.05
    assert ((exact > 0.5) != (rounded > 0.5)).mean() < 0.01
    with pytest.raises(ConfigError, match="exported in"):
        load_damage_detector(onnx, device="cpu", precision="bf16")
