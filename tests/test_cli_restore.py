"""``pconv restore`` and ``pconv export`` through the command line."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from detect_helpers import bright_detector, save_detector, scratched
from PIL import Image
from typer.testing import CliRunner

from pconv_cli.cli import app
from pconv_cli.detect import DEFAULT_DETECTOR_PATH
from pconv_cli.inference import DEFAULT_MODEL_PATH

runner = CliRunner()


@pytest.fixture(scope="module")
def onnx_model(checkpoint, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    result = runner.invoke(app, ["export", str(checkpoint), "--onnx", str(path)])
    assert result.exit_code == 0, result.output
    return path


def make_folder(root: Path, names=("a.png", "sub/b.jpg")) -> tuple[Path, Path]:
    src, masks = root / "in", root / "masks"
    rng = np.random.default_rng(0)
    for name in names:
        image = src / name
        image.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((rng.random((40, 56, 3)) * 255).astype(np.uint8)).save(image)
        mask = np.zeros((40, 56), np.uint8)
        mask[8:20, 10:30] = 255
        mask_path = masks / Path(name).with_suffix(".png")
        mask_path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask).save(mask_path)
    return src, masks


def restore_args(src: Path, out: Path, masks: Path, *extra: str) -> list[str]:
    return ["restore", str(src), str(out), "--masks", str(masks), "--recursive", *extra]


def test_restore_exits_0_when_every_file_is_restored(checkpoint, tmp_path):
    src, masks = make_folder(tmp_path)
    result = runner.invoke(app, restore_args(src, tmp_path / "out", masks, "--model",
                                             str(checkpoint), "--device", "cpu"))
    assert result.exit_code == 0, result.output
    assert "restore summary" in result.output
    assert "failures listed" not in result.output  # nothing failed: nothing to point at
    assert (tmp_path / "out" / "sub" / "b.jpg").is_file()


def restore_variants(checkpoint: Path, tmp_path: Path, option: str, values) -> tuple[dict, dict]:
    """Restore one image once per value of ``option``: {value: pixels}, {value: CLI output}."""
    src, masks = make_folder(tmp_path, names=("a.png",))
    pixels, texts = {}, {}
    for value in values:
        out = tmp_path / f"out-{option.strip('-')}-{value}"
        result = runner.invoke(app, restore_args(src, out, masks, "--model", str(checkpoint),
                                                 "--device", "cpu", option, str(value)))
        assert result.exit_code == 0, result.output
        pixels[value] = np.asarray(Image.open(out / "a.png"), dtype=np.int16)
        texts[value] = result.output
    return pixels, texts


def test_restore_with_a_flip_ensemble_says_so_and_differs_only_in_the_holes(checkpoint,
                                                                            tmp_path):
    outputs, texts = restore_variants(checkpoint, tmp_path, "--flips", (1, 4))
    for flips in (1, 4):
        assert ("4 flips" in texts[flips]) == (flips == 4)
    hole = np.zeros((40, 56), bool)
    hole[8:20, 10:30] = True
    assert np.array_equal(outputs[1][~hole], outputs[4][~hole])
    assert np.abs(outputs[1][hole] - outputs[4][hole]).max() > 0


def test_restore_blends_seams_unless_told_not_to(checkpoint, tmp_path):
    outputs, texts = restore_variants(checkpoint, tmp_path, "--blend", ("poisson", "none"))
    for blend in ("poisson", "none"):
        assert ("Poisson blend" in texts[blend]) == (blend == "poisson")
    hole = np.zeros((40, 56), bool)
    hole[8:20, 10:30] = True
    original = np.asarray(Image.open(tmp_path / "in" / "a.png"), dtype=np.int16)
    assert np.array_equal(outputs["poisson"][~hole], original[~hole])
    assert np.abs(outputs["poisson"][hole] - outputs["none"][hole]).max() > 0
    # The blended fill meets its surroundings: a smaller step across the hole's outline.
    def outline_step(image):
        rows = slice(8, 20)
        return np.abs(image[rows, 10] - image[rows, 9]).mean() + np.abs(
            image[rows, 29] - image[rows, 30]).mean()
    assert outline_step(outputs["poisson"]) < outline_step(outputs["none"])


def test_restore_refuses_a_flip_count_it_does_not_have(checkpoint, tmp_path):
    src, masks = make_folder(tmp_path, names=("a.png",))
    result = runner.invoke(app, restore_args(src, tmp_path / "out", masks, "--model",
                                             str(checkpoint), "--flips", "3"))
    assert result.exit_code == 1
    assert "--flips 3: choose 1 (no ensemble), 2, 4 or 8" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_restore_exits_1_and_lists_the_bad_file_in_failures_csv(checkpoint, tmp_path):
    src, masks = make_folder(tmp_path)
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    result = runner.invoke(app, restore_args(src, tmp_path / "out", masks, "--model",
                                             str(checkpoint), "--device", "cpu"))
    assert result.exit_code == 1
    assert "broken.png" in result.output
    assert "failures listed in" in result.output
    with open(tmp_path / "out" / "failures.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["file"] for r in rows] == ["broken.png"]
    assert (tmp_path / "out" / "a.png").is_file()  # the good files were still restored


def test_rerun_skips_existing_outputs_and_exits_0(checkpoint, tmp_path):
    src, masks = make_folder(tmp_path)
    args = restore_args(src, tmp_path / "out", masks, "--model", str(checkpoint))
    runner.invoke(app, args)
    result = runner.invoke(app, args)
    assert result.exit_code == 0
    assert "skipped (output exists)" in result.output


def test_restore_with_the_onnx_backend_reports_the_provider_used(onnx_model, tmp_path):
    src, masks = make_folder(tmp_path)
    result = runner.invoke(app, restore_args(src, tmp_path / "out", masks, "--onnx",
                                             str(onnx_model), "--device", "cpu"))
    assert result.exit_code == 0, result.output
    assert "onnxruntime CPUExecutionProvider" in result.output


def test_restore_shard_processes_only_its_share(checkpoint, tmp_path):
    src, masks = make_folder(tmp_path, names=("1.png", "2.png", "3.png", "4.png"))
    result = runner.invoke(app, restore_args(src, tmp_path / "out", masks, "--model",
                                             str(checkpoint), "--shard", "2/2"))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["2.png", "4.png"]
    assert (tmp_path / "out" / "failures-2-of-2.csv").is_file()


@pytest.mark.skipif(DEFAULT_DETECTOR_PATH.is_file(), reason="a bundled detector is installed")
def test_restore_without_masks_is_a_one_line_error(checkpoint, tmp_path):
    src, _ = make_folder(tmp_path)
    result = runner.invoke(app, ["restore", str(src), str(tmp_path / "out"), "--model",
                                 str(checkpoint)])
    assert result.exit_code == 1
    assert "no masks given" in result.output
    assert "Traceback" not in result.output


def test_restore_into_its_own_input_folder_is_refused(checkpoint, tmp_path):
    src, masks = make_folder(tmp_path)
    result = runner.invoke(app, restore_args(src, src, masks, "--model", str(checkpoint)))
    assert result.exit_code == 1
    assert "never overwrites its inputs" in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
@pytest.mark.parametrize("backend", ["model", "onnx"])
def test_device_cuda_without_a_gpu_is_an_error(checkpoint, onnx_model, tmp_path, backend):
    src, masks = make_folder(tmp_path)
    model = ["--model", str(checkpoint)] if backend == "model" else ["--onnx", str(onnx_model)]
    result = runner.invoke(app, restore_args(src, tmp_path / "out", masks, *model,
                                             "--device", "cuda"))
    assert result.exit_code == 1
    assert "--device cuda" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(DEFAULT_MODEL_PATH.is_file(), reason="the bundled model exists")
def test_restore_without_a_model_names_the_missing_bundled_model(tmp_path):
    src, masks = make_folder(tmp_path)
    result = runner.invoke(app, restore_args(src, tmp_path / "out", masks))
    assert result.exit_code == 1
    assert "bundled default model is missing" in result.output


def test_export_prints_the_check_and_how_to_use_the_file(checkpoint, tmp_path):
    result = runner.invoke(app, ["export", str(checkpoint), "--onnx",
                                 str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output
    assert "max abs diff" in result.output
    assert "pconv restore IN OUT --onnx" in result.output
    assert "pconv evaluate --onnx" in result.output


def test_export_with_an_invalid_static_size_exits_1(checkpoint, tmp_path):
    result = runner.invoke(app, ["export", str(checkpoint), "--onnx", str(tmp_path / "m.onnx"),
                                 "--static", "20x20"])
    assert result.exit_code == 1
    assert "nearest valid size 24x24" in result.output  # 20 is halfway: rounded up
    assert not (tmp_path / "m.onnx").exists()


def test_grow_mask_fills_the_pixels_around_each_hole_too(checkpoint, tmp_path):
    outputs, _ = restore_variants(checkpoint, tmp_path, "--grow-mask", (0, 3))
    original = np.asarray(Image.open(tmp_path / "in" / "a.png"), dtype=np.int16)
    grown = np.zeros((40, 56), bool)
    grown[5:23, 7:33] = True  # the 12×20 hole at [8:20, 10:30] grown by 3 px (square bound)
    assert np.array_equal(outputs[3][~grown], original[~grown])  # nothing further out changes
    ring = grown.copy()
    ring[8:20, 10:30] = False
    assert (outputs[3][ring] != original[ring]).any()  # the ring around the hole is refilled
    assert np.array_equal(outputs[0][ring], original[ring])


def test_a_negative_grow_mask_is_one_line_and_exit_1(checkpoint, tmp_path):
    src, masks = make_folder(tmp_path, names=("a.png",))
    result = runner.invoke(app, restore_args(src, tmp_path / "out", masks, "--model",
                                             str(checkpoint), "--grow-mask", "-1"))
    assert result.exit_code == 1
    assert "--grow-mask must be ≥ 0" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(("fmt", "written"), [("jpeg", "a.jpg"), ("tif", "a.tif")])
def test_format_accepts_jpeg_and_tif_as_aliases(checkpoint, tmp_path, fmt, written):
    src, masks = make_folder(tmp_path, names=("a.png",))
    out = tmp_path / "out"
    result = runner.invoke(app, restore_args(src, out, masks, "--model", str(checkpoint),
                                             "--format", fmt))
    assert result.exit_code == 0, result.output
    assert Image.open(out / written).format == ("JPEG" if fmt == "jpeg" else "TIFF")


def test_masks_dot_with_in_below_the_current_folder_restores(checkpoint, tmp_path, monkeypatch):
    src, _ = make_folder(tmp_path / "masks-here", names=("a.png",))
    # make_folder wrote the mask to masks-here/masks/a.png; keep one beside IN's parent instead
    (tmp_path / "masks-here" / "masks" / "a.png").rename(tmp_path / "masks-here" / "a.png")
    monkeypatch.chdir(tmp_path / "masks-here")
    result = runner.invoke(app, ["restore", "in", str(tmp_path / "out"), "--masks", ".",
                                 "--model", str(checkpoint)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "a.png").is_file()


def test_an_empty_input_folder_is_one_line_and_exit_1(checkpoint, tmp_path):
    (tmp_path / "in").mkdir()
    result = runner.invoke(app, ["restore", str(tmp_path / "in"), str(tmp_path / "out"),
                                 "--mask-from", "alpha", "--model", str(checkpoint)])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1, result.output
    assert "no images to restore" in result.output and "jpg, jpeg, png" in result.output
    assert not (tmp_path / "out").exists()


def test_restoring_a_file_into_its_own_folder_is_refused_and_writes_nothing(checkpoint,
                                                                            tmp_path):
    src, masks = make_folder(tmp_path, names=("a.png",))
    before = (src / "a.png").read_bytes()
    result = runner.invoke(app, ["restore", str(src / "a.png"), str(src), "--masks", str(masks),
                                 "--model", str(checkpoint)])
    assert result.exit_code == 1
    assert "OUT is the folder that holds a.png" in result.output
    assert sorted(p.name for p in src.iterdir()) == ["a.png"]
    assert (src / "a.png").read_bytes() == before


HEAVY_MODULES = {"torch", "torchvision", "onnx", "onnxruntime", "skimage", "scipy", "cv2",
                 "pyamg", "matplotlib"}


def _top_level_imports(module: str) -> set[str]:
    """Modules a pconv_cli module imports at its top level (not inside functions or under
    TYPE_CHECKING), absolute names."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec(module)
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    package = module if spec.submodule_search_locations else module.rpartition(".")[0]
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}".rstrip(".")
            names.add(base)
    return names


