"""Scoring a damage detector on a synthetic set with exact masks (eval-sets/detect).

A set (written by scripts/make_detect_eval_set.py) holds, per damage kind, damaged images with
the exact mask of their damage, the clean image under the damage, and undamaged images (image
kind and degradations, no damage). :func:`score_detector` runs a detector on each damaged
image as ``pconv detect`` does (:func:`pconv_cli.detect.find_damage`: the same reading,
tiling, threshold, ``min_area`` and ``grow``) and reports, per damage kind and in total:

- precision, recall, F1 and IoU of the marked pixels at the threshold (exact overlap), and F1
  within ``tolerance`` px (a hair marked one pixel to the side is found; degradations spread
  damage a pixel or two beyond its mask): :func:`pconv_cli.detection_metrics.match_counts`,
  counts pooled over the images of a kind;
- the share of pixels marked on the undamaged images: false alarms on grain, JPEG, fading...;
- end to end, with an inpainter: PSNR against the clean image of the damaged input, of the
  input restored with the detected mask and of the input restored with the true mask, over the
  whole image and over the pixels that are damaged or marked (where the three differ: the
  degradations every image carries dilute whole-image differences).

Restoring is the call ``pconv restore`` makes on an image of this size (one pass through the
inpainter of :func:`pconv_cli.routing.load_method`), written back as restore writes it (8-bit,
grey images as luma). :func:`report_markdown` and :func:`report_dict` turn a report into a
page and JSON.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .damage import DAMAGE_WEIGHTS, THIN_WEIGHTS
from .detect import DEFAULT_THRESHOLD, DEFAULT_TILE, check_detection_settings, find_damage
from .detection_metrics import MatchCounts, match_counts
from .errors import ConfigError, InputError
from .fileio import atomic_write_text
from .imaging import list_images, load_mask, model_rgb, native_color, read_image
from .metrics import psnr

if TYPE_CHECKING:
    from .detect import _Detector
    from .inpainter import Inpainter

DAMAGED, MASKS, CLEAN, UNDAMAGED = "damaged", "masks", "clean", "undamaged"
# Kinds held to F1 within the tolerance (a thin line one pixel off is found); the others to
# the exact F1. The synthesiser's thin kinds, those thin_hole_mask draws.
THIN_KINDS = tuple(THIN_WEIGHTS)
F1_GOAL = 0.8
MARKED_GOAL = 0.002  # share of the pixels of a clean image a detector may mark
PSNR_GAP_GOAL = 1.0  # dB: restore with detected masks at most this far behind the true masks
REPORT_NAME = "detect-report"

Progress = Callable[[int, int], None]


# --------------------------------------------------------------------------- the set


@dataclass(frozen=True)
class SetImage:
    """One damaged image of a set, with its true mask and (if the set has one) its clean
    image."""

    kind: str
    name: str
    damaged: Path
    mask: Path
    clean: Path | None


def _kind_order(kind: str) -> tuple[int, str]:
    """The synthesiser's order (docs/damage.md's table), then other kinds by name."""
    known = list(DAMAGE_WEIGHTS)
    return (known.index(kind) if kind in known else len(known), kind)


def _clean_of(root: Path, kind: str, relative: Path) -> Path | None:
    """``clean/<kind>/<name>`` where a set has one per kind, else the shared ``clean/<name>``."""
    for path in (root / CLEAN / kind / relative, root / CLEAN / relative):
        if path.is_file():
            return path
    return None


def read_set(set_dir: str | Path) -> tuple[list[SetImage], list[Path]]:
    """The damaged images of a set, kind by kind, and its undamaged images.

    Every damaged image needs a mask of the same name; a missing one is an error rather than a
    silent gap in a kind's counts.
    """
    root = Path(set_dir)
    damaged = root / DAMAGED
    if not damaged.is_dir():
        raise InputError(f"{root}: not a detector evaluation set (no {DAMAGED}/ folder); make "
                         "one with scripts/make_detect_eval_set.py")
    kinds = sorted((p.name for p in damaged.iterdir() if p.is_dir()), key=_kind_order)
    images = []
    for kind in kinds:
        for path in list_images(damaged / kind):
            relative = path.relative_to(damaged / kind)
            mask = (root / MASKS / kind / relative).with_suffix(".png")
            if not mask.is_file():
                raise InputError(f"{path}: no mask {mask.relative_to(root)} in the set")
            images.append(SetImage(kind, relative.with_suffix("").as_posix(), path, mask,
                                   _clean_of(root, kind, relative)))
    if not images:
        raise InputError(f"{damaged}: no damaged images in its kind folders")
    undamaged = list_images(root / UNDAMAGED) if (root / UNDAMAGED).is_dir() else []
    return images, undamaged


# --------------------------------------------------------------------------- the report


def _mean(values: Sequence[float]) -> float:
    """Mean in dB over the images where it is defined (NaN where none is)."""
    kept = [v for v in values if not math.isnan(v)]
    return float(np.mean(kept)) if kept else math.nan


@dataclass(frozen=True)
class EndToEnd:
    """Mean PSNR (dB) against the clean images: of the damaged input, restored with the
    detected masks, restored with the true masks; whole images and, ``*_damage``, only the
    pixels damaged or marked."""

    images: int
    damaged: float
    detected: float
    true: float
    damaged_damage: float
    detected_damage: float
    true_damage: float
    # Images whose restore is further from the clean image than the damaged input was (whole
    # image PSNR): a fill worse than the damage it replaced.
    worse_detected: int = 0
    worse_true: int = 0

    @property
    def gap(self) -> float:
        """dB the detected masks leave the restore behind the true masks (whole images)."""
        return self.true - self.detected

    @property
    def gap_damage(self) -> float:
        return self.true_damage - self.detected_damage


@dataclass(frozen=True)
class KindScore:
    """A damage kind's pooled counts at the threshold: ``exact`` overlap and ``near`` (within
    the tolerance); ``end_to_end`` when an inpainter was given."""

    kind: str
    images: int
    exact: MatchCounts
    near: MatchCounts
    end_to_end: EndToEnd | None = None

    @property
    def thin(self) -> bool:
        return self.kind in THIN_KINDS

    @property
    def goal_f1(self) -> float:
        """The F1 the goal is read on: within the tolerance for thin kinds, else exact."""
        return self.near.f1 if self.thin else self.exact.f1


@dataclass(frozen=True)
class DetectorReport:
    """Everything :func:`score_detector` measured, and the settings it measured with."""

    set_dir: str
    detector: str
    backend: str
    threshold: float
    tolerance: int
    grow: int
    min_area: int
    restore: str | None  # the inpainter of the end-to-end scores (None: not measured)
    kinds: tuple[KindScore, ...]
    total: KindScore
    undamaged_images: int
    undamaged_marked: float  # marked pixels / pixels over all undamaged images (NaN: none)
    undamaged_worst: float  # the largest share marked on one undamaged image
    seconds: float


# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class _Scored:
    exact: MatchCounts
    near: MatchCounts
    psnr: tuple[float, ...] | None  # the six values of EndToEnd, for one image


def _restored(inpainter: Inpainter, image, valid: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """The image as restore writes it with this mask: filled, in the file's own colour
    channels (luma for grey images) and bit depth, read back as float RGB."""
    rgb = model_rgb(image.pixels, image.mode)
    if valid.all():
        return rgb
    # A batch of one: the contract every backend keeps (the classical ones take only batches).
    filled = np.asarray(inpainter.inpaint(rgb[None], valid[None])[0], dtype=np.float32)
    return model_rgb(native_color(filled, image.mode, image.pixels.dtype), image.mode)


def _end_to_end(inpainter: Inpainter, item: SetImage, image, truth: np.ndarray,  # noqa: ANN001
                marked: np.ndarray) -> tuple[float, ...]:
    if item.clean is None:
        raise InputError(f"{item.damaged}: no clean image for the end-to-end scores (clean/"
                         f"{item.kind}/{item.name}.png or clean/{item.name}.png)")
    clean_file = read_image(item.clean)
    clean = model_rgb(clean_file.pixels, clean_file.mode)
    if clean.shape != (image.height, image.width, 3):
        raise InputError(f"{item.clean}: {clean.shape[1]}x{clean.shape[0]}, but its damaged "
                         f"image is {image.width}x{image.height}")
    outputs = (model_rgb(image.pixels, image.mode), _restored(inpainter, image, ~marked),
               _restored(inpainter, image, ~truth))
    region = truth | marked
    whole = [psnr(out, clean) for out in outputs]
    inside = [psnr(out[region], clean[region]) if region.any() else math.nan
              for out in outputs]
    return (*whole, *inside)


def _score_image(detector: _Detector, item: SetImage, settings: dict,
                 tolerance: int, inpainter: Inpainter | None) -> _Scored:
    image = read_image(item.damaged)
    truth = ~load_mask(item.mask)
    if truth.shape != (image.height, image.width):
        raise InputError(f"{item.mask}: {truth.shape[1]}x{truth.shape[0]}, but its image is "
                         f"{image.width}x{image.height}")
    marked = find_damage(detector, image, **settings).mask
    scores = (_end_to_end(inpainter, item, image, truth, marked)
              if inpainter is not None else None)
    return _Scored(match_counts(marked, truth, 0), match_counts(marked, truth, tolerance),
                   scores)


def _kind_score(kind: str, scored: Sequence[_Scored]) -> KindScore:
    exact = sum((s.exact for s in scored), MatchCounts())
    near = sum((s.near for s in scored), MatchCounts())
    end_to_end = None
    if scored and scored[0].psnr is not None:
        columns = list(zip(*(s.psnr for s in scored), strict=True))
        worse = [sum(s.psnr[which] < s.psnr[0] for s in scored) for which in (1, 2)]
        end_to_end = EndToEnd(len(scored), *(_mean(c) for c in columns), *worse)
    return KindScore(kind, len(scored), exact, near, end_to_end)


def _undamaged_marked(detector: _Detector, paths: Sequence[Path], settings: dict
                      ) -> tuple[float, float]:
    """Marked pixels over all pixels of the undamaged images, and the worst image's share."""
    marked = total = 0
    worst = 0.0
    for path in paths:
        mask = find_damage(detector, read_image(path), **settings).mask
        marked, total = marked + int(mask.sum()), total + mask.size
        worst = max(worst, float(mask.mean()))
    return (marked / total if total else math.nan), worst


