"""The manifest of a mask set, ``masks.csv``: one line per mask file, written and read here.

``evaluate`` reads a set's ratios, bands and border flags from it instead of measuring every
file again; ``masks.json`` beside it (``RECIPE``) records the settings that made the set.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

MANIFEST = "masks.csv"
RECIPE = "masks.json"
MANIFEST_COLUMNS = ("file", "hole_ratio", "band", "border", "seed", "hole_pixels", "source")


@dataclass(frozen=True)
class ManifestRow:
    """One line of ``masks.csv``; ``path`` is the mask file, resolved against its folder."""

    file: str
    hole_ratio: float
    band: str
    border: bool
    seed: int
    hole_pixels: int
    source: str
    path: Path


def manifest_text(rows: list[list[str]]) -> str:
    """The CSV text of a manifest: the header of ``MANIFEST_COLUMNS``, then ``rows``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    writer.writerows(rows)
    return buf.getvalue()


def read_manifest(folder: str | os.PathLike) -> list[ManifestRow]:
    """The rows of ``folder/masks.csv`` (``folder`` may also be the CSV file itself)."""
    path = Path(folder)
    if path.is_dir():
        path = path / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no mask manifest; make the set with pconv gen-masks") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = {"file", "hole_ratio", "band", "border", "seed"} - set(reader.fieldnames or ())
    if missing:
        raise InputError(f"{path}: manifest lacks columns {', '.join(sorted(missing))}")
    rows = []
    for line in reader:
        try:
            rows.append(ManifestRow(
                file=line["file"],
                hole_ratio=float(line["hole_ratio"]),
                band=line["band"],
                border=line["border"].strip().lower() in ("true", "1", "yes", "border"),
                seed=int(line["seed"]) if line["seed"] else 0,
                hole_pixels=int(line.get("hole_pixels") or -1),
                source=line.get("source") or "",
                path=path.parent / line["file"],
            ))
        except (TypeError, ValueError):
            raise InputError(f"{path}: line {reader.line_num} is malformed") from None
    return rows
