"""The report as data: the settings it was made with, each method's statistics, the files that
failed, notices and the sample rows.

Its methods only hand the report to :mod:`.render` (text, tables, pictures) and :mod:`.files`
(the report folder); nothing here decides how a report looks.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..metrics import SSIM_SETTINGS, WIDTH_GROUPS
from . import files, render
from .aggregate import MethodResult
from .pairs import TOP_LEVEL_KIND, Failure, Pair, PairSet


@dataclass
class SampleRow:
    """One row of a band's sample grid."""

    pair: Pair
    masked: np.ndarray  # the input as shown: holes white
    truth: np.ndarray
    outputs: dict[str, np.ndarray] = field(default_factory=dict)  # method → composite


@dataclass
class Report:
    settings: dict[str, Any]
    methods: dict[str, MethodResult]
    metrics: list[str]
    band_labels: list[str]
    border_split: bool
    failed: list[Failure]
    # Things a reader should know that are no scores; writing the files may add one (a plot
    # left out), so that the caller that shows them after writing shows that too.
    notices: list[str]
    samples: dict[str, list[SampleRow]] = field(default_factory=dict)  # band label → rows

    @property
    def kinds(self) -> list[str]:
        first = next(iter(self.methods.values()))
        return list(first.kinds)

    def rows(self, metric: str) -> list[render.TableRow]:
        """One metric's table (:func:`render.table_rows`), as the terminal and Markdown show it."""
        return render.table_rows(self, metric)

    def to_json(self) -> dict[str, Any]:
        return render.report_json(self)

    def json_text(self) -> str:
        return render.json_text(self)

    def csv_text(self) -> str:
        return render.csv_text(self)

    def markdown_text(self) -> str:
        return render.markdown_text(self)

    def write_json(self, path: str | os.PathLike) -> Path:
        return files.write_json(self, path)

    def write_all(self, out_dir: str | os.PathLike) -> list[Path]:
        """report.json, .csv, .md, .png (when matplotlib is there) and the sample grids."""
        written, notices = files.write_all(self, out_dir)
        self.notices += [n for n in notices if n not in self.notices]
        return written


# --------------------------------------------------------------------------- settings


def report_settings(
    pair_set: PairSet,
    results: dict[str, MethodResult],
    *,
    size: tuple[int, int] | None,
    native: bool,
    batch_size: int,
    workers: int,
    lpips_setting: str,
    scored_pairs: int,
    skipped_pairs: int,
    sizes: set[tuple[int, int]],
) -> dict[str, Any]:
    """How the report was made: inputs, pairing, sizing, metric definitions, versions."""
    return {
        "pconv_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "images": str(pair_set.images_dir),
        "masks": str(pair_set.masks_dir),
        "n_images": pair_set.n_images,
        "n_masks": pair_set.n_masks,
        "pairing": pair_set.pairing,
        "seed": pair_set.seed,
        "pairs": scored_pairs,
        "pairs_skipped": skipped_pairs,
        "masks_outside_bands": pair_set.masks_outside_bands,
        "size": "native" if native else (_size_text(size) if size else "mask size"),
        "sizing": _sizing(size, native),
        "sizes_scored": sorted(_size_text(s) for s in sizes),
        "bands": list(pair_set.edges),
        "band_source": pair_set.band_source,
        "mask_files": "black = hole" if pair_set.invert else "white = hole",
        "border_split": pair_set.border_split,
        "metrics": _metric_definitions(lpips_setting),
        "kinds": {
            "rule": "the first sub-folder of the images folder an image lies in; images "
                    f"directly in it are {TOP_LEVEL_KIND!r}",
            "pairs": {kind: sum(1 for p in pair_set.pairs if p.kind == kind)
                      for kind in pair_set.kinds},
        },
        "null": "JSON has no infinity: a null psnr with n > 0 means at least one image was "
                "reconstructed exactly (infinite PSNR; psnr_infinite counts them); null also "
                "marks values of empty bands and undefined spreads",
        "seconds_per_image": "time inside the method per image: models at the batch size on "
                             "their device (first call excluded), per-image methods on one "
                             "worker core",
        "methods": [{"name": r.name, "backend": r.backend, "source": r.source}
                    for r in results.values()],
        "batch_size": batch_size,
        "workers": workers,
        "versions": _versions(),
    }


def _size_text(size: tuple[int, int]) -> str:
    return f"{size[1]}x{size[0]}"


def _sizing(size: tuple[int, int] | None, native: bool) -> str:
    if native:
        return ("each image at its own size (models pad to their multiple, the padding "
                "counting as hole, and crop back); its mask resized (nearest) to it")
    if size is not None:
        return ("images centre-cropped to that aspect ratio and resized (Lanczos); masks "
                "resized (nearest) where their size differs")
    return ("each image centre-cropped to its mask's aspect ratio and resized (Lanczos) "
            "to the mask's size")


def _metric_definitions(lpips_setting: str) -> dict[str, Any]:
    return {
        "on": "the composite: known pixels from the truth, holes from the method; "
              "methods see the holes as 0",
        "range": "images in [0, 1]",
        "l1": "mean absolute error over all pixels and channels of the whole image, "
              "in percent",
        "psnr": {"data_range": 1.0, "unit": "dB"},
        "ssim": {"implementation": "skimage.metrics.structural_similarity",
                 **SSIM_SETTINGS},
        "lpips": lpips_setting,
        "hole_l1": "mean absolute error over the hole pixels and channels only, in percent",
        "hole_psnr": {"data_range": 1.0, "unit": "dB", "over": "the hole pixels only"},
        "hole_widths": {
            "groups": {label: f"measured width >= {low:g} px"
                       for label, low in WIDTH_GROUPS},
            "measure": "each 8-connected hole region: 2*r - 1 px, r = its largest "
                       "Euclidean distance from a hole pixel to the nearest known pixel",
            "scores": "hole_l1 and hole_psnr over the pixels of the group's regions; "
                      "n = images with such regions",
        },
        "std": "population standard deviation over images (ddof 0)",
    }


def _versions() -> dict[str, str]:
    """The versions of what computed the numbers; optional libraries only where they ran."""
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for module, label in (("skimage", "scikit-image"), ("torch", "torch"),
                          ("onnxruntime", "onnxruntime"), ("cv2", "opencv")):
        if module in sys.modules:
            versions[label] = str(getattr(sys.modules[module], "__version__", "?"))
    return versions