def _inpainter_for(restore_method: str | None, inpainter: Inpainter | None,
                   device: str) -> Inpainter | None:
    if restore_method is not None and inpainter is not None:
        raise ConfigError("give restore_method or an inpainter, not both")
    if restore_method is None:
        return inpainter
    from .routing import load_method

    return load_method(restore_method, device=device)


def score_detector(detector: _Detector, set_dir: str | Path, *,
                   threshold: float = DEFAULT_THRESHOLD, tolerance: int = 1,
                   restore_method: str | None = None, inpainter: Inpainter | None = None,
                   grow: int = 0, min_area: int = 0, tile: int = DEFAULT_TILE,
                   device: str = "auto", progress: Progress | None = None) -> DetectorReport:
    """Score ``detector`` (from :func:`pconv_cli.detect.load_damage_detector`) on a set.

    ``restore_method`` (``"auto"``: restore's default, the bundled model with biharmonic for
    thin holes; any ``--method`` of restore) or an ``inpainter`` adds the end-to-end scores;
    without either they are left out. ``progress(done, total)`` is called after each image.
    """
    check_detection_settings(threshold, grow, min_area, tile)
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 0:
        raise ConfigError(f"tolerance {tolerance!r}: give a whole number of pixels, 0 or more")
    started = time.perf_counter()
    images, undamaged = read_set(set_dir)
    fill = _inpainter_for(restore_method, inpainter, device)
    settings = {"threshold": threshold, "grow": grow, "min_area": min_area, "tile": tile}
    total = len(images) + len(undamaged)
    by_kind: dict[str, list[_Scored]] = {}
    for done, item in enumerate(images, 1):
        by_kind.setdefault(item.kind, []).append(
            _score_image(detector, item, settings, tolerance, fill))
        if progress is not None:
            progress(done, total)
    marked, worst = _undamaged_marked(detector, undamaged, settings)
    if progress is not None:
        progress(total, total)
    return DetectorReport(
        set_dir=str(set_dir), detector=detector.name, backend=detector.backend,
        threshold=threshold, tolerance=tolerance, grow=grow, min_area=min_area,
        restore=None if fill is None else f"{fill.name} ({fill.backend})",
        kinds=tuple(_kind_score(kind, scored) for kind, scored in by_kind.items()),
        total=_kind_score("all kinds", [s for scored in by_kind.values() for s in scored]),
        undamaged_images=len(undamaged), undamaged_marked=marked, undamaged_worst=worst,
        seconds=time.perf_counter() - started)


