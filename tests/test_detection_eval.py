"""pconv_cli.detection_eval and scripts/make_detect_eval_set.py: scoring a damage detector
per damage kind, on undamaged images and end to end, on a set with exact masks."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
from detect_helpers import bright_detector, random_detector, save_detector, scratched
from PIL import Image
from script_loader import load_script
from typer.testing import CliRunner

from pconv_cli.cli import app
from pconv_cli.detect import load_damage_detector
from pconv_cli.detection_eval import (
    THIN_KINDS,
    read_set,
    report_dict,
    report_markdown,
    score_detector,
    threshold_sweep,
    write_report,
)
from pconv_cli.errors import ConfigError, InputError
from pconv_cli.imaging import load_image, load_mask, save_mask
from pconv_cli.metrics import psnr

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "make_detect_eval_set.py"
COMMITTED = ROOT / "eval-sets" / "detect"


def _load_script():
    return load_script(SCRIPT)


# --------------------------------------------------------------------------- the committed set


def test_the_script_rewrites_the_committed_files_byte_for_byte(tmp_path):
    script = _load_script()
    script.write_set(tmp_path, kinds=("hair", "tape"), names=("text",))
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png"))
    assert written == ["clean/text.png", "damaged/hair/text.png", "damaged/tape/text.png",
                       "masks/hair/text.png", "masks/tape/text.png", "undamaged/text.png"]
    for relative in written:
        assert (tmp_path / relative).read_bytes() == (COMMITTED / relative).read_bytes(), relative
    part = json.loads((tmp_path / "manifest.json").read_text())["files"]
    whole = json.loads((COMMITTED / "manifest.json").read_text())["files"]
    assert part == [f for f in whole if f["name"] == "text" and f["kind"] in ("", "hair", "tape")]


def test_the_script_refuses_unknown_kinds_and_a_missing_artefact_folder(tmp_path):
    script = _load_script()
    with pytest.raises(ConfigError, match="unknown damage kinds"):
        script.write_set(tmp_path, kinds=("hairs",), names=("text",))
    with pytest.raises(ConfigError, match="artefact"):
        script.write_set(tmp_path, kinds=("artefact",), names=("text",),
                         artefacts=tmp_path / "none")
    assert not any(tmp_path.iterdir())


def test_each_committed_mask_is_where_the_damage_changed_the_clean_image():
    manifest = json.loads((COMMITTED / "manifest.json").read_text())
    files = [f for f in manifest["files"] if f["kind"]]
    kinds = {f["kind"] for f in files}
    assert len(files) == 7 * 15 and len(kinds) == 15
    # Degradations change every pixel; without them, the contract is exact.
    plain = [f for f in files if not f["degradations"]]
    assert len(plain) >= 10
    for f in plain:
        damaged = load_image(COMMITTED / "damaged" / f["kind"] / f"{f['name']}.png")
        clean = load_image(COMMITTED / "clean" / f"{f['name']}.png")
        hole = ~load_mask(COMMITTED / "masks" / f["kind"] / f"{f['name']}.png")
        assert np.array_equal(hole, (damaged != clean).any(axis=-1)), f
    for f in files:
        hole = ~load_mask(COMMITTED / "masks" / f["kind"] / f"{f['name']}.png")
        assert hole.mean() == pytest.approx(f["hole_fraction"], abs=1e-6)
        assert hole.any(), f


def test_the_committed_set_reads_as_fifteen_kinds_in_the_synthesisers_order():
    images, undamaged = read_set(COMMITTED)
    kinds = list(dict.fromkeys(i.kind for i in images))
    assert kinds[:6] == ["artefact", "scratch", "curved_scratch", "hair", "dust", "crack"]
    assert len(kinds) == 15 and len(images) == 105 and len(undamaged) == 7
    assert all(i.clean == COMMITTED / "clean" / f"{i.name}.png" for i in images)
    size = sum(p.stat().st_size for p in COMMITTED.rglob("*") if p.is_file())
    assert size <= 10_000_000


# --------------------------------------------------------------------------- a tiny set


SIZE = (40, 48)
# kind -> (seed, scratches) per image: rows, first and end columns of 2-px white scratches.
TINY = {
    "hair": [(1, ((5, 4, 30), (20, 10, 44))), (2, ((30, 0, 47),))],
    "tear": [(3, ((12, 6, 40),)), (4, ((2, 3, 9), (33, 20, 40)))],
}


def write_tiny_set(root: Path) -> Path:
    """Dark noisy pictures with white scratches (which ``bright_detector`` marks exactly), the
    same pictures clean, and two undamaged ones: one with 12 bright pixels (a false alarm for
    that detector), one without."""
    for kind, entries in TINY.items():
        for seed, scratches in entries:
            damaged, hole = scratched(SIZE, seed, scratches)
            clean, _ = scratched(SIZE, seed, ())
            for folder, pixels in (("damaged", damaged), ("clean", clean)):
                (root / folder / kind).mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(root / folder / kind / f"p{seed}.png")
            (root / "masks" / kind).mkdir(parents=True, exist_ok=True)
            save_mask(root / "masks" / kind / f"p{seed}.png", ~hole)
    (root / "undamaged").mkdir()
    bright, _ = scratched(SIZE, 7, ())
    bright[3, :12] = 240
    Image.fromarray(bright).save(root / "undamaged" / "bright.png")
    Image.fromarray(scratched(SIZE, 8, ())[0]).save(root / "undamaged" / "dark.png")
    return root


def _key(image) -> str:  # noqa: ANN001
    return hashlib.sha256(image.pixels.tobytes()).hexdigest()


class StandIn:
    """A stand-in for the network: the probabilities it returns for an image are looked up by
    the image's pixels (zero for images it was not given)."""

    backend = "stand-in"

    def __init__(self, name: str, answers: dict[str, np.ndarray]) -> None:
        self.name = name
        self.answers = answers

    def probabilities(self, image, *, tile: int) -> np.ndarray:  # noqa: ANN001
        return self.answers.get(_key(image), np.zeros((image.height, image.width), np.float32))


