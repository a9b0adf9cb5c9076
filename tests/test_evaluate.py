"""The evaluation protocol: pairing, bands, composites, aggregation and the report files."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data
from skimage.metrics import structural_similarity

from pconv_cli.checkpoint import save_checkpoint
from pconv_cli.classical import CLASSICAL_METHODS, MeanFillInpainter, classical_inpainter
from pconv_cli.core import PConvUNet, UNetConfig
from pconv_cli.errors import ConfigError, InputError
from pconv_cli.evaluate import (
    build_methods,
    evaluate,
    file_method_names,
    fit_image,
    make_pairs,
    parse_methods,
    seeded_assignment,
)
from pconv_cli.imaging import load_image, save_mask
from pconv_cli.inference import DEFAULT_MODEL_PATH

SIZE = 64
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


# --------------------------------------------------------------------------- fixtures


def write_photos(folder: Path, size: tuple[int, int] = (SIZE, SIZE)) -> list[Path]:
    """Real photographs (scikit-image's evaluation images) as PNGs of (width, height)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in PHOTOS:
        path = folder / f"{name}.png"
        Image.fromarray(getattr(data, name)()).resize(size, Image.Resampling.LANCZOS).save(path)
        paths.append(path)
    return paths


def mask_with_holes(holes: int, size: int = SIZE, start: int = 0) -> np.ndarray:
    """A library mask (True = valid) with exactly ``holes`` hole pixels, in a block."""
    valid = np.ones(size * size, dtype=bool)
    valid[start:start + holes] = False
    return valid.reshape(size, size)


def write_masks(folder: Path, ratios: list[float], size: int = SIZE) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, ratio in enumerate(ratios):
        path = folder / f"m{i:02d}.png"
        save_mask(path, mask_with_holes(round(ratio * size * size), size, start=(i * 97) % 500))
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    write_photos(folder)
    return folder


@pytest.fixture(scope="module")
def one_per_band(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("masks")
    write_masks(folder, [0.05, 0.15, 0.25, 0.35, 0.45, 0.55])
    return folder


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    config = UNetConfig(depth=3, width=8)
    save_checkpoint(path, config, PConvUNet(config).state_dict())
    return path


class MethodDouble:
    """The inpainter contract (pconv_cli.inpainter.Inpainter) for the test doubles below."""

    backend = "test"
    source = "test"
    batched = True
    multiple = 1
    fixed_size = None
    flips = 1
    blend = None


class Oracle(MethodDouble):
    """Returns the truth: finds the photo whose known pixels match the input."""

    name = "oracle"

    def __init__(self, folder: Path) -> None:
        self.truths = np.stack([load_image(p) for p in sorted(folder.glob("*.png"))])

    def inpaint(self, images: np.ndarray, valid: np.ndarray) -> np.ndarray:
        out = []
        for image, known in zip(images, valid, strict=True):
            diff = np.abs((self.truths - image) * known[..., None])
            out.append(self.truths[np.argmin(diff.reshape(len(self.truths), -1).max(axis=1))])
        return np.stack(out)


class Recorder(MethodDouble):
    """Fills holes with grey and records what it was given."""

    def __init__(self, name: str = "recorder") -> None:
        self.name = name
        self.batch_sizes: list[int] = []
        self.max_hidden = 0.0

    def inpaint(self, images: np.ndarray, valid: np.ndarray) -> np.ndarray:
        self.batch_sizes.append(len(images))
        hidden = images[~valid]
        self.max_hidden = max(self.max_hidden, float(hidden.max(initial=0.0)))
        return np.where(valid[..., None], images, 0.5)


class Black(MethodDouble):
    """Predicts 0 everywhere (a deliberately bad method)."""

    name = "black"

    def inpaint(self, images: np.ndarray, valid: np.ndarray) -> np.ndarray:
        return np.zeros_like(images)


def no_infinity(text: str) -> dict:
    def refuse(name: str) -> None:
        raise AssertionError(f"JSON contains {name}")

    return json.loads(text, parse_constant=refuse)


# --------------------------------------------------------------------------- pairing and bands


def test_band_assignment_puts_edge_ratios_in_the_band_below(tmp_path, photos):
    masks = tmp_path / "masks"
    masks.mkdir()
    # 20×20 masks: 400 pixels, so these hole counts give ratios exactly on the paper's edges.
    for holes in (4, 5, 40, 41, 200, 240, 241):
        save_mask(masks / f"h{holes:03d}.png", mask_with_holes(holes, size=20))
    pairs = make_pairs(photos, masks)
    bands = {p.mask.path.name: p.band for p in pairs.pairs}
    assert bands == {"h005.png": 0, "h040.png": 0, "h041.png": 1, "h200.png": 4, "h240.png": 5}
    assert pairs.masks_outside_bands == 2  # 0.01 is not in (0.01,0.1]; 0.6025 is above 0.6


def test_custom_band_edges_regroup_the_masks(photos, one_per_band):
    pairs = make_pairs(photos, one_per_band, edges=(0.0, 0.3, 0.6))
    assert [p.band for p in pairs.pairs] == [0, 0, 0, 1, 1, 1]
    assert pairs.band_labels == ["(0.0,0.3]", "(0.3,0.6]"]


def test_seeded_pairing_uses_every_image_equally_often():
    counts = np.bincount(seeded_assignment(10, 4, seed=3), minlength=4)
    assert sorted(counts) == [2, 2, 3, 3]


def test_same_seed_gives_same_pairs_and_other_seeds_other_pairs(tmp_path, photos):
    masks = tmp_path / "masks"
    write_masks(masks, [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.07, 0.17])

    def images(seed: int) -> list[str]:
        return [p.image.name for p in make_pairs(photos, masks, seed=seed).pairs]

    assert images(7) == images(7)
    assert images(7) != images(8)


def test_same_seed_gives_same_numbers(tmp_path, photos):
    masks = tmp_path / "masks"
    write_masks(masks, [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.07, 0.17])

    def scores(seed: int) -> dict:
        report = evaluate(make_pairs(photos, masks, seed=seed), [MeanFillInpainter()],
                          lpips=False)
        result = report.to_json()["methods"]["mean"]
        return {"bands": result["bands"], "overall": result["overall"]}

    assert scores(2) == scores(2)
    assert scores(2) != scores(4)


def test_pairs_all_is_the_full_cross_product(photos, one_per_band):
    pairs = make_pairs(photos, one_per_band, pairing="all")
    combos = {(p.image.name, p.mask.path.name) for p in pairs.pairs}
    assert len(pairs.pairs) == len(combos) == 4 * 6


def test_masks_outside_every_band_give_one_clear_error(tmp_path, photos):
    masks = tmp_path / "masks"
    write_masks(masks, [0.7, 0.8])
    with pytest.raises(InputError, match="outside the bands .* --bands"):
        make_pairs(photos, masks)


def test_an_empty_images_folder_is_one_clear_error(tmp_path, one_per_band):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images found"):
        make_pairs(tmp_path / "empty", one_per_band)


def test_unknown_pairing_is_refused(photos, one_per_band):
    with pytest.raises(ConfigError, match="seeded or all"):
        make_pairs(photos, one_per_band, pairing="random")


# --------------------------------------------------------------------------- manifests


def write_manifest(folder: Path, rows: list[tuple[str, np.ndarray, bool]]) -> None:
    """A masks.csv as pconv gen-masks writes it, for masks saved here."""
    lines = ["file,hole_ratio,band,border,seed,hole_pixels,source"]
    for name, valid, border in rows:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        save_mask(folder / name, valid)
        holes = int((~valid).sum())
        lines.append(f"{name},{holes / valid.size!r},,{str(border).lower()},0,{holes},")
    (folder / "masks.csv").write_text("\n".join(lines) + "\n")


def test_manifests_in_sub_folders_bring_ratios_and_border_flags(tmp_path, photos):
    masks = tmp_path / "masks"
    write_manifest(masks / "border", [("a.png", mask_with_holes(300), True),
                                      ("b.png", mask_with_holes(1500), True)])
    write_manifest(masks / "no-border", [("a.png", mask_with_holes(310, start=700), False),
                                         ("b.png", mask_with_holes(1400, start=700), False)])
    pairs = make_pairs(photos, masks)
    assert pairs.band_source == "masks.csv"
    assert pairs.border_split
    assert sorted((p.mask.path.parent.name, p.mask.border, p.band) for p in pairs.pairs) == [
        ("border", True, 0), ("border", True, 3), ("no-border", False, 0),
        ("no-border", False, 3),
    ]


def test_border_split_reports_each_kind_per_band(tmp_path, photos):
    masks = tmp_path / "masks"
    write_manifest(masks, [("border/a.png", mask_with_holes(300), True),
                           ("no-border/a.png", mask_with_holes(310, start=700), False),
                           ("no-border/b.png", mask_with_holes(320, start=900), False)])
    report = evaluate(make_pairs(photos, masks), [MeanFillInpainter()], lpips=False)
    split = report.to_json()["methods"]["mean"]["border_split"]
    assert split["border"]["(0.01,0.1]"]["n"] == 1
    assert split["no-border"]["(0.01,0.1]"]["n"] == 2
    assert [r.label for r in report.rows("l1")][:3] == ["(0.01,0.1]", "no-border", "border"]


def test_a_mask_changed_after_its_manifest_is_listed_and_skipped(tmp_path, photos):
    masks = tmp_path / "masks"
    write_manifest(masks, [("a.png", mask_with_holes(300), True),
                           ("b.png", mask_with_holes(1500), True)])
    save_mask(masks / "b.png", mask_with_holes(1000))  # edited afterwards
    report = evaluate(make_pairs(photos, masks), [MeanFillInpainter()], lpips=False)
    assert [Path(f.path).name for f in report.failed] == ["b.png"]
    assert "masks.csv says 1500 hole pixels" in report.failed[0].reason
    assert report.settings["pairs"] == 1


# --------------------------------------------------------------------------- scoring


def test_oracle_scores_zero_l1_unit_ssim_and_infinite_psnr(photos, one_per_band):
    report = evaluate(make_pairs(photos, one_per_band), [Oracle(photos)], lpips=False)
    overall = report.methods["oracle"].overall
    assert overall.mean["l1"] == 0.0
    assert overall.mean["ssim"] == pytest.approx(1.0)
    assert overall.mean["psnr"] == math.inf
    assert overall.psnr_infinite == 6
    entry = no_infinity(report.json_text())["methods"]["oracle"]["overall"]
    assert entry["psnr"] is None and entry["psnr_infinite"] == 6 and entry["n"] == 6
    assert "inf" in report.markdown_text()


def test_report_numbers_match_an_independent_computation(tmp_path, photos):
    masks = tmp_path / "masks"
    paths = write_masks(masks, [0.12, 0.18])
    pairs = make_pairs(photos, masks)
    report = evaluate(pairs, [MeanFillInpainter()], lpips=False)
    l1, ps, ss = [], [], []
    for pair in pairs.pairs:
        truth = load_image(pair.image).astype(np.float64)
        hole = np.asarray(Image.open(pair.mask.path)) == 255
        comp = truth.copy()
        comp[hole] = truth[~hole].mean(axis=0)  # mean fill, computed here
        l1.append(np.abs(comp - truth).mean() * 100)
        ps.append(10 * np.log10(1 / np.mean((comp - truth) ** 2)))
        ss.append(structural_similarity(comp, truth, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, channel_axis=-1,
                                        data_range=1.0))
    band = report.methods["mean"].bands["(0.1,0.2]"]
    assert band.n == len(paths) == 2
    for metric, values in (("l1", l1), ("psnr", ps), ("ssim", ss)):
        assert band.mean[metric] == pytest.approx(np.mean(values), rel=1e-5)
        assert band.std[metric] == pytest.approx(np.std(values), rel=1e-4, abs=1e-9)


def test_composite_keeps_the_known_pixels_whatever_a_method_returns(tmp_path, photos):
    masks = tmp_path / "masks"
    write_masks(masks, [0.25])
    pairs = make_pairs(photos, masks)
    report = evaluate(pairs, [Black()], lpips=False)
    truth = load_image(pairs.pairs[0].image)
    hole = np.asarray(Image.open(pairs.pairs[0].mask.path)) == 255
    expected = truth[hole].sum() / truth.size * 100  # the error lives in the hole only
    assert report.methods["black"].overall.mean["l1"] == pytest.approx(expected, rel=1e-5)


def test_methods_never_see_the_hidden_pixels(photos, one_per_band):
    recorder = Recorder()
    evaluate(make_pairs(photos, one_per_band), [recorder], lpips=False)
    assert recorder.max_hidden == 0.0


def test_models_run_in_batches_of_the_batch_size(tmp_path, photos):
    masks = tmp_path / "masks"
    write_masks(masks, [0.05, 0.06, 0.07, 0.08, 0.09, 0.11, 0.12])
    recorder = Recorder()
    evaluate(make_pairs(photos, masks), [recorder], batch_size=3, lpips=False)
    assert recorder.batch_sizes == [1, 3, 3, 1]  # one untimed warm-up call, then the batches


def test_a_checkpoint_is_scored_under_its_file_stem(photos, one_per_band, tiny_checkpoint):
    methods = build_methods(models=[tiny_checkpoint], device="cpu")
    report = evaluate(make_pairs(photos, one_per_band), methods, batch_size=4, lpips=False)
    result = report.methods["tiny"]
    assert result.backend == "torch cpu, Poisson blend"
    assert all(math.isfinite(result.overall.mean[m]) for m in ("l1", "psnr", "ssim"))
    assert result.seconds_per_image > 0


def test_several_methods_share_the_same_pairs(photos, one_per_band):
    methods = [classical_inpainter(name) for name in CLASSICAL_METHODS]
    report = evaluate(make_pairs(photos, one_per_band), methods, lpips=False)
    for label in report.band_labels:
        assert {report.methods[m].bands[label].n for m in CLASSICAL_METHODS} == {1}
    best = report.rows("psnr")[-1].best
    assert best and best <= set(CLASSICAL_METHODS)


@pytest.mark.slow
def test_a_worker_pool_gives_the_same_numbers_as_one_process(tmp_path, photos):
    masks = tmp_path / "masks"
    write_masks(masks, [0.02 + 0.035 * i for i in range(16)])
    pairs = make_pairs(photos, masks)
    methods = [classical_inpainter("mean"), classical_inpainter("telea")]

    def numbers(workers: int) -> dict:
        report = evaluate(pairs, methods, workers=workers, lpips=False)
        assert report.settings["workers"] == workers
        return {name: result["bands"] for name, result in report.to_json()["methods"].items()}

    assert numbers(2) == numbers(1)


def test_native_size_keeps_each_image_and_resizes_its_mask(tmp_path, one_per_band,
                                                          tiny_checkpoint):
    photos = tmp_path / "photos"
    write_photos(photos, size=(60, 44))  # not a multiple of the model's 8
    methods = [*build_methods(models=[tiny_checkpoint], device="cpu"), MeanFillInpainter()]
    report = evaluate(make_pairs(photos, one_per_band), methods, native=True, lpips=False)
    assert report.settings["size"] == "native"
    assert report.settings["sizes_scored"] == ["60x44"]
    assert report.methods["tiny"].overall.n == 6


def test_size_crops_and_resizes_images_and_masks(photos, one_per_band):
    report = evaluate(make_pairs(photos, one_per_band), [MeanFillInpainter()], size=(32, 48),
                      lpips=False)
    assert report.settings["sizes_scored"] == ["48x32"]


def test_fit_image_centre_crops_without_distortion():
    image = np.zeros((40, 80, 3), dtype=np.float32)
    image[:, 20:60] = np.linspace(0, 1, 40, dtype=np.float32)[None, :, None]
    square = fit_image(image, (40, 40))
    np.testing.assert_allclose(square, image[:, 20:60], atol=1e-5)


# --------------------------------------------------------------------------- bad input


def test_an_unreadable_image_is_listed_and_the_other_pairs_scored(tmp_path, one_per_band):
    photos = tmp_path / "photos"
    write_photos(photos)
    broken = photos / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    before = {p: p.read_bytes() for p in photos.iterdir()}
    pairs = make_pairs(photos, one_per_band, pairing="all")
    report = evaluate(pairs, [MeanFillInpainter()], lpips=False)
    assert [f.path for f in report.failed] == [str(broken)]
    assert report.settings["pairs_skipped"] == 6
    assert report.methods["mean"].overall.n == 4 * 6
    assert {p: p.read_bytes() for p in photos.iterdir()} == before  # inputs untouched


def test_an_unreadable_mask_is_listed_and_skipped(tmp_path, photos):
    masks = tmp_path / "masks"
    write_masks(masks, [0.05, 0.15])
    (masks / "zz.png").write_bytes(b"not an image")
    pairs = make_pairs(photos, masks)
    assert [Path(f.path).name for f in pairs.failed] == ["zz.png"]
    report = evaluate(pairs, [MeanFillInpainter()], lpips=False)
    assert [Path(f.path).name for f in report.failed] == ["zz.png"]
    assert report.methods["mean"].overall.n == 2


def test_an_unknown_method_lists_the_known_ones():
    with pytest.raises(ConfigError) as info:
        parse_methods("telea,magic")
    assert "'magic'" in str(info.value)
    assert "pconv, telea, ns, fsr, fsr-best, biharmonic, mean" in str(info.value)


def test_a_missing_opencv_names_the_package_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'pconv\[classical\]'"):
        build_methods(methods=["telea"])


@pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(), reason="no default model bundled")
def test_without_models_or_methods_the_bundled_model_and_installed_methods_are_scored(
        monkeypatch):
    assert [m.name for m in build_methods(device="cpu")] == ["pconv", "telea", "ns", "biharmonic"]
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    assert [m.name for m in build_methods(device="cpu")] == ["pconv", "biharmonic"]


def test_same_stems_are_named_by_their_folders():
    names = file_method_names([Path("runs/a/best.pt"), Path("runs/b/best.pt")])
    assert names == ["a/best.pt", "b/best.pt"]


def test_a_stem_that_is_a_method_name_keeps_its_suffix():
    assert file_method_names([Path("mean.pt")], reserved=["mean"]) == ["mean.pt"]


# --------------------------------------------------------------------------- the report


BAND_KEYS = ["(0.01,0.1]", "(0.1,0.2]", "(0.2,0.3]", "(0.3,0.4]", "(0.4,0.5]", "(0.5,0.6]"]
METRICS = ("l1", "psnr", "ssim", "hole_l1", "hole_psnr")
STAT_KEYS = {"n", "psnr_infinite", *METRICS, *(f"{m}_std" for m in METRICS)}
WIDTH_KEYS = {"n", "psnr_infinite", "hole_l1", "hole_psnr", "hole_l1_std", "hole_psnr_std"}


def test_json_follows_the_documented_schema(photos, one_per_band):
    methods = [MeanFillInpainter(), classical_inpainter("biharmonic")]
    report = evaluate(make_pairs(photos, one_per_band), methods, lpips=False)
    doc = no_infinity(report.json_text())
    assert set(doc) == {"settings", "methods", "failed"}
    assert list(doc["methods"]) == ["mean", "biharmonic"]
    for entry in doc["methods"].values():
        assert list(entry["bands"]) == BAND_KEYS
        for stats in [*entry["bands"].values(), entry["overall"], *entry["kinds"].values()]:
            assert set(stats) == STAT_KEYS
            assert isinstance(stats["n"], int)
            assert all(isinstance(stats[k], float) for k in STAT_KEYS - {"n", "psnr_infinite"})
        assert list(entry["kinds"]) == ["photo"]
        assert list(entry["widths"]) == ["<=2px", "3-6px", ">6px"]
        assert list(entry["kind_widths"]["photo"]) == ["<=2px", "3-6px", ">6px"]
        for stats in entry["widths"].values():
            assert set(stats) == WIDTH_KEYS
        assert isinstance(entry["seconds_per_image"], float)
    settings = doc["settings"]
    assert settings["metrics"]["ssim"] == {
        "implementation": "skimage.metrics.structural_similarity", "gaussian_weights": True,
        "sigma": 1.5, "use_sample_covariance": False, "channel_axis": -1, "data_range": 1.0,
    }
    for key in ("size", "seed", "pairing", "pairs", "pconv_version", "methods"):
        assert key in settings
    assert [m["backend"] for m in settings["methods"]][0] == "numpy cpu"


def test_an_empty_band_has_n_zero_and_null_values(tmp_path, photos):
    masks = tmp_path / "masks"
    write_masks(masks, [0.05])
    report = evaluate(make_pairs(photos, masks), [MeanFillInpainter()], lpips=False)
    empty = no_infinity(report.json_text())["methods"]["mean"]["bands"]["(0.5,0.6]"]
    assert empty["n"] == 0 and empty["l1"] is None and empty["psnr"] is None


def test_out_folder_gets_json_csv_markdown_plot_and_sample_grids(tmp_path, photos,
                                                                 one_per_band):
    pytest.importorskip("matplotlib", reason="the plot needs the plot extra")
    methods = [MeanFillInpainter(), Black()]
    report = evaluate(make_pairs(photos, one_per_band), methods, samples=1, lpips=False)
    written = report.write_all(tmp_path / "out")
    names = sorted(p.relative_to(tmp_path / "out").as_posix() for p in written)
    assert names == sorted(["report.json", "report.csv", "report.md", "report.png",
                            *(f"samples/band_{k.strip('(]').replace(',', '-')}.png"
                              for k in BAND_KEYS)])
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out/report.csv").read_text())))
    # Per method: the bands and overall; the hole-width groups; one image kind with its groups.
    assert len(rows) == 2 * (len(BAND_KEYS) + 1 + 3 + 1 + 3)
    assert list(rows[0])[:7] == ["method", "backend", "band", "border", "kind", "width", "n"]
    assert {r["method"] for r in rows} == {"mean", "black"}
    assert "| (0.01,0.1] | 1 |" in (tmp_path / "out/report.md").read_text()
    grid = Image.open(tmp_path / "out/samples/band_0.01-0.1.png")
    assert grid.width > 4 * SIZE and grid.height > SIZE  # input | mean | black | truth


def test_without_matplotlib_the_plot_is_skipped_with_a_notice(tmp_path, monkeypatch, photos,
                                                              one_per_band):
    report = evaluate(make_pairs(photos, one_per_band), [MeanFillInpainter()], lpips=False)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    written = report.write_all(tmp_path / "out")
    assert not (tmp_path / "out/report.png").exists()
    assert tmp_path / "out/report.json" in written
    assert any("pconv[plot]" in n for n in report.notices)


def test_the_best_method_per_band_is_marked(photos, one_per_band):
    report = evaluate(make_pairs(photos, one_per_band), [Oracle(photos), Black()], lpips=False)
    for metric in ("l1", "psnr", "ssim"):
        assert all(row.best == {"oracle"} for row in report.rows(metric))
    assert "**0.00**" in report.markdown_text()


def test_invert_reads_black_hole_mask_files(tmp_path, photos):
    masks = tmp_path / "masks"
    masks.mkdir()
    hole = ~mask_with_holes(round(0.15 * SIZE * SIZE))
    Image.fromarray(np.where(hole, 0, 255).astype(np.uint8)).save(masks / "black.png")
    pairs = make_pairs(photos, masks, invert=True)
    assert [p.band for p in pairs.pairs] == [1]
    report = evaluate(pairs, [MeanFillInpainter()], lpips=False)
    assert report.settings["mask_files"] == "black = hole"


# --------------------------------------------------------------------------- thin damage


def write_kinds(folder: Path) -> dict[str, Path]:
    """Two photographs at the top, one in document/ and one in film/ (each its own size)."""
    paths = {}
    for rel, name, size in (("astronaut.png", "astronaut", (64, 48)),
                            ("coffee.png", "coffee", (48, 64)),
                            ("document/page.png", "page", (72, 40)),
                            ("film/camera.png", "camera", (56, 56))):
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = getattr(data, name)()
        Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS).save(path)
        paths[rel] = path
    return paths


