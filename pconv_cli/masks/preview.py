"""The contact sheet of ``gen-masks --preview``: the first masks of each band, with ratios.

The masks on the sheet are the ones the set would hold (same plan, same seeds), drawn without
writing the set.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os

from PIL import Image, ImageDraw

from ..errors import InputError
from ..fileio import atomic_write_bytes
from ..imaging import valid_to_hole_file
from .spec import MaskSetSpec, Task, check_spec, plan, sample_for, source_files

_LABEL_H = 14  # pixels under each thumbnail for its ratio
_PAD = 4  # pixels between thumbnails


def preview_sheet(
    path: str | os.PathLike, spec: MaskSetSpec, *, count: int = 24, thumb: int = 128
) -> list[tuple[str, float]]:
    """Write a contact sheet of the first masks of each band/set, labelled with their ratios.

    Nothing else is written. Returns (file name the mask would get, ratio) per thumbnail.
    Without ``count`` or ``per_band`` in the spec (the sheet is often the first look, before
    deciding on a set), it shows the banded set: ``count`` masks spread over the bands.
    """
    if spec.count is None and spec.per_band is None and spec.source is None:
        groups = (len(spec.edges) - 1) * len(spec.borders)
        spec = dataclasses.replace(spec, per_band=max(1, math.ceil(count / max(1, groups))))
    check_spec(spec)
    sources = source_files(spec)
    picked, per_group = _pick(plan(spec, len(sources)), count)

    h, w = spec.size
    tw, th = (thumb, max(1, round(thumb * h / w))) if w >= h else (max(1, round(thumb * w / h)),
                                                                   thumb)
    cols = min(len(picked), per_group if spec.per_band is not None else 8) or 1
    cols = max(cols, min(len(picked), 6))
    rows = math.ceil(len(picked) / cols)
    sheet = Image.new("L", (cols * (tw + _PAD) + _PAD, rows * (th + _LABEL_H + _PAD) + _PAD), 96)
    draw = ImageDraw.Draw(sheet)
    out = []
    for k, task in enumerate(picked):
        sample = sample_for(task, spec, sources)
        tile = Image.fromarray(valid_to_hole_file(sample.valid)).resize((tw, th), Image.BOX)
        x = _PAD + (k % cols) * (tw + _PAD)
        y = _PAD + (k // cols) * (th + _LABEL_H + _PAD)
        sheet.paste(tile, (x, y))
        border = "" if task.border else " nb"
        draw.text((x + 2, y + th + 1), f"{sample.hole_ratio:.3f}{border}", fill=255)
        out.append((task.file, sample.hole_ratio))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError as exc:
        raise InputError(f"{path}: cannot write the preview ({exc.strerror or exc})") from None
    return out


def _pick(tasks: list[Task], count: int) -> tuple[list[Task], int]:
    """The first tasks of each (border, band) group, about ``count`` in all (at least one per
    group), and how many each group gave."""
    groups: dict[tuple[bool, int | None], list[Task]] = {}
    for task in tasks:
        groups.setdefault((task.border, task.band), []).append(task)
    per_group = max(1, math.ceil(count / len(groups)))
    picked = [t for group in groups.values() for t in group[:per_group]][:max(count, len(groups))]
    return picked, per_group