def _pixels_key(path: Path) -> str:
    from pconv_cli.imaging import read_image

    return _key(read_image(path))


def truth_detector(root: Path) -> StandIn:
    images, _ = read_set(root)
    return StandIn("truth", {_pixels_key(i.damaged): (~load_mask(i.mask)).astype(np.float32)
                             for i in images})


def scattered_detector(root: Path, seed: int = 0) -> tuple[StandIn, dict[Path, np.ndarray]]:
    """Random marks, some on the damage, some beside it, on every image of the set."""
    images, undamaged = read_set(root)
    rng = np.random.default_rng(seed)
    answers, marks = {}, {}
    for path in [i.damaged for i in images] + undamaged:
        marked = rng.random(SIZE) < 0.08
        marked[rng.integers(0, SIZE[0]), :] = True
        answers[_pixels_key(path)] = marked.astype(np.float32)
        marks[path] = marked
    return StandIn("scattered", answers), marks


def brute_force(predicted: list[np.ndarray], truths: list[np.ndarray], tolerance: int) -> dict:
    """Pixel by pixel: a marked pixel is right with a true pixel within ``tolerance`` (in x and
    in y), a true pixel found with a marked one within it."""
    marked = true = right = found = 0
    for pred, truth in zip(predicted, truths, strict=True):
        height, width = truth.shape
        for y in range(height):
            for x in range(width):
                near = (slice(max(0, y - tolerance), y + tolerance + 1),
                        slice(max(0, x - tolerance), x + tolerance + 1))
                if pred[y, x]:
                    marked += 1
                    right += bool(truth[near].any())
                if truth[y, x]:
                    true += 1
                    found += bool(pred[near].any())
    precision = right / marked if marked else 1.0
    recall = found / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    union = marked + true - right
    return {"precision": precision, "recall": recall, "f1": f1,
            "iou": right / union if union else 1.0}


@pytest.fixture()
def tiny(tmp_path) -> Path:
    return write_tiny_set(tmp_path / "set")


def test_a_detector_that_returns_the_true_masks_scores_one_everywhere(tiny):
    report = score_detector(truth_detector(tiny), tiny, threshold=0.5)
    assert [k.kind for k in report.kinds] == ["hair", "tear"]
    for row in (*report.kinds, report.total):
        for counts in (row.exact, row.near):
            assert (counts.precision, counts.recall, counts.f1, counts.iou) == (1, 1, 1, 1)
    assert report.total.exact.true == sum(
        int((~load_mask(m)).sum()) for m in tiny.glob("masks/*/*.png"))
    assert report.undamaged_images == 2 and report.undamaged_marked == 0.0


def test_a_detector_that_marks_nothing_finds_nothing(tiny):
    report = score_detector(StandIn("nothing", {}), tiny, threshold=0.5)
    for row in (*report.kinds, report.total):
        assert row.exact.recall == 0 and row.near.recall == 0
        assert row.exact.f1 == 0 and row.exact.iou == 0
        assert row.exact.precision == 1  # no false alarm was raised
        assert row.exact.predicted == 0 and row.exact.true > 0