def line_mask(shape: tuple[int, int], widths: Sequence[int]) -> np.ndarray:
    """A library mask with one vertical line hole of each width, 4 px apart."""
    valid = np.ones(shape, dtype=bool)
    x = 4
    for width in widths:
        valid[6:-6, x:x + width] = False
        x += width + 4
    return valid


def test_named_pairing_gives_each_image_its_own_mask_and_kind(tmp_path):
    images = write_kinds(tmp_path / "images")
    masks = tmp_path / "masks"
    for rel, path in images.items():
        (masks / rel).parent.mkdir(parents=True, exist_ok=True)
        h, w = load_image(path).shape[:2]
        save_mask(masks / rel, line_mask((h, w), [1, 4]))
    pairs = make_pairs(tmp_path / "images", masks, pairing="named", edges=(0.0, 1.0))
    got = {(p.image.relative_to(tmp_path / "images").as_posix(),
            p.mask.path.relative_to(masks).as_posix(), p.kind) for p in pairs.pairs}
    assert got == {("astronaut.png", "astronaut.png", "photo"),
                   ("coffee.png", "coffee.png", "photo"),
                   ("document/page.png", "document/page.png", "document"),
                   ("film/camera.png", "film/camera.png", "film")}
    report = evaluate(pairs, [MeanFillInpainter()], native=True, lpips=False)
    assert report.settings["sizes_scored"] == ["48x64", "56x56", "64x48", "72x40"]
    result = report.methods["mean"]
    assert {k: s.n for k, s in result.kinds.items()} == {"document": 1, "film": 1, "photo": 2}
    assert result.widths["<=2px"].n == 4 and result.widths["3-6px"].n == 4
    assert result.widths[">6px"].n == 0
    labels = [row.label for row in report.rows("hole_psnr")]
    assert labels[-4:] == ["kind photo", "holes <=2px", "holes 3-6px", "holes >6px"]
    assert "kind film" not in [row.label for row in report.rows("hole_psnr")[:7]]


