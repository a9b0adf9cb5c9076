"""``pconv restore IN OUT``: restore a folder of damaged images, never losing a file.

torch and the model are imported inside the command, after the run is planned: ``--help`` is
fast, and a wrong IN, OUT or mask folder is reported before any model loads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from ..detect import PRECISIONS
from ..imaging import FORMAT_CHOICES
from ..restore.options import MASK_SOURCES, STRATEGIES, RestoreOptions
from ..routing import DEFAULT_THIN_WIDTH, RESTORE_METHODS
from ..seams import BLEND_CHOICES, DEFAULT_BLEND
from .app import app
from .common import choices, console, err_console, examples, handle_errors
from .options import (
    device_option,
    images_in_argument,
    max_pixels_option,
    min_area_option,
    precision_option,
    recursive_option,
    threshold_option,
    tile_option,
)

if TYPE_CHECKING:
    from ..restore import FileResult, RestoreReport

_MODEL, _MASKS, _FILES, _LARGE, _SCALE = "Model", "Masks", "Files", "Large images", "Scale"
_DETECTION = "Detection (without mask files)"
_SHOWN_FAILURES = 20


# The defaults shown and used are RestoreOptions' own (its fields with plain defaults are
# class attributes).
_DEFAULTS = RestoreOptions
MaskFrom = choices("MaskFrom", MASK_SOURCES)
Blend = choices("Blend", BLEND_CHOICES)
OutputFormat = choices("OutputFormat", FORMAT_CHOICES)
Strategy = choices("Strategy", STRATEGIES)
Precision = choices("Precision", PRECISIONS)


class FileRate:
    """Files/s and time left of a restore run, counting only the files it processes.

    rich's own speed is the mean over its samples from the first advance on: files refused
    while planning and outputs that exist arrive all at once, and two results written together
    make a span of microseconds, so it showed 37,000 files/s where the run did 0.46. Here the
    rate is the files processed over the time since processing began, as in the summary.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.started: float | None = None
        self.total = 0
        self.instant = 0  # results that take no time: planning failures, existing outputs
        self.completed = 0

    def start(self, total: int, to_process: int) -> None:
        self.started = self._clock()
        self.total, self.instant = total, total - to_process

    def advance(self) -> None:
        self.completed += 1

    @property
    def processed(self) -> int:
        return max(0, self.completed - self.instant)  # the instant results come first

    def files_per_second(self) -> float | None:
        if self.started is None or not self.processed:
            return None
        elapsed = self._clock() - self.started
        return self.processed / elapsed if elapsed > 0 else None

    def seconds_left(self) -> float | None:
        speed = self.files_per_second()
        return None if speed is None else (self.total - self.completed) / speed


class SpeedColumn(ProgressColumn):
    def __init__(self, rate: FileRate) -> None:
        super().__init__()
        self.rate = rate

    def render(self, task) -> Text:  # noqa: ANN001 - rich's Task
        speed = self.rate.files_per_second()
        return Text(f"{speed:.2f} files/s" if speed else "– files/s")


class EtaColumn(ProgressColumn):
    def __init__(self, rate: FileRate) -> None:
        super().__init__()
        self.rate = rate

    def render(self, task) -> Text:  # noqa: ANN001 - rich's Task
        left = self.rate.seconds_left()
        if left is None:
            return Text("ETA -:--:--")
        minutes, seconds = divmod(round(left), 60)
        hours, minutes = divmod(minutes, 60)
        return Text(f"ETA {hours}:{minutes:02d}:{seconds:02d}")