def test_the_restore_command_module_imports_nothing_heavy_at_module_level():
    seen, todo = set(), ["pconv_cli.cli.restore"]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for name in _top_level_imports(module):
            assert name.split(".")[0] not in HEAVY_MODULES, f"{module} imports {name}"
            # the command's own modules, and the pconv_cli modules they import in turn
            if name.startswith("pconv_cli.") and name not in ("pconv_cli.cli.app",
                                                              "pconv_cli.cli.common"):
                todo.append(name)


def test_a_missing_input_is_reported_before_the_model_is_loaded(tmp_path):
    missing = tmp_path / "no-such-folder"
    result = runner.invoke(app, ["restore", str(missing), str(tmp_path / "out"), "--masks",
                                 str(tmp_path), "--model", str(tmp_path / "no-such-model.pt")])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1, result.output
    assert f"{missing}: no such file or folder" in result.output
    assert "model" not in result.output
    assert not (tmp_path / "out").exists()


def test_a_rerun_with_other_settings_is_refused_naming_them_unless_overwrite(checkpoint,
                                                                             tmp_path):
    src, masks = make_folder(tmp_path, names=("a.png",))
    out = tmp_path / "out"
    args = restore_args(src, out, masks, "--model", str(checkpoint))
    assert runner.invoke(app, args).exit_code == 0
    first = (out / "a.png").read_bytes()
    result = runner.invoke(app, [*args, "--flips", "2", "--blend", "none"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1, result.output
    assert "holds images restored with other settings" in result.output
    assert "--flips 2 (was 1)" in result.output and "--blend none (was poisson)" in result.output
    assert (out / "a.png").read_bytes() == first
    result = runner.invoke(app, [*args, "--flips", "2", "--blend", "none", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert (out / "a.png").read_bytes() != first
    resumed = runner.invoke(app, [*args, "--flips", "2", "--blend", "none"])
    assert resumed.exit_code == 0, resumed.output  # the same settings again: a resume
    assert "skipped" in resumed.output


def test_a_rerun_with_another_model_file_is_refused(checkpoint, tmp_path):
    from pconv_cli.checkpoint import save_checkpoint
    from pconv_cli.core import PConvUNet, UNetConfig

    other = tmp_path / "other.pt"
    config = UNetConfig(depth=3, width=8)
    save_checkpoint(other, config, PConvUNet(config).state_dict())
    src, masks = make_folder(tmp_path, names=("a.png",))
    args = restore_args(src, tmp_path / "out", masks)
    assert runner.invoke(app, [*args, "--model", str(checkpoint)]).exit_code == 0
    result = runner.invoke(app, [*args, "--model", str(other)])
    assert result.exit_code == 1
    assert "--model other (was tiny)" in result.output and "--model-sha256" in result.output


def test_format_aliases_are_the_same_setting_on_a_rerun(checkpoint, tmp_path):
    src, masks = make_folder(tmp_path, names=("a.png",))
    args = restore_args(src, tmp_path / "out", masks, "--model", str(checkpoint))
    assert runner.invoke(app, [*args, "--format", "jpeg"]).exit_code == 0
    result = runner.invoke(app, [*args, "--format", "jpg"])
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output


def test_a_mask_that_is_mostly_hole_is_restored_with_a_warning_naming_invert_mask(checkpoint,
                                                                                 tmp_path):
    src, masks = make_folder(tmp_path, names=("a.png", "b.png"))
    inverted = np.full((40, 56), 255, np.uint8)  # black = hole: read as 90% hole
    inverted[8:20, 10:30] = 0
    Image.fromarray(inverted).save(masks / "a.png")
    result = runner.invoke(app, restore_args(src, tmp_path / "out", masks, "--model",
                                             str(checkpoint)))
    assert result.exit_code == 0, result.output
    assert "a.png: the mask marks 89% of the image as hole" in result.output
    assert "--invert-mask" in result.output
    assert "b.png:" not in result.output  # an ordinary mask: no warning
    assert "restored with a warning" in result.output
    assert (tmp_path / "out" / "a.png").is_file()


# ------------------------------------------------------- detected and painted masks


@pytest.fixture(scope="module")
def detector_ckpt(tmp_path_factory) -> Path:
    return save_detector(tmp_path_factory.mktemp("det") / "bright.pt", bright_detector())


def scratched_folder(root: Path) -> tuple[Path, np.ndarray]:
    src = root / "in"
    src.mkdir()
    pixels, damage = scratched()
    Image.fromarray(pixels).save(src / "a.png")
    return src, damage


def test_restore_without_masks_detects_them_says_so_and_keeps_them(checkpoint, detector_ckpt,
                                                                   tmp_path):
    src, damage = scratched_folder(tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(app, ["restore", str(src), str(out), "--model", str(checkpoint),
                                 "--detector", str(detector_ckpt), "--device", "cpu"],
                           terminal_width=300)
    assert result.exit_code == 0, result.output
    notice = [line for line in result.output.splitlines() if "finding the damage" in line]
    assert len(notice) == 1 and notice[0].startswith("no masks given: finding the damage with")
    assert np.array_equal(np.asarray(Image.open(out / "_masks" / "a.png")) == 255, damage)
    before, after = (np.asarray(Image.open(p)) for p in (src / "a.png", out / "a.png"))
    assert np.array_equal(after[~damage], before[~damage])


def test_detected_damage_over_a_tenth_of_the_image_is_restored_with_a_warning(
        checkpoint, detector_ckpt, tmp_path):
    """The detector marking 29% of an image is more likely false alarms than damage: restored,
    with a warning that points at the mask; 8% passes without one."""
    src = tmp_path / "in"
    src.mkdir()
    for name, rows in (("wide.png", 7), ("thin.png", 2)):  # 7 or 2 scratched rows of 48
        pixels, _ = scratched(scratches=[(r, 0, 64) for r in range(4, 4 + 6 * rows, 6)][:rows])
        Image.fromarray(pixels).save(src / name)
    result = runner.invoke(app, ["restore", str(src), str(tmp_path / "out"), "--model",
                                 str(checkpoint), "--detector", str(detector_ckpt), "--device",
                                 "cpu"], terminal_width=300)
    assert result.exit_code == 0, result.output
    assert "wide.png: the mask marks 29% of the image as hole" in result.output
    assert "is the detector marking clean pixels?" in result.output
    assert "thin.png:" not in result.output
    assert (tmp_path / "out" / "wide.png").is_file()


@pytest.mark.skipif(DEFAULT_DETECTOR_PATH.is_file(), reason="a bundled detector is installed")
def test_restore_without_masks_or_detector_names_detector_in_one_line(checkpoint, tmp_path):
    src, _ = scratched_folder(tmp_path)
    result = runner.invoke(app, ["restore", str(src), str(tmp_path / "out"), "--model",
                                 str(checkpoint)], terminal_width=300)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "no masks given" in lines[0] and "--detector CKPT" in lines[0]
    result = runner.invoke(app, ["restore", str(src), str(tmp_path / "out"), "--mask-from",
                                 "detect"], terminal_width=300)
    assert result.exit_code == 1
    assert "no bundled detector is installed; pass --detector CKPT" in result.output


def test_restore_with_masks_painted_into_a_jpeg(checkpoint, tmp_path):
    src, painted = tmp_path / "in", tmp_path / "painted"
    src.mkdir()
    painted.mkdir()
    rng = np.random.default_rng(0)
    pixels = (rng.random((48, 64, 3)) * 120 + 60).astype(np.uint8)
    Image.fromarray(pixels).save(src / "a.png")
    copy = pixels.copy()
    copy[10:30, 12:40] = (255, 0, 255)
    Image.fromarray(copy).save(painted / "a.jpg", quality=90)
    out = tmp_path / "out"
    result = runner.invoke(app, ["restore", str(src), str(out), "--masks", str(painted),
                                 "--mask-color", "#ff00ff", "--grow-mask", "2", "--model",
                                 str(checkpoint), "--concat"])
    assert result.exit_code == 0, result.output
    after = np.asarray(Image.open(out / "a.png"))
    # Far from the paint every pixel is the input's; inside it the fill replaced them.
    far = np.ones((48, 64), bool)
    far[6:34, 8:44] = False
    assert np.array_equal(after[far], pixels[far])
    assert (after[12:28, 14:38] != pixels[12:28, 14:38]).any()
    preview = np.asarray(Image.open(out / "_previews" / "a.png.jpg").convert("L"))
    assert preview[:, 64:128][14:26, 16:36].min() > 200  # the mask panel: white = hole


def test_a_mask_color_that_is_not_a_colour_is_one_line(checkpoint, tmp_path):
    src, masks = make_folder(tmp_path, names=("a.png",))
    result = runner.invoke(app, restore_args(src, tmp_path / "out", masks, "--mask-color",
                                             "pink-ish", "--model", str(checkpoint)))
    assert result.exit_code == 1
    assert "--mask-color 'pink-ish': not a colour" in result.output


def thin_and_wide_folder(root: Path) -> tuple[Path, Path, np.ndarray]:
    """One photo-like image with a 1-px scratch and a 12×20 hole; its mask (H×W bool)."""
    src, masks = root / "in", root / "masks"
    src.mkdir(parents=True)
    masks.mkdir()
    y, x = np.mgrid[0:40, 0:56] / 12.0
    image = np.stack([0.5 + 0.3 * np.sin(x + c) * np.cos(y - c) for c in range(3)], axis=-1)
    Image.fromarray((image * 255).round().astype(np.uint8)).save(src / "a.png")
    hole = np.zeros((40, 56), bool)
    hole[8:20, 10:30] = True
    hole[30, 5:50] = True
    Image.fromarray(hole.astype(np.uint8) * 255).save(masks / "a.png")
    return src, masks, hole


def test_restore_auto_fills_a_scratch_classically_and_records_method_and_thin_width(checkpoint,
                                                                                  tmp_path):
    from pconv_cli.classical import classical_inpainter

    src, masks, hole = thin_and_wide_folder(tmp_path)
    out = tmp_path / "out"
    args = ["restore", str(src), str(out), "--masks", str(masks), "--model", str(checkpoint),
            "--device", "cpu"]
    result = runner.invoke(app, [*args, "--method", "auto:biharmonic", "--thin-width", "3"])
    assert result.exit_code == 0, result.output
    assert "holes ≤ 3 px wide: biharmonic" in " ".join(result.output.split())
    restored = np.asarray(Image.open(out / "a.png"), dtype=np.int16)
    original = np.asarray(Image.open(src / "a.png"))
    scratch = np.zeros_like(hole)
    scratch[30, 5:50] = True
    expected = classical_inpainter("biharmonic").inpaint(
        original[None].astype(np.float32) / 255, ~scratch[None])[0]
    assert np.abs(restored[scratch] - (expected[scratch] * 255).round()).max() <= 1
    settings = json.loads((out / ".pconv-restore.json").read_text())["settings"]
    assert settings["method"] == "auto:biharmonic" and settings["thin-width"] == 3.0
    assert settings["model"] == "tiny" and len(settings["model-sha256"]) == 64
    refused = runner.invoke(app, [*args, "--method", "pconv"])
    assert refused.exit_code == 1
    assert "--method pconv (was auto:biharmonic)" in refused.output
    assert "--thin-width none (was 3.0)" in refused.output


def test_restore_with_a_classical_method_loads_no_model_and_records_none(tmp_path):
    from pconv_cli.classical import classical_inpainter

    src, masks, hole = thin_and_wide_folder(tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(app, ["restore", str(src), str(out), "--masks", str(masks),
                                 "--method", "biharmonic"])
    assert result.exit_code == 0, result.output
    assert "with biharmonic (pconv biharmonic, scipy" in " ".join(result.output.split())
    original = np.asarray(Image.open(src / "a.png"))
    expected = classical_inpainter("biharmonic").inpaint(
        original[None].astype(np.float32) / 255, ~hole[None])[0]
    restored = np.asarray(Image.open(out / "a.png"), dtype=np.int16)
    assert np.abs(restored - (expected * 255).round()).max() <= 1
    settings = json.loads((out / ".pconv-restore.json").read_text())["settings"]
    assert settings["method"] == "biharmonic"
    assert settings["model"] is None and settings["model-sha256"] is None
    assert settings["thin-width"] is None and settings["flips"] is None


@pytest.mark.parametrize("method", ["ns", "fsr", "auto:telea"])
def test_restore_with_a_method_that_needs_opencv_without_it_is_one_line(checkpoint, tmp_path,
                                                                        monkeypatch, method):
    monkeypatch.setitem(sys.modules, "cv2", None)
    src, masks = make_folder(tmp_path, names=("a.png",))
    result = runner.invoke(app, restore_args(src, tmp_path / "out", masks, "--model",
                                             str(checkpoint), "--method", method)
                           if method.startswith("auto") else
                           restore_args(src, tmp_path / "out", masks, "--method", method))
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "needs OpenCV" in lines[0] and "pip install 'pconv[classical]'" in lines[0]


def test_restore_with_an_unknown_method_is_one_line_before_anything_is_read(tmp_path):
    result = runner.invoke(app, ["restore", str(tmp_path / "missing"), str(tmp_path / "out"),
                                 "--method", "magic"])
    assert result.exit_code == 1
    assert "--method magic: choose auto, pconv, ns, telea, biharmonic, fsr" in result.output
    assert result.output.count("\n") == 1


def test_restore_defaults_to_auto(checkpoint, tmp_path):
    from pconv_cli.routing import DEFAULT_THIN_WIDTH, default_thin_method

    src, masks = make_folder(tmp_path, names=("a.png",))
    out = tmp_path / "out"
    result = runner.invoke(app, restore_args(src, out, masks, "--model", str(checkpoint)))
    assert result.exit_code == 0, result.output
    settings = json.loads((out / ".pconv-restore.json").read_text())["settings"]
    assert settings["method"] == f"auto:{default_thin_method()}"
    assert settings["thin-width"] == DEFAULT_THIN_WIDTH


def test_the_cli_shows_and_uses_the_library_defaults():
    """restore's options default to RestoreOptions' values, and those to the detector's."""
    from pconv_cli.detect import DEFAULT_THRESHOLD
    from pconv_cli.detection import DEFAULT_TILE
    from pconv_cli.restore import RestoreOptions

    assert (RestoreOptions.threshold, RestoreOptions.tile) == (DEFAULT_THRESHOLD, DEFAULT_TILE)
    from pconv_cli.detect import DetectOptions

    assert RestoreOptions.precision == DetectOptions.precision
    result = CliRunner().invoke(app, ["restore", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for value in (RestoreOptions.hd_trigger, RestoreOptions.hd_margin, RestoreOptions.hd_size):
        assert f"[default: {value}]" in result.output