@pytest.mark.parametrize("tolerance", [1, 2])
def test_per_kind_scores_are_the_pixel_by_pixel_counts(tiny, tolerance):
    detector, marks = scattered_detector(tiny)
    report = score_detector(detector, tiny, threshold=0.5, tolerance=tolerance)
    images, undamaged = read_set(tiny)
    for row in report.kinds:
        mine = [i for i in images if i.kind == row.kind]
        predicted = [marks[i.damaged] for i in mine]
        truths = [~load_mask(i.mask) for i in mine]
        exact, near = brute_force(predicted, truths, 0), brute_force(predicted, truths, tolerance)
        assert row.exact.precision == pytest.approx(exact["precision"])
        assert row.exact.recall == pytest.approx(exact["recall"])
        assert row.exact.f1 == pytest.approx(exact["f1"])
        assert row.exact.iou == pytest.approx(exact["iou"])
        assert row.near.f1 == pytest.approx(near["f1"])
        assert row.near.f1 > row.exact.f1  # marks beside the scratches count within it
    everything = brute_force([marks[i.damaged] for i in images],
                             [~load_mask(i.mask) for i in images], 0)
    assert report.total.exact.f1 == pytest.approx(everything["f1"])
    shares = [marks[p].mean() for p in undamaged]
    assert report.undamaged_marked == pytest.approx(np.mean(shares))  # same-size images
    assert report.undamaged_worst == pytest.approx(max(shares))


def test_thin_kinds_are_held_to_the_f1_within_the_tolerance(tiny):
    detector, _ = scattered_detector(tiny)
    report = score_detector(detector, tiny, threshold=0.5)
    hair, tear = report.kinds
    assert hair.thin and "hair" in THIN_KINDS and not tear.thin
    assert hair.goal_f1 == hair.near.f1 and tear.goal_f1 == tear.exact.f1


def test_a_real_detector_checkpoint_end_to_end(tiny, tmp_path):
    """bright_detector marks exactly the white scratches: restoring with its masks is
    restoring with the true masks, and both come closer to the clean images than the input."""
    detector = load_damage_detector(save_detector(tmp_path / "bright.pt", bright_detector()),
                                    device="cpu")
    report = score_detector(detector, tiny, threshold=0.5, restore_method="ns", device="cpu")
    assert report.total.exact.f1 == 1.0
    assert report.undamaged_marked == pytest.approx(12 / (2 * SIZE[0] * SIZE[1]))
    assert report.undamaged_worst == pytest.approx(12 / (SIZE[0] * SIZE[1]))
    images, _ = read_set(tiny)
    for row in report.kinds:
        e = row.end_to_end
        inputs = [psnr(load_image(i.damaged), load_image(i.clean)) for i in images
                  if i.kind == row.kind]
        assert e.damaged == pytest.approx(np.mean(inputs))
        assert e.detected == e.true and e.gap == 0
        assert e.true > e.damaged + 5 and e.true_damage > e.damaged_damage + 5
    assert report.restore.startswith("ns")


def test_end_to_end_in_damage_is_over_the_pixels_damaged_or_marked(tiny):
    detector, marks = scattered_detector(tiny)
    report = score_detector(detector, tiny, threshold=0.5, restore_method="ns", device="cpu")
    images, _ = read_set(tiny)
    for row in report.kinds:
        expected = []
        for i in (i for i in images if i.kind == row.kind):
            region = ~load_mask(i.mask) | marks[i.damaged]
            expected.append(psnr(load_image(i.damaged)[region], load_image(i.clean)[region]))
        assert row.end_to_end.damaged_damage == pytest.approx(np.mean(expected))
    nothing = score_detector(StandIn("nothing", {}), tiny, threshold=0.5, restore_method="ns")
    e = nothing.total.end_to_end
    assert e.detected == e.damaged and e.detected_damage == e.damaged_damage
    assert e.true > e.detected + 5
    assert (e.worse_detected, e.worse_true) == (0, 0)  # nothing restored: the same image