@app.command("restore", epilog=examples(
    ("pconv restore scans/ restored/ --recursive",
     "no masks: the damage detector finds them (kept in restored/_masks)"),
    ("pconv restore scans/ restored/ --detector detector.pt --threshold 0.3 --grow 2",
     "a detector of your own, more sensitive, holes grown by 2 px"),
    ("pconv restore scans/ restored/ --masks scan-masks/ --recursive",
     "masks (white = hole) named as the images, the tree mirrored"),
    ("pconv restore scans/ restored/ --masks painted/ --mask-color '#ff00ff'",
     "painted copies of the images: the magenta pixels are the holes"),
    ("pconv restore scans/ restored/ --mask-from alpha",
     "the transparent pixels of each image are the holes"),
    ("pconv restore scans/ restored/ --masks scan-masks/ --thin-width 0",
     "every hole filled by the model, thin ones too (as --method pconv)"),
    ("pconv restore scans/ restored/ --masks scan-masks/ --method fsr",
     "a classical method only: Frequency Selective Reconstruction (OpenCV contrib)"),
    ("pconv restore scans/ restored/ --masks scan-masks/ --flips 8 --format png",
     "the 8-copy ensemble (8 model calls per image), written as PNG"),
    ("pconv restore scans/ restored/ --masks scan-masks/ --onnx a.onnx --device cuda",
     "an exported model through ONNX Runtime"),
))
@handle_errors
def restore_command(
    input_path: Annotated[Path, images_in_argument()],
    output: Annotated[Path, typer.Argument(
        metavar="OUT", help="Folder for the restored images (created; the tree is mirrored).")],
    model: Annotated[Path | None, typer.Option(
        "--model", help="pconv checkpoint (default: the bundled model).",
        rich_help_panel=_MODEL)] = None,
    onnx: Annotated[Path | None, typer.Option(
        "--onnx", help="ONNX model made by pconv export, run with ONNX Runtime.",
        rich_help_panel=_MODEL)] = None,
    device: Annotated[str, device_option(_MODEL)] = "auto",
    method: Annotated[str, typer.Option(
        "--method", metavar="|".join(RESTORE_METHODS),
        help="auto: hole regions up to --thin-width px wide are filled by a classical method "
             "(fsr with OpenCV contrib installed, else biharmonic; auto:NAME chooses it), "
             "wider ones by the model; pconv: the model everywhere; ns, telea, biharmonic, "
             "fsr: that classical method everywhere (ns, telea and fsr need pip install "
             "'pconv[classical]').", rich_help_panel=_MODEL)] = "auto",
    thin_width: Annotated[float, typer.Option(
        "--thin-width", metavar="PX", min=0,
        help="With --method auto: the widest hole region (2·r − 1 px, r its largest distance "
             "to a known pixel) that the classical method fills; 0 sends every hole to the "
             "model.", rich_help_panel=_MODEL)] = DEFAULT_THIN_WIDTH,
    flips: Annotated[int, typer.Option(
        help="1, or 2, 4 or 8: average the model over that many mirrored (8: and transposed) "
             "copies of each input (better fills; that many model calls per input).",
        rich_help_panel=_MODEL)] = 1,
    blend: Annotated[Blend, typer.Option(
        help="poisson: make each fill continuous with the pixels around its hole (removes "
             "the visible step at the outline); none: the model's fill as is.",
        rich_help_panel=_MODEL)] = Blend(DEFAULT_BLEND),
    masks: Annotated[Path | None, typer.Option(
        "--masks", help="Mask folder mirroring IN: sub/a.jpg pairs with sub/a.* (or sub/a.jpg.*).",
        rich_help_panel=_MASKS)] = _DEFAULTS.masks,
    mask: Annotated[Path | None, typer.Option(
        "--mask", help="One mask file for every image.", rich_help_panel=_MASKS)] = _DEFAULTS.mask,
    mask_from: Annotated[MaskFrom, typer.Option(
        "--mask-from", help="alpha: transparent pixels of the image are the holes; detect: the "
        "damage detector finds them (the default when no mask is given).",
        rich_help_panel=_MASKS)] = MaskFrom(_DEFAULTS.mask_from),
    mask_color: Annotated[str | None, typer.Option(
        "--mask-color", metavar="COLOR", help="The --masks files are painted copies of the "
        "images: pixels of this colour (#rrggbb or a name) are the holes.",
        rich_help_panel=_MASKS)] = _DEFAULTS.mask_color,
    color_tolerance: Annotated[float, typer.Option(
        "--color-tolerance", min=0, max=442, help="How far (8-bit RGB distance) a pixel may be "
        "from --mask-color and still count as painted (JPEG drifts by 10-30).",
        rich_help_panel=_MASKS)] = _DEFAULTS.color_tolerance,
    invert_mask: Annotated[bool, typer.Option(
        "--invert-mask", help="Masks are black = hole (default white = hole).",
        rich_help_panel=_MASKS)] = _DEFAULTS.invert_mask,
    resize_masks: Annotated[bool, typer.Option(
        "--resize-masks", help="Resize masks of another size (nearest) instead of failing.",
        rich_help_panel=_MASKS)] = _DEFAULTS.resize_masks,
    grow_mask: Annotated[int, typer.Option(
        "--grow-mask", metavar="PX", help="Grow every hole by PX pixels, to cover the faint "
        "halo that damage leaves around it in a JPEG.", rich_help_panel=_MASKS)] = _DEFAULTS.grow_mask,
    detector: Annotated[Path | None, typer.Option(
        "--detector", metavar="CKPT", help="Detector checkpoint (or .onnx) that finds the masks "
        "(default: the bundled detector).", rich_help_panel=_DETECTION)] = _DEFAULTS.detector,
    threshold: Annotated[float, threshold_option(_DETECTION)] = _DEFAULTS.threshold,
    grow: Annotated[int, typer.Option(
        "--grow", metavar="PX", min=0, help="Grow detected regions by PX pixels (part of the "
        "kept mask; --grow-mask applies after it).", rich_help_panel=_DETECTION)] = _DEFAULTS.grow,
    min_area: Annotated[int, min_area_option(_DETECTION)] = _DEFAULTS.min_area,
    tile: Annotated[int, tile_option(_DETECTION)] = _DEFAULTS.tile,
    precision: Annotated[Precision, precision_option(_DETECTION)] = Precision(
        _DEFAULTS.precision),
    recursive: Annotated[bool, recursive_option(_FILES)] = _DEFAULTS.recursive,
    fmt: Annotated[OutputFormat, typer.Option(
        "--format", help="Output format; keep = the input's own.",
        rich_help_panel=_FILES)] = OutputFormat("keep"),
    quality: Annotated[int | None, typer.Option(
        min=1, max=100, help="JPEG / lossy WebP quality (default: a JPEG keeps its own).",
        rich_help_panel=_FILES)] = _DEFAULTS.quality,
    skip_existing: Annotated[bool, typer.Option(
        "--skip-existing/--overwrite", help="Skip images whose output exists (resume a run); "
        "--overwrite redoes them, also when OUT was restored with other settings.",
        rich_help_panel=_FILES)] = _DEFAULTS.skip_existing,
    max_pixels: Annotated[int, max_pixels_option(_FILES)] = _DEFAULTS.max_pixels,
    concat: Annotated[bool, typer.Option(
        "--concat", help="Also write input | mask | result previews to OUT/_previews.",
        rich_help_panel=_FILES)] = _DEFAULTS.concat,
    hd_strategy: Annotated[Strategy, typer.Option(
        help="For images longer than --hd-trigger: crop around each hole at native "
             "resolution (tiled above --hd-size), resize the image to --hd-size, or original "
             "(whole image, one pass).", rich_help_panel=_LARGE)] = Strategy(_DEFAULTS.hd_strategy),
    hd_trigger: Annotated[int, typer.Option(
        min=1, help="Longest side (px) above which --hd-strategy applies.",
        rich_help_panel=_LARGE)] = _DEFAULTS.hd_trigger,
    hd_margin: Annotated[int, typer.Option(
        min=0, help="Context (px) around each hole region, and around each tile's part.",
        rich_help_panel=_LARGE)] = _DEFAULTS.hd_margin,
    hd_size: Annotated[int, typer.Option(
        min=1, help="Tile side (px) of large crops, and the longest side with resize; "
                    "memory grows with its square.", rich_help_panel=_LARGE)] = _DEFAULTS.hd_size,
    batch_size: Annotated[int, typer.Option(
        min=1, help="Same-size inputs per model call (at most --hd-size² pixels in all).",
        rich_help_panel=_SCALE)] = _DEFAULTS.batch_size,
    workers: Annotated[int, typer.Option(
        min=1, help="Threads decoding and encoding images.", rich_help_panel=_SCALE)] = _DEFAULTS.workers,
    shard: Annotated[str | None, typer.Option(
        help="K/N: process the K-th of N shares (by sorted path); under torchrun each rank "
             "takes its share automatically.", rich_help_panel=_SCALE)] = None,
) -> None:
    """Restore every image in IN into OUT; bad files are skipped, listed and exit status 1."""
    from ..restore import RestoreOptions, RestoreRun, file_digest, parse_shard, shard_for_rank
    from ..routing import MODEL, parse_method

    method_name = parse_method(method)[0]  # a wrong --method before anything is read
    options = RestoreOptions(
        masks=masks, mask=mask, mask_from=mask_from.value, invert_mask=invert_mask,
        resize_masks=resize_masks, grow_mask=grow_mask, recursive=recursive, format=fmt.value,
        quality=quality,
        hd_strategy=hd_strategy.value, hd_trigger=hd_trigger, hd_margin=hd_margin,
        hd_size=hd_size, batch_size=batch_size, workers=workers, skip_existing=skip_existing,
        max_pixels=max_pixels, concat=concat,
        shard=shard_for_rank(parse_shard(shard) if shard else None),
        detector=detector, threshold=threshold, grow=grow, min_area=min_area, tile=tile,
        precision=precision.value,
        mask_color=mask_color, color_tolerance=color_tolerance,
    )
    run = RestoreRun(input_path, output, options)  # IN, OUT, masks and files, before the model

    from ..inference import default_model_path
    from ..restore import DETECTED_MASKS_DIR, rank_device
    from ..routing import AUTO, load_method

    inpainter = load_method(method, model=model, onnx=onnx, device=rank_device(device),
                            flips=flips, blend=blend.value, thin_width=thin_width)
    with_model = method_name in (AUTO, MODEL)
    model_digest = file_digest(onnx or model or default_model_path()) if with_model else None
    finder = run.load_detector(rank_device(device))
    if finder is not None:
        why = "no masks given: " if run.detection_implied else ""
        which = "the bundled detector" if detector is None else escape(finder.name)
        console.print(f"{why}finding the damage with {which} ({finder.backend}, threshold "
                      f"{threshold:g}, grow {grow}, min-area {min_area}); the masks used are "
                      f"kept in {escape(str(output / DETECTED_MASKS_DIR))}", highlight=False,
                      soft_wrap=True)
    run.check_output(inpainter, model_digest, finder)
    where = f" · shard {options.shard[0]}/{options.shard[1]}" if options.shard else ""
    console.print(f"[bold]pconv restore[/] {escape(str(input_path))} → {escape(str(output))} "
                  f"with {escape(inpainter.name)} ({inpainter.backend}){where}", highlight=False)

    progress, on_start, on_result = file_progress("restore")
    with progress:
        report = run.execute(inpainter, model_digest=model_digest, detector=finder,
                             on_start=on_start, on_result=on_result)
    _summary(report)
    if report.interrupted:
        raise typer.Exit(130)
    if report.failed:
        raise typer.Exit(1)


