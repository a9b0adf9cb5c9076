"""The report folder: what :mod:`.render` returns, written atomically (a reader never sees a
half-written report)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from ..errors import InputError
from ..fileio import atomic_path, atomic_write_bytes, atomic_write_text
from . import render

if TYPE_CHECKING:  # the report hands itself to these functions: no import at run time
    from .report import Report


def write_json(report: Report, path: str | os.PathLike) -> Path:
    atomic_write_text(path, render.json_text(report))
    return Path(path)


def write_all(report: Report, out_dir: str | os.PathLike) -> tuple[list[Path], list[str]]:
    """report.json, .csv, .png (when matplotlib is there), the sample grids under samples/ and
    report.md; the files written, and the notices of writing them (a plot left out), which the
    Markdown lists after the report's own."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"{out_dir}: cannot create the report folder ({exc.strerror or exc})"
        ) from None
    # The plot first, so that the Markdown can say whether it was left out: nothing depends on
    # the order the files are written in.
    plot = render.plot_png(report)
    notices = [render.PLOT_SKIPPED] if plot is None else []
    written = [write_json(report, out_dir / "report.json")]
    atomic_write_text(out_dir / "report.csv", render.csv_text(report))
    written.append(out_dir / "report.csv")
    if plot is not None:
        atomic_write_bytes(out_dir / "report.png", plot)
        written.append(out_dir / "report.png")
    for name, grid in render.sample_grids(report).items():
        path = out_dir / "samples" / name
        with atomic_path(path) as tmp:
            Image.fromarray(grid).save(tmp, format="PNG")
        written.append(path)
    # Report.write_all keeps these notices in the report: written again, it lists them once.
    shown = [*report.notices, *(n for n in notices if n not in report.notices)]
    markdown = render.markdown_text(report, shown)
    atomic_write_text(out_dir / "report.md", markdown)
    written.append(out_dir / "report.md")
    return written, notices