def test_restores_further_from_the_clean_image_than_the_input_are_counted(tiny):
    """A detector that marks every pixel has the whole image filled: every restore is worse
    than the damaged input, which the counts say, image by image."""
    images, undamaged = read_set(tiny)
    everything = StandIn("everything", {_pixels_key(i.damaged): np.ones(SIZE, np.float32)
                                        for i in images})
    report = score_detector(everything, tiny, threshold=0.5, restore_method="ns")
    for row in report.kinds:
        assert row.end_to_end.worse_detected == row.images
        assert row.end_to_end.worse_true == 0  # the true masks' fills beat the damage here
    assert report.total.end_to_end.worse_detected == len(images)
    assert f"0 of {len(images)} with the true masks" in report_markdown(report)
    assert report_dict(report)["total"]["worse_than_input"] == {"detected": len(images),
                                                                "true": 0}


def test_a_random_weight_detector_runs_with_restores_default_inpainter(tiny, tmp_path):
    detector = load_damage_detector(save_detector(tmp_path / "random.pt", random_detector()),
                                    device="cpu")
    report = score_detector(detector, tiny, threshold=0.5, tolerance=1, restore_method="auto",
                            device="cpu")
    assert report.detector == "random" and report.restore.startswith("auto")
    e = report.total.end_to_end
    assert e.images == 4 and all(math.isfinite(v) for v in (e.damaged, e.detected, e.true))
    assert report.total.exact.true == sum(k.exact.true for k in report.kinds)
    assert report.total.exact.predicted == sum(k.exact.predicted for k in report.kinds)


def test_the_report_reads_as_markdown_and_json(tiny, tmp_path):
    detector, _ = scattered_detector(tiny)
    report = score_detector(detector, tiny, threshold=0.5, tolerance=2)
    page = report_markdown(report)
    rows = {line.split(" | ")[0]: line for line in page.splitlines() if line.startswith("| ")}
    hair = report.kinds[0]
    assert f"{hair.exact.precision:.3f}" in rows["| hair*"]
    assert f"{hair.near.f1:.3f}" in rows["| hair*"]
    assert "F1 ±2 px" in page and "End to end" not in page
    data = report_dict(report)
    json.dumps(data, allow_nan=False)
    assert [k["kind"] for k in data["kinds"]] == ["hair", "tear"]
    assert data["kinds"][1]["exact"]["iou"] == pytest.approx(report.kinds[1].exact.iou)
    assert data["undamaged"]["images"] == 2
    written = write_report(report, tmp_path / "out")
    assert [p.name for p in written] == ["detect-report.md", "detect-report.json"]
    assert written[0].read_text() == page


def test_bad_sets_and_settings_are_refused_in_one_line(tiny, tmp_path):
    nothing = StandIn("nothing", {})
    with pytest.raises(InputError, match="no damaged/ folder"):
        score_detector(nothing, tmp_path / "empty", threshold=0.5)
    (tiny / "masks" / "tear" / "p3.png").unlink()
    with pytest.raises(InputError, match="no mask"):
        score_detector(nothing, tiny, threshold=0.5)
    with pytest.raises(ConfigError, match="tolerance"):
        score_detector(nothing, tiny, threshold=0.5, tolerance=-1)
    with pytest.raises(ConfigError, match="threshold"):
        score_detector(nothing, tiny, threshold=1.5)


def test_end_to_end_needs_the_clean_images(tiny):
    for path in (tiny / "clean" / "hair").iterdir():
        path.unlink()
    with pytest.raises(InputError, match="no clean image"):
        score_detector(truth_detector(tiny), tiny, threshold=0.5, restore_method="ns")


# --------------------------------------------------------------------------- pconv evaluate


