"""``pconv detect IN OUT``: a damage mask (white = hole) for every image, ready for restore.

torch and the detector are imported inside the command, after the run is planned: ``--help``
is fast, and a wrong IN or OUT is reported before any model loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..detect import DEFAULT_THRESHOLD, PRECISIONS, DetectOptions
from .app import app
from .common import choices, console, err_console, examples, handle_errors
from .options import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_TILE,
    device_option,
    images_in_argument,
    max_pixels_option,
    min_area_option,
    precision_option,
    recursive_option,
    threshold_option,
    tile_option,
)
from .restore import file_progress

if TYPE_CHECKING:
    from ..detect import DetectReport

Precision = choices("Precision", PRECISIONS)

_MODEL, _DETECTION, _FILES = "Model", "Detection", "Files"
_SHOWN_FAILURES = 20


@app.command("detect", epilog=examples(
    ("pconv detect scans/ scan-masks/ --recursive --preview",
     "a mask per image, and magenta overlays in scan-masks/_previews to check them"),
    ("pconv detect scans/ scan-masks/ --threshold 0.3 --grow 2 --min-area 6",
     "more sensitive, holes grown by 2 px, specks under 6 px dropped"),
    ("pconv detect scans/ scan-masks/ --precision fp32",
     "full fp32 arithmetic, the masks an ONNX export gives (auto: bf16 where native)"),
    ("pconv detect scans/ scan-masks/ --onnx detector.onnx --tile 512",
     "an exported detector through ONNX Runtime, in smaller tiles"),
    ("pconv restore scans/ restored/ --masks scan-masks/ --recursive",
     "then restore with the (checked, edited) masks"),
))
@handle_errors
def detect_command(
    input_path: Annotated[Path, images_in_argument()],
    output: Annotated[Path, typer.Argument(
        metavar="OUT", help="Folder for the masks (created; the tree is mirrored).")],
    model: Annotated[Path | None, typer.Option(
        "--model", "--detector", help="Detector checkpoint (default: the bundled detector); "
        "--detector, as restore and evaluate name it, is the same option.",
        rich_help_panel=_MODEL)] = None,
    onnx: Annotated[Path | None, typer.Option(
        "--onnx", help="Detector exported by pconv export, run with ONNX Runtime.",
        rich_help_panel=_MODEL)] = None,
    device: Annotated[str, device_option(_MODEL)] = "auto",
    threshold: Annotated[float, threshold_option(_DETECTION)] = DEFAULT_THRESHOLD,
    grow: Annotated[int, typer.Option(
        "--grow", metavar="PX", min=0, help="Grow every detected region by PX pixels (takes "
        "in the halo around damage).", rich_help_panel=_DETECTION)] = 0,
    min_area: Annotated[int, min_area_option(_DETECTION)] = 0,
    tile: Annotated[int, tile_option(_DETECTION)] = DEFAULT_TILE,
    precision: Annotated[Precision, precision_option(_DETECTION)] = Precision(
        DetectOptions.precision),
    preview: Annotated[bool, typer.Option(
        "--preview", help="Also write each image with its damage tinted magenta to "
        "OUT/_previews.", rich_help_panel=_FILES)] = False,
    recursive: Annotated[bool, recursive_option(_FILES)] = False,
    skip_existing: Annotated[bool, typer.Option(
        "--skip-existing/--overwrite", help="Skip images whose mask exists (resume a run); "
        "--overwrite redoes them, also when OUT was made with other settings.",
        rich_help_panel=_FILES)] = True,
    max_pixels: Annotated[int, max_pixels_option(_FILES)] = DEFAULT_MAX_PIXELS,
) -> None:
    """Write a damage mask (white = hole) for every image in IN to OUT, for restore --masks."""
    from ..detect import DetectRun

    options = DetectOptions(threshold=threshold, grow=grow, min_area=min_area, tile=tile,
                            precision=precision.value, preview=preview, recursive=recursive,
                            skip_existing=skip_existing, max_pixels=max_pixels)
    run = DetectRun(input_path, output, options)  # IN, OUT and files, before the model

    from ..detect import load_damage_detector

    detector = load_damage_detector(model, onnx, device, option="--model CKPT",
                                    precision=options.precision)
    console.print(f"[bold]pconv detect[/] {escape(str(input_path))} → {escape(str(output))} "
                  f"with {escape(detector.name)} ({detector.backend}), threshold "
                  f"{threshold:g}, grow {grow}, min-area {min_area}", highlight=False)

    progress, on_start, on_result = file_progress("detect")
    with progress:
        report = run.execute(detector, on_start=on_start, on_result=on_result)
    _summary(report)
    if report.interrupted:
        raise typer.Exit(130)
    if report.failed:
        raise typer.Exit(1)


def _summary(report: DetectReport) -> None:
    table = Table(title="detect summary", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    rows = [("masks written", report.count("detected")),
            ("skipped (mask exists)", report.count("skipped")),
            ("failed", report.count("failed"))]
    if report.interrupted:
        rows.append(("not reached (interrupted)", report.remaining))
    if report.ignored:
        rows.append(("other files ignored", report.ignored))
    for name, value in rows:
        style = "red" if name == "failed" and value else ""
        table.add_row(name, f"[{style}]{value}[/]" if style else str(value))
    table.add_row("time", f"{report.seconds:.1f} s ({report.files_per_second:.2f} files/s)")
    table.add_row("backend", report.backend)
    console.print(table)
    for note in report.notes:
        console.print(f"  · {note}", highlight=False)
    if report.csv_path is not None:
        console.print(f"damaged fraction and regions per image in "
                      f"{escape(str(report.csv_path))}", highlight=False)
    failed = report.failed
    for result in failed[:_SHOWN_FAILURES]:
        err_console.print(f"[red]✗[/] {escape(result.relative)}: {escape(result.reason)}",
                          highlight=False, soft_wrap=True)
    if len(failed) > _SHOWN_FAILURES:
        err_console.print(f"  … and {len(failed) - _SHOWN_FAILURES} more", highlight=False)
    if failed and report.failures_csv is not None:
        console.print(f"failures listed in {escape(str(report.failures_csv))}", highlight=False)
    if report.interrupted:
        err_console.print("[yellow]interrupted[/]: rerun the same command to resume "
                          "(finished masks are skipped)")