def test_named_pairing_needs_a_mask_for_every_image(tmp_path):
    write_kinds(tmp_path / "images")
    masks = tmp_path / "masks"
    masks.mkdir()
    save_mask(masks / "astronaut.png", line_mask((48, 64), [2]))
    with pytest.raises(InputError, match=r"3 image\(s\) have no mask of the same name "
                                         r"\(first: coffee\)"):
        make_pairs(tmp_path / "images", masks, pairing="named", edges=(0.0, 1.0))


def test_hole_scores_per_width_group_match_an_independent_computation(tmp_path):
    photos = tmp_path / "photos"
    write_photos(photos)
    masks = tmp_path / "masks"
    masks.mkdir()
    valid = line_mask((SIZE, SIZE), [1, 3, 9])
    for name in PHOTOS:
        save_mask(masks / f"{name}.png", valid)
    pairs = make_pairs(photos, masks, pairing="named", edges=(0.0, 1.0))
    result = evaluate(pairs, [MeanFillInpainter()], lpips=False).methods["mean"]
    hairline, medium, wide = (~valid[:, 4]), (~valid[:, 9]), (~valid[:, 16])
    columns = {"<=2px": [4], "3-6px": [9, 10, 11], ">6px": list(range(16, 25))}
    for label, cols in columns.items():
        holes = np.zeros_like(valid)
        holes[:, cols] = hairline[:, None] | medium[:, None] | wide[:, None]
        l1s, psnrs = [], []
        for path in sorted(photos.glob("*.png")):
            truth = load_image(path).astype(np.float64)
            fill = truth[valid].mean(axis=0)
            err = truth[holes] - fill
            l1s.append(np.abs(err).mean() * 100)
            psnrs.append(-10 * math.log10(np.mean(err ** 2)))
        assert result.widths[label].mean["hole_l1"] == pytest.approx(np.mean(l1s), rel=1e-4)
        assert result.widths[label].mean["hole_psnr"] == pytest.approx(np.mean(psnrs), rel=1e-4)
    # Over all hole pixels: the same fill, scored once over the union of the groups.
    assert result.overall.mean["hole_l1"] > result.overall.mean["l1"] * 5


def test_a_method_better_on_thin_holes_wins_that_group_only(tmp_path):
    photos = tmp_path / "photos"
    write_photos(photos)
    masks = tmp_path / "masks"
    masks.mkdir()
    valid = line_mask((SIZE, SIZE), [2, 10])
    for name in PHOTOS:
        save_mask(masks / f"{name}.png", valid)

    class ThinOracle(Oracle):
        """The truth in holes up to 2 px wide, black elsewhere."""

        name = "thin-oracle"

        def inpaint(self, images, valid):
            truth = super().inpaint(images, valid)
            out = np.zeros_like(truth)
            out[:, :, 4:6] = truth[:, :, 4:6]
            return out

    pairs = make_pairs(photos, masks, pairing="named", edges=(0.0, 1.0))
    report = evaluate(pairs, [ThinOracle(photos), MeanFillInpainter()], lpips=False)
    rows = {row.label: row for row in report.rows("hole_l1")}
    assert rows["holes <=2px"].best == {"thin-oracle"}
    assert rows["holes <=2px"].values["thin-oracle"] == 0.0
    assert rows["holes >6px"].best == {"mean"}
