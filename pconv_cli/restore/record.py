"""What a run leaves in OUT besides its images: the record of the settings they were made with
(``.pconv-restore.json``; a rerun with other settings is refused, so one OUT never mixes two
kinds of result) and the list of files that failed (``failures.csv``)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__
from ..classical import ClassicalInpainter
from ..errors import InputError
from ..fileio import atomic_write_text
from ..imaging import FORMAT_CHOICES
from .options import RestoreOptions
from .results import FileResult

if TYPE_CHECKING:
    from ..detect import _Detector
    from ..inpainter import Inpainter

RUN_RECORD = ".pconv-restore.json"  # in OUT: the settings its images were restored with


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file (a model): the record tells two models apart by content, not name."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def output_settings(options: RestoreOptions, inpainter: Inpainter,
                    model_digest: str | None = None, detector: _Detector | None = None) -> dict:
    """Every setting that decides an output's pixels or format, keyed by its CLI option.

    Not recorded: what only decides which files are done or how fast (--recursive, --shard,
    --workers, --batch-size, --max-pixels, --device, --tile). Settings of a mask source not
    in use are None, as in records written before that source existed.
    """
    from ..routing import RoutedInpainter

    detecting = options.mask_from == "detect"
    painted = options.mask_color is not None

    def resolved(path: Path | None) -> str | None:
        return None if path is None else str(Path(path).resolve())

    # --method: a model alone (recorded as None, as in records written before --method), a
    # classical method alone (no model), or both routed by hole width (the model's name).
    routed = isinstance(inpainter, RoutedInpainter)
    classical = isinstance(inpainter, ClassicalInpainter)
    model_name = inpainter.model.name if routed else None if classical else inpainter.name
    return {
        "model": model_name,
        "model-sha256": None if classical else model_digest,
        "flips": None if classical else inpainter.flips,
        "blend": None if classical else inpainter.blend,
        "method": inpainter.name if routed or classical else None,
        "thin-width": inpainter.thin_width if routed else None,
        "masks": resolved(options.masks),
        "mask": resolved(options.mask),
        "mask-from": options.mask_from,
        "invert-mask": options.invert_mask,
        "resize-masks": options.resize_masks,
        "grow-mask": options.grow_mask,
        "format": (FORMAT_CHOICES[options.format] or "keep").lower(),
        "quality": options.quality,
        "hd-strategy": options.hd_strategy,
        "hd-trigger": options.hd_trigger,
        "hd-margin": options.hd_margin,
        "hd-size": options.hd_size,
        "detector": detector.name if detecting and detector is not None else None,
        "detector-sha256": detector.sha256 if detecting and detector is not None else None,
        "threshold": options.threshold if detecting else None,
        "grow": options.grow if detecting else None,
        "min-area": options.min_area if detecting else None,
        "precision": detector.precision if detecting and detector is not None else None,
        "mask-color": options.mask_color.lower() if painted else None,
        "color-tolerance": options.color_tolerance if painted else None,
    }


def _shown(key: str, value: object) -> str:
    if value is None:
        return "pconv" if key == "method" else "none"  # the model alone: see output_settings
    if key.endswith("sha256"):
        return f"{value}"[:12] + "…"
    return str(value)


# What a setting was before it was recorded: detection ran in fp32 before --precision.
_BEFORE_THE_OPTION = {"precision": "fp32"}


def _recorded(old: dict, key: str, value: object) -> object:
    """``key``'s value in an older record; one written before the option existed holds what
    the option's value then always was (None where the setting is not in use now either)."""
    if key in old or value is None:
        return old.get(key)
    return _BEFORE_THE_OPTION.get(key)


def check_output_settings(output: Path, settings: dict, *, overwrite: bool,
                          record_name: str = RUN_RECORD, made: str = "images restored") -> None:
    """Refuse to mix images restored with other settings in one OUT, then record these.

    A rerun with the same settings resumes (existing outputs are skipped); with other settings
    it would skip every file and leave the old images under the new settings' name, so it is
    refused unless ``overwrite`` redoes them.
    """
    record = output / record_name
    if not overwrite and record.exists():
        try:
            old = json.loads(record.read_text(encoding="utf-8")).get("settings")
        except (OSError, ValueError, AttributeError):
            old = None
        if not isinstance(old, dict):
            raise InputError(f"{record} is unreadable; pass --overwrite to redo the images in "
                             f"{output}, or choose another folder")
        differing = [f"--{key} {_shown(key, value)} (was {_shown(key, recorded)})"
                     for key, value in settings.items()
                     if (recorded := _recorded(old, key, value)) != value]
        if differing:
            raise InputError(
                f"{output} holds {made} with other settings: {', '.join(differing)}; "
                "pass --overwrite to redo them, or choose another folder"
            )
    try:
        atomic_write_text(record, json.dumps({"pconv_version": __version__,
                                              "settings": settings}, indent=2) + "\n")
    except OSError as exc:
        raise InputError(f"{output}: cannot write there ({exc.strerror or exc}); choose a "
                         "writable folder") from None


# ----------------------------------------------------------------------- failures file


def failures_csv_name(shard: tuple[int, int] | None) -> str:
    """Each shard lists its own failures, so that shards sharing one OUT do not overwrite one
    another's list."""
    return "failures.csv" if shard is None else f"failures-{shard[0]}-of-{shard[1]}.csv"


def write_failures(output: Path, failed: list[FileResult], shard: tuple[int, int] | None
                   ) -> Path:
    """``OUT/failures.csv`` (``failures-K-of-N.csv`` for a shard): file, reason; header only
    when nothing failed, so that a clean rerun does not leave an old list behind."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file", "reason"])
    for result in failed:
        writer.writerow([result.relative, result.reason])
    path = output / failures_csv_name(shard)
    atomic_write_text(path, buffer.getvalue())
    return path