# --------------------------------------------------------------------------- rendering


def _number(value: float, digits: int = 3) -> str:
    return "–" if math.isnan(value) else ("∞" if math.isinf(value) else f"{value:.{digits}f}")


def _percent(value: float) -> str:
    return "–" if math.isnan(value) else f"{100 * value:.3f} %"


def _met(ok: bool) -> str:
    return "yes" if ok else "no"


def _detection_table(report: DetectorReport) -> list[str]:
    t = report.tolerance
    lines = [f"| damage kind | images | true px | marked px | precision | recall | F1 | IoU "
             f"| F1 ±{t} px | F1 ≥ {F1_GOAL:g} |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for row in (*report.kinds, report.total):
        name = f"**{row.kind}**" if row is report.total else row.kind + ("*" if row.thin else "")
        goal = "" if row is report.total else _met(row.goal_f1 >= F1_GOAL)
        e = row.exact
        lines.append(f"| {name} | {row.images} | {e.true} | {e.predicted} | "
                     f"{_number(e.precision)} | {_number(e.recall)} | {_number(e.f1)} | "
                     f"{_number(e.iou)} | {_number(row.near.f1)} | {goal} |")
    return lines


def _end_to_end_table(report: DetectorReport) -> list[str]:
    lines = ["| damage kind | images | damaged input | detected masks | true masks | gap "
             "| damaged input, in damage | detected, in damage | true, in damage | gap "
             "| worse than the input: detected, true |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in (*report.kinds, report.total):
        e = row.end_to_end
        if e is None:
            continue
        name = f"**{row.kind}**" if row is report.total else row.kind
        cells = (e.damaged, e.detected, e.true, e.gap, e.damaged_damage, e.detected_damage,
                 e.true_damage, e.gap_damage)
        lines.append(f"| {name} | {e.images} | "
                     + " | ".join(_number(v, 2) for v in cells)
                     + f" | {e.worse_detected}, {e.worse_true} |")
    return lines


def report_markdown(report: DetectorReport) -> str:
    """The report as a Markdown page: settings, the per-kind table, clean images, end to end
    and the goals."""
    r = report
    lines = [f"# Damage detector {r.detector} on {r.set_dir}", "",
             f"Threshold {r.threshold:g}, tolerance {r.tolerance} px, grow {r.grow} px, "
             f"min area {r.min_area} px; {r.backend}; {r.total.images} damaged and "
             f"{r.undamaged_images} undamaged images in {r.seconds:.0f} s.", "",
             "Pixels pooled over the images of each kind. * thin kinds: the goal is read on "
             f"F1 within {r.tolerance} px; the others on exact F1.", "",
             *_detection_table(r), "",
             f"Undamaged images: {_percent(r.undamaged_marked)} of the pixels marked (worst "
             f"image {_percent(r.undamaged_worst)}); goal ≤ {_percent(MARKED_GOAL)}: "
             f"{_met(r.undamaged_marked <= MARKED_GOAL)}."]
    e = r.total.end_to_end
    if e is not None:
        lines += ["", f"End to end: mean PSNR (dB) against the clean images, restored with "
                      f"{r.restore}; 'in damage': over the pixels damaged or marked; gap: true "
                      "masks minus detected masks.", "", *_end_to_end_table(r), "",
                  f"Restore with the detected masks within {PSNR_GAP_GOAL:g} dB of the true "
                  f"masks (all kinds, whole images): {_met(e.gap <= PSNR_GAP_GOAL)}.",
                  f"Images restored further from the clean image than their damaged input: "
                  f"{e.worse_true} of {e.images} with the true masks (the fills), "
                  f"{e.worse_detected} with the detected masks."]
    return "\n".join(lines) + "\n"


def _plain(value: float) -> float | None:
    """JSON has no NaN or infinity: null."""
    return value if math.isfinite(value) else None


def _counts(counts: MatchCounts) -> dict:
    return {"true": counts.true, "marked": counts.predicted,
            "marked_right": counts.predicted_right, "true_found": counts.true_found,
            "precision": counts.precision, "recall": counts.recall, "f1": counts.f1,
            "iou": counts.iou}


def _kind_dict(row: KindScore) -> dict:
    out = {"kind": row.kind, "images": row.images, "thin": row.thin, "exact": _counts(row.exact),
           "within_tolerance": _counts(row.near), "goal_f1": row.goal_f1}
    if row.end_to_end is not None:
        e = row.end_to_end
        out["psnr"] = {key: _plain(getattr(e, key)) for key in (
            "damaged", "detected", "true", "gap", "damaged_damage", "detected_damage",
            "true_damage", "gap_damage")}
        out["worse_than_input"] = {"detected": e.worse_detected, "true": e.worse_true}
    return out


def report_dict(report: DetectorReport) -> dict:
    """The report as plain JSON values (NaN and infinity as null)."""
    r = report
    return {
        "set": r.set_dir, "detector": r.detector, "backend": r.backend,
        "settings": {"threshold": r.threshold, "tolerance": r.tolerance, "grow": r.grow,
                     "min_area": r.min_area},
        "restore": r.restore, "seconds": r.seconds,
        "kinds": [_kind_dict(row) for row in r.kinds], "total": _kind_dict(r.total),
        "undamaged": {"images": r.undamaged_images, "marked": _plain(r.undamaged_marked),
                      "worst": _plain(r.undamaged_worst)},
        "goals": {"f1": F1_GOAL, "marked": MARKED_GOAL, "psnr_gap": PSNR_GAP_GOAL},
    }


def write_report(report: DetectorReport, out: str | Path) -> list[Path]:
    """``OUT/detect-report.md`` and ``.json``, each written whole or not at all."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    md, js = folder / f"{REPORT_NAME}.md", folder / f"{REPORT_NAME}.json"
    atomic_write_text(md, report_markdown(report))
    atomic_write_text(js, json.dumps(report_dict(report), indent=1) + "\n")
    return [md, js]


# --------------------------------------------------------------------------- thresholds


@dataclass(frozen=True)
class ThresholdRow:
    """All damage kinds pooled at one threshold, and the undamaged images' marked share."""

    threshold: float
    exact: MatchCounts
    near: MatchCounts
    undamaged_marked: float


def threshold_sweep(detector: _Detector, set_dir: str | Path, thresholds: Sequence[float], *,
                    tolerance: int = 1, grow: int = 0, min_area: int = 0,
                    tile: int = DEFAULT_TILE, progress: Progress | None = None
                    ) -> list[ThresholdRow]:
    """The detector's precision, recall, F1 and marked share of undamaged images at each of
    ``thresholds``: the probabilities of every image are computed once and cut at each, to
    choose ``--threshold`` on the set (each row is what :func:`score_detector` pools over all
    kinds at that threshold)."""
    from .detection import damage_mask

    for threshold in thresholds:
        check_detection_settings(threshold, grow, min_area, tile)
    if not thresholds:
        raise ConfigError("give at least one threshold")
    images, undamaged = read_set(set_dir)
    exact = {t: MatchCounts() for t in thresholds}
    near = {t: MatchCounts() for t in thresholds}
    marked = {t: 0 for t in thresholds}
    pixels = 0

    def masks(image) -> dict[float, np.ndarray]:  # noqa: ANN001
        probabilities = detector.probabilities(image, tile=tile)
        return {t: damage_mask(probabilities, threshold=t, min_area=min_area, grow=grow).mask
                for t in thresholds}

    total = len(images) + len(undamaged)
    for done, item in enumerate(images, 1):
        truth = ~load_mask(item.mask)
        for t, mask in masks(read_image(item.damaged)).items():
            exact[t] += match_counts(mask, truth, 0)
            near[t] += match_counts(mask, truth, tolerance)
        if progress is not None:
            progress(done, total)
    for done, path in enumerate(undamaged, len(images) + 1):
        image = read_image(path)
        pixels += image.height * image.width
        for t, mask in masks(image).items():
            marked[t] += int(mask.sum())
        if progress is not None:
            progress(done, total)
    return [ThresholdRow(t, exact[t], near[t], marked[t] / pixels if pixels else math.nan)
            for t in thresholds]


def sweep_markdown(rows: Sequence[ThresholdRow], tolerance: int) -> str:
    """The sweep as a Markdown table, with the goals it is read against."""
    lines = [f"| threshold | precision | recall | F1 | F1 ±{tolerance} px | undamaged marked |",
             "|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row.threshold:g} | {_number(row.exact.precision)} | "
                     f"{_number(row.exact.recall)} | {_number(row.exact.f1)} | "
                     f"{_number(row.near.f1)} | {_percent(row.undamaged_marked)} |")
    lines += ["", f"Goals: F1 ≥ {F1_GOAL:g} (thin kinds within the tolerance), undamaged "
                  f"images ≤ {_percent(MARKED_GOAL)} marked."]
    return "\n".join(lines) + "\n"


def sweep_dict(rows: Sequence[ThresholdRow]) -> list[dict]:
    return [{"threshold": row.threshold, "exact": _counts(row.exact),
             "within_tolerance": _counts(row.near),
             "undamaged_marked": _plain(row.undamaged_marked)} for row in rows]