def file_progress(label: str) -> tuple[Progress, Callable[[int, int], None],
                                       Callable[[FileResult], None]]:
    """A batch command's progress bar (files/s and ETA from the files it processes) and the
    two callbacks that drive it: a start with (files, files to process), and each result,
    which also prints a failed file's reason or a warning on a line of its own."""
    rate = FileRate()
    progress = Progress(
        TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), SpeedColumn(rate),
        TimeElapsedColumn(), EtaColumn(rate), console=console, transient=False,
    )
    task = progress.add_task(label, total=None)

    def on_start(total: int, to_process: int) -> None:
        rate.start(total, to_process)
        progress.update(task, total=total)

    def on_result(result: FileResult) -> None:
        rate.advance()
        progress.advance(task)
        if result.status == "failed":
            progress.console.print(f"[red]✗[/] {escape(result.relative)}: {escape(result.reason)}",
                                   highlight=False, soft_wrap=True)
        elif result.warning:
            progress.console.print(f"[yellow]![/] {escape(result.relative)}: "
                                   f"{escape(result.warning)}", highlight=False, soft_wrap=True)

    return progress, on_start, on_result


def _summary(report: RestoreReport) -> None:
    table = Table(title="restore summary", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    rows = [("restored", report.count("restored")),
            ("unchanged (no holes, copied)", report.count("unchanged")),
            ("skipped (output exists)", report.count("skipped")),
            ("failed", report.count("failed"))]
    warned = sum(bool(r.warning) for r in report.results)
    if warned:
        rows.append(("restored with a warning (listed above)", warned))
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
