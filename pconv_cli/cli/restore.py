"""``pconv restore IN OUT``: restore a folder of damaged images, never losing a file."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from ..inference import load_inpainter
from ..restore import (
    FileResult,
    RestoreOptions,
    RestoreReport,
    parse_shard,
    rank_device,
    restore,
    shard_for_rank,
)
from ..restore_io import DEFAULT_MAX_PIXELS
from .app import app
from .common import console, err_console, handle_errors

_MODEL, _MASKS, _FILES, _LARGE, _SCALE = "Model", "Masks", "Files", "Large images", "Scale"
_SHOWN_FAILURES = 20


class MaskFrom(str, Enum):
    masks = "masks"
    alpha = "alpha"


class Blend(str, Enum):
    poisson = "poisson"
    none = "none"


class OutputFormat(str, Enum):
    keep = "keep"
    png = "png"
    jpg = "jpg"
    jpeg = "jpeg"
    tiff = "tiff"
    tif = "tif"
    webp = "webp"


class Strategy(str, Enum):
    crop = "crop"
    resize = "resize"
    original = "original"


class _Speed(ProgressColumn):
    def render(self, task) -> Text:  # noqa: ANN001 - rich's Task
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.2f} files/s" if speed else "– files/s")


@app.command("restore")
@handle_errors
def restore_command(
    input_path: Annotated[Path, typer.Argument(
        metavar="IN", help="Folder of damaged images (or one image).")],
    output: Annotated[Path, typer.Argument(
        metavar="OUT", help="Folder for the restored images (created; the tree is mirrored).")],
    model: Annotated[Path | None, typer.Option(
        "--model", help="pconv checkpoint (default: the bundled model).",
        rich_help_panel=_MODEL)] = None,
    onnx: Annotated[Path | None, typer.Option(
        "--onnx", help="ONNX model made by pconv export, run with ONNX Runtime.",
        rich_help_panel=_MODEL)] = None,
    device: Annotated[str, typer.Option(
        help="auto, cpu or cuda; cuda without a usable GPU is an error.",
        rich_help_panel=_MODEL)] = "auto",
    flips: Annotated[int, typer.Option(
        help="1, or 2, 4 or 8: average the model over that many mirrored (8: and transposed) "
             "copies of each input (better fills; that many model calls per input).",
        rich_help_panel=_MODEL)] = 1,
    blend: Annotated[Blend, typer.Option(
        help="poisson: make each fill continuous with the pixels around its hole (removes "
             "the visible step at the outline); none: the model's fill as is.",
        rich_help_panel=_MODEL)] = Blend.poisson,
    masks: Annotated[Path | None, typer.Option(
        "--masks", help="Mask folder mirroring IN: sub/a.jpg pairs with sub/a.* (or sub/a.jpg.*).",
        rich_help_panel=_MASKS)] = None,
    mask: Annotated[Path | None, typer.Option(
        "--mask", help="One mask file for every image.", rich_help_panel=_MASKS)] = None,
    mask_from: Annotated[MaskFrom, typer.Option(
        "--mask-from", help="alpha: transparent pixels of the image are the holes.",
        rich_help_panel=_MASKS)] = MaskFrom.masks,
    invert_mask: Annotated[bool, typer.Option(
        "--invert-mask", help="Masks are black = hole (default white = hole).",
        rich_help_panel=_MASKS)] = False,
    resize_masks: Annotated[bool, typer.Option(
        "--resize-masks", help="Resize masks of another size (nearest) instead of failing.",
        rich_help_panel=_MASKS)] = False,
    grow_mask: Annotated[int, typer.Option(
        "--grow-mask", metavar="PX", help="Grow every hole by PX pixels, to cover the faint "
        "halo that damage leaves around it in a JPEG.", rich_help_panel=_MASKS)] = 0,
    recursive: Annotated[bool, typer.Option(
        "--recursive", "-r", help="Include subfolders; OUT mirrors the tree.",
        rich_help_panel=_FILES)] = False,
    fmt: Annotated[OutputFormat, typer.Option(
        "--format", help="Output format; keep = the input's own.",
        rich_help_panel=_FILES)] = OutputFormat.keep,
    quality: Annotated[int | None, typer.Option(
        min=1, max=100, help="JPEG / lossy WebP quality (default: a JPEG keeps its own).",
        rich_help_panel=_FILES)] = None,
    skip_existing: Annotated[bool, typer.Option(
        "--skip-existing/--overwrite", help="Skip images whose output exists (resume a run).",
        rich_help_panel=_FILES)] = True,
    max_pixels: Annotated[int, typer.Option(
        min=1, help="Refuse images with more pixels (decompression-bomb guard).",
        rich_help_panel=_FILES)] = DEFAULT_MAX_PIXELS,
    concat: Annotated[bool, typer.Option(
        "--concat", help="Also write input | mask | result previews to OUT/_previews.",
        rich_help_panel=_FILES)] = False,
    hd_strategy: Annotated[Strategy, typer.Option(
        help="For images longer than --hd-trigger: crop around each hole, resize, or "
             "original (whole image).", rich_help_panel=_LARGE)] = Strategy.crop,
    hd_trigger: Annotated[int, typer.Option(
        min=1, help="Longest side (px) above which --hd-strategy applies.",
        rich_help_panel=_LARGE)] = 1024,
    hd_margin: Annotated[int, typer.Option(
        min=0, help="Context (px) around each hole region for crop.",
        rich_help_panel=_LARGE)] = 128,
    hd_size: Annotated[int, typer.Option(
        min=1, help="Longest side (px) the model sees with resize and for large crops; "
                    "memory grows with its square.", rich_help_panel=_LARGE)] = 768,
    batch_size: Annotated[int, typer.Option(
        min=1, help="Same-size inputs per model call (at most --hd-size² pixels in all).",
        rich_help_panel=_SCALE)] = 4,
    workers: Annotated[int, typer.Option(
        min=1, help="Threads decoding and encoding images.", rich_help_panel=_SCALE)] = 4,
    shard: Annotated[str | None, typer.Option(
        help="K/N: process the K-th of N shares (by sorted path); under torchrun each rank "
             "takes its share automatically.", rich_help_panel=_SCALE)] = None,
) -> None:
    """Restore every image in IN into OUT; bad files are skipped, listed and exit status 1."""
    options = RestoreOptions(
        masks=masks, mask=mask, mask_from=mask_from.value, invert_mask=invert_mask,
        resize_masks=resize_masks, grow_mask=grow_mask, recursive=recursive, format=fmt.value,
        quality=quality,
        hd_strategy=hd_strategy.value, hd_trigger=hd_trigger, hd_margin=hd_margin,
        hd_size=hd_size, batch_size=batch_size, workers=workers, skip_existing=skip_existing,
        max_pixels=max_pixels, concat=concat,
        shard=shard_for_rank(parse_shard(shard) if shard else None),
    )
    options.validate()
    inpainter = load_inpainter(model=model, onnx=onnx, device=rank_device(device),
                               flips=flips, blend=blend.value)
    where = f" · shard {options.shard[0]}/{options.shard[1]}" if options.shard else ""
    console.print(f"[bold]pconv restore[/] {escape(str(input_path))} → {escape(str(output))} "
                  f"with {escape(inpainter.name)} ({inpainter.backend}){where}", highlight=False)

    progress = Progress(
        TextColumn("[bold]restore"), BarColumn(), MofNCompleteColumn(), _Speed(),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console,
        transient=False,
    )
    task = progress.add_task("restore", total=None)

    def on_result(result: FileResult) -> None:
        progress.advance(task)
        if result.status == "failed":
            progress.console.print(f"[red]✗[/] {escape(result.relative)}: {escape(result.reason)}",
                                   highlight=False, soft_wrap=True)

    with progress:
        report = restore(input_path, output, inpainter, options,
                         on_start=lambda total: progress.update(task, total=total),
                         on_result=on_result)
    _summary(report)
    if report.interrupted:
        raise typer.Exit(130)
    if report.failed:
        raise typer.Exit(1)


def _summary(report: RestoreReport) -> None:
    table = Table(title="restore summary", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    rows = [("restored", report.count("restored")),
            ("unchanged (no holes, copied)", report.count("unchanged")),
            ("skipped (output exists)", report.count("skipped")),
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
    failed = report.failed
    if failed:
        for result in failed[:_SHOWN_FAILURES]:
            err_console.print(f"[red]✗[/] {escape(result.relative)}: {escape(result.reason)}",
                              highlight=False, soft_wrap=True)
        if len(failed) > _SHOWN_FAILURES:
            err_console.print(f"  … and {len(failed) - _SHOWN_FAILURES} more", highlight=False)
    if failed and report.failures_csv is not None:  # the file is written either way
        console.print(f"failures listed in {escape(str(report.failures_csv))}", highlight=False)
    if report.interrupted:
        err_console.print("[yellow]interrupted[/]: rerun the same command to resume "
                          "(finished outputs are skipped)")
