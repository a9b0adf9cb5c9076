"""``pconv gen-masks``: seeded irregular-mask sets (training sets and banded test sets)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from ..errors import ConfigError
from ..masks import (
    MASK_SHAPES,
    MaskParams,
    MaskSetSpec,
    parse_bands,
    parse_mask_param,
    parse_size,
    preview_sheet,
    write_mask_set,
)
from .app import app
from .common import choices, console, examples, handle_errors

_SET = "Mask set"
_GEN = "Generator (lengths are fractions of the shorter side; ranges are LOW,HIGH)"
_RUN = "Run"

_DEFAULTS = MaskParams()

MaskShape = choices("MaskShape", MASK_SHAPES)


def _default(name: str) -> str:
    lo, hi = getattr(_DEFAULTS, name)
    return f"{lo:g},{hi:g}"


def _range_option(name: str, help_text: str) -> object:
    return typer.Option(
        f"--{name.replace('_', '-')}", metavar="LOW,HIGH", rich_help_panel=_GEN,
        help=f"{help_text} [dim]\\[default: {_default(name)}][/]",
    )


class _RateColumn(ProgressColumn):
    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- masks/s" if speed is None else f"{speed:.0f} masks/s", style="cyan")


def _params(ranges: dict[str, str | None]) -> MaskParams:
    kwargs = {}
    for name, text in ranges.items():
        if text is not None:
            try:
                kwargs[name] = parse_mask_param(name, text)
            except ConfigError as exc:
                raise ConfigError(f"--{name.replace('_', '-')}: {exc}") from None
    return MaskParams(**kwargs)


def _borders(border: str, no_border: bool) -> tuple[bool, ...]:
    if no_border and border != "yes":
        raise ConfigError(f"--no-border and --border {border} contradict; give one of them")
    return {"yes": (True,), "no": (False,), "both": (True, False)}["no" if no_border else border]


@app.command("gen-masks", epilog=examples(
    ("pconv gen-masks test-masks --size 512 --per-band 1000 --border both --seed 1",
     "a test set: 1,000 masks in each of the paper's six hole-ratio bands, with and without "
     "holes at the border"),
    ("pconv gen-masks train-masks --size 256 --count 12000 --seed 7", "a training set"),
    ("pconv gen-masks thin-masks --shape thin --size 256 --count 6000",
     "hairs, specks, scratches and cracks 1–4 px wide"),
    ("pconv gen-masks --preview sheet.png --size 256", "look before making a set"),
))
@handle_errors
def gen_masks(
    out_dir: Annotated[Path | None, typer.Argument(
        help="Folder for the masks, masks.csv and masks.json (optional with --preview).",
        metavar="OUT_DIR", show_default=False)] = None,
    size: Annotated[str, typer.Option(
        help="Mask size: N (square) or WxH.", rich_help_panel=_SET)] = "512",
    count: Annotated[int | None, typer.Option(
        help="Make N masks with the generator's own ratio distribution (training sets).",
        rich_help_panel=_SET, show_default=False)] = None,
    per_band: Annotated[int | None, typer.Option(
        help="Make exactly N masks in each band of --bands (test sets).",
        rich_help_panel=_SET, show_default=False)] = None,
    bands: Annotated[str, typer.Option(
        help="Hole-ratio bands (a,b]: 'paper' = 0.01,0.1,...,0.6, or edges such as "
             "0.05,0.15,0.3.", rich_help_panel=_SET)] = "paper",
    border: Annotated[Literal["yes", "no", "both"], typer.Option(
        help="yes: holes may touch the image edge; no: as --no-border; both: border/ and "
             "no-border/ sets, as the paper's test sets.", rich_help_panel=_SET)] = "yes",
    no_border: Annotated[bool, typer.Option(
        "--no-border", help="Keep --margin pixels at every edge free of holes.",
        rich_help_panel=_SET)] = False,
    margin: Annotated[int | None, typer.Option(
        help="Hole-free margin of no-border masks, in pixels \\[default: 4% of the shorter side].",
        rich_help_panel=_SET, show_default=False)] = None,
    seed: Annotated[int, typer.Option(
        help="Seed: the same seed and options give byte-identical files.",
        rich_help_panel=_SET)] = 0,
    source: Annotated[Path | None, typer.Option(
        "--from", help="Transform existing mask files (white = hole) instead of drawing "
                       "strokes; without --count/--per-band, one output per file.",
        rich_help_panel=_SET, show_default=False)] = None,
    shape: Annotated[MaskShape, typer.Option(
        help="strokes: the paper's irregular holes; thin: hairs, specks, scratches and cracks "
             "1–4 px wide, as real damage is (with --count).", rich_help_panel=_SET)]
        = MaskShape.strokes,
    artefacts: Annotated[Path | None, typer.Option(
        "--artefacts", help="With --shape thin: also real film artefacts from this folder "
                            "(laid out as the damage-artefacts set; see docs/damage.md).",
        rich_help_panel=_SET, show_default=False)] = None,
    invert: Annotated[bool, typer.Option(
        "--invert", help="--from files are black = hole (e.g. the NVIDIA irregular training "
                         "masks).", rich_help_panel=_SET)] = False,
    strokes: Annotated[str | None, _range_option("strokes", "Strokes per mask.")] = None,
    vertices: Annotated[str | None, _range_option("vertices", "Vertices per stroke.")] = None,
    segment_length: Annotated[str | None, _range_option(
        "segment_length", "Length of a stroke segment.")] = None,
    stroke_width: Annotated[str | None, _range_option(
        "stroke_width", "Width of strokes and arcs.")] = None,
    circles: Annotated[str | None, _range_option("circles", "Filled circles per mask.")] = None,
    circle_radius: Annotated[str | None, _range_option(
        "circle_radius", "Radius of circles.")] = None,
    arcs: Annotated[str | None, _range_option("arcs", "Ellipse arcs per mask.")] = None,
    arc_radius: Annotated[str | None, _range_option(
        "arc_radius", "Semi-axes of the arcs' ellipses.")] = None,
    dilation: Annotated[str | None, _range_option(
        "dilation", "Radius of the random dilation (banding steers it inside this range).")]
        = None,
    rotation: Annotated[str | None, _range_option(
        "rotation", "Rotation in degrees; write negative ranges as --rotation=-30,30.")] = None,
    crop: Annotated[str | None, _range_option(
        "crop", "Crop window side / image side, rescaled back to the size.")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Worker processes \\[default: all cores]; results do not depend on it.",
        rich_help_panel=_RUN, show_default=False)] = None,
    max_attempts: Annotated[int, typer.Option(
        help="Attempts (new shapes) per mask before a band counts as unreachable.",
        rich_help_panel=_RUN)] = 100,
    preview: Annotated[Path | None, typer.Option(
        help="Write a contact sheet of a sample with each mask's ratio, then stop.",
        rich_help_panel=_RUN, show_default=False)] = None,
    preview_count: Annotated[int, typer.Option(
        help="Masks on the --preview sheet.", rich_help_panel=_RUN)] = 24,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace the set in OUT_DIR instead of resuming it.",
        rich_help_panel=_RUN)] = False,
) -> None:
    """Write irregular hole masks as PNG (white = hole) with a manifest, masks.csv.

    Re-running into the same folder with the same options keeps finished files (resume).
    """
    params = _params({
        "strokes": strokes, "vertices": vertices, "segment_length": segment_length,
        "stroke_width": stroke_width, "circles": circles, "circle_radius": circle_radius,
        "arcs": arcs, "arc_radius": arc_radius, "dilation": dilation, "rotation": rotation,
        "crop": crop,
    })
    spec = MaskSetSpec(
        size=parse_size(size), params=params, seed=seed, count=count, per_band=per_band,
        edges=parse_bands(bands), borders=_borders(border, no_border), margin=margin,
        source=source, invert=invert, max_attempts=max_attempts, shape=shape.value,
        artefacts=artefacts,
    )
    if preview is not None:
        shown = preview_sheet(preview, spec, count=preview_count)
        console.print(f"preview of {len(shown)} masks written to {preview}", highlight=False)
        return
    if out_dir is None:
        raise ConfigError("give OUT_DIR, the folder for the masks (or --preview FILE)")

    with Progress(BarColumn(), MofNCompleteColumn(), _RateColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console, transient=True) as progress:
        task = progress.add_task("masks", total=None)
        summary = write_mask_set(
            out_dir, spec, workers=workers or os.cpu_count() or 1, overwrite=overwrite,
            on_progress=lambda done, total: progress.update(task, completed=done, total=total),
        )

    table = Table(title=f"{summary.total} masks in {summary.out_dir}", title_justify="left")
    for column in ("set", "band", "masks", "mean ratio", "min", "max", "draws/mask"):
        table.add_column(column, justify="left" if column in ("set", "band") else "right")
    for b in summary.bands:
        table.add_row("border" if b.border else "no-border", b.band, str(b.count),
                      f"{b.mean_ratio:.3f}", f"{b.min_ratio:.3f}", f"{b.max_ratio:.3f}",
                      f"{b.draws_per_mask:.1f}" if b.draws_per_mask else "-")
    console.print(table)
    rate = f", {summary.generated / summary.seconds:.0f} masks/s" if summary.generated else ""
    console.print(f"{summary.generated} written, {summary.skipped} kept from an earlier run "
                  f"({summary.seconds:.1f} s{rate}); manifest {summary.manifest}",
                  highlight=False, soft_wrap=True)