def test_pconv_evaluate_scores_a_detector_and_writes_its_reports(tiny, tmp_path):
    ckpt = save_detector(tmp_path / "bright.pt", bright_detector())
    out = tmp_path / "report"
    result = CliRunner().invoke(app, [
        "evaluate", "--detector", str(ckpt), "--detect-set", str(tiny), "--method", "ns",
        "--tolerance", "2", "--device", "cpu", "--out", str(out)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "| hair* | 2 |" in result.output and "F1 ±2 px" in result.output
    assert "End to end" in result.output
    data = json.loads((out / "detect-report.json").read_text())
    assert data["total"]["exact"]["f1"] == 1.0 and data["settings"]["tolerance"] == 2
    assert data["total"]["psnr"]["gap"] == 0.0 and data["restore"].startswith("ns")
    assert (out / "detect-report.md").read_text() in result.output


def test_pconv_evaluate_restores_with_restores_default_and_can_leave_it_out(tiny, tmp_path):
    ckpt = str(save_detector(tmp_path / "random.pt", random_detector()))
    report = tmp_path / "r.json"
    result = CliRunner().invoke(app, ["evaluate", "--detector", ckpt, "--detect-set", str(tiny),
                                      "--device", "cpu", "--json", str(report)])
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["restore"].startswith("auto:biharmonic")
    result = CliRunner().invoke(app, ["evaluate", "--detector", ckpt, "--detect-set", str(tiny),
                                      "--no-end-to-end", "--threshold", "0.3"])
    assert result.exit_code == 0, result.output
    assert "End to end" not in result.output and "Threshold 0.3" in result.output


def test_pconv_evaluate_masks_as_detect_does_with_grow_min_area_and_precision(tiny, tmp_path):
    """The detection settings of the detector mode are detect's: the grown mask marks more
    pixels, and the settings are in the report."""
    ckpt = str(save_detector(tmp_path / "bright.pt", bright_detector()))
    marked = {}
    for grow in (0, 2):
        report = tmp_path / f"grow{grow}.json"
        result = CliRunner().invoke(app, [
            "evaluate", "--detector", ckpt, "--detect-set", str(tiny), "--no-end-to-end",
            "--grow", str(grow), "--min-area", "3", "--precision", "fp32", "--device", "cpu",
            "--json", str(report)], terminal_width=200)
        assert result.exit_code == 0, result.output
        assert f"grow {grow} px, min area 3 px" in result.output
        data = json.loads(report.read_text())
        marked[grow] = sum(row["exact"]["marked"] for row in data["kinds"])
    assert marked[2] > marked[0] > 0


@pytest.mark.parametrize("args, message", [
    (["--detect-set", "SET"], "add --detector"),
    (["--detector", "CKPT"], "add --detect-set"),
    (["--detector", "CKPT", "--detect-set", "SET", "--images", "SET"], "--images and --masks"),
    (["--detector", "CKPT", "--detector-onnx", "CKPT", "--detect-set", "SET"], "not both"),
    (["--detector", "CKPT", "--detect-set", "SET", "--method", "ns,telea"], "use one"),
    (["--detector", "CKPT", "--detect-set", "NOWHERE"], "not a detector evaluation set"),
    ([], "give --images and --masks"),
])
def test_pconv_evaluate_refuses_mixed_or_missing_options_in_one_line(tiny, tmp_path, args,
                                                                     message):
    ckpt = str(save_detector(tmp_path / "random.pt", random_detector()))
    names = {"SET": str(tiny), "CKPT": ckpt, "NOWHERE": str(tmp_path / "nowhere")}
    result = CliRunner().invoke(app, ["evaluate", *[names.get(a, a) for a in args]],
                                terminal_width=400)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines


def test_a_threshold_sweep_is_the_report_at_each_threshold(tiny, tmp_path):
    """Probabilities computed once and cut at each threshold: each row is what score_detector
    pools over all kinds at that threshold, undamaged share included."""
    detector = load_damage_detector(save_detector(tmp_path / "random.pt", random_detector()),
                                    device="cpu")
    thresholds = [0.2, 0.5, 0.8]
    rows = threshold_sweep(detector, tiny, thresholds, tolerance=1, grow=1)
    assert [row.threshold for row in rows] == thresholds
    for row in rows:
        report = score_detector(detector, tiny, threshold=row.threshold, tolerance=1, grow=1)
        assert row.exact == report.total.exact and row.near == report.total.near
        assert row.undamaged_marked == pytest.approx(report.undamaged_marked)
    marked = [row.exact.predicted for row in rows]
    assert marked == sorted(marked, reverse=True)  # a higher threshold marks no more


def test_pconv_evaluate_thresholds_prints_and_writes_the_sweep(tiny, tmp_path):
    ckpt = str(save_detector(tmp_path / "bright.pt", bright_detector()))
    out, report = tmp_path / "report", tmp_path / "sweep.json"
    result = CliRunner().invoke(app, [
        "evaluate", "--detector", ckpt, "--detect-set", str(tiny), "--thresholds", "0.7,0.3",
        "--device", "cpu", "--out", str(out), "--json", str(report)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "| 0.3 |" in result.output and "| 0.7 |" in result.output
    assert "End to end" not in result.output
    assert [row["threshold"] for row in json.loads(report.read_text())] == [0.3, 0.7]
    assert (out / "detect-thresholds.md").read_text() in result.output
    bad = CliRunner().invoke(app, ["evaluate", "--detector", ckpt, "--detect-set", str(tiny),
                                   "--thresholds", "0.3,high"])
    assert bad.exit_code == 1 and "--thresholds 0.3,high" in bad.output
