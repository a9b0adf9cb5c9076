"""``pconv evaluate``: ℓ1, PSNR and SSIM (whole image and inside the holes) per hole-ratio band,
image kind and hole width, methods side by side; with ``--detector``, a damage detector per
damage kind on a detector evaluation set (:mod:`pconv_cli.detection_eval`)."""

from __future__ import annotations

import math
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ..detect import DEFAULT_THRESHOLD, PRECISIONS, DetectOptions
from ..devices import DEVICE_CHOICES
from ..errors import ConfigError
from ..routing import DEFAULT_THIN_WIDTH
from .app import app
from .common import choices, console, err_console, examples, handle_errors
from .options import min_area_option, precision_option, threshold_option

_WHAT = "What to score"
_DATA = "Pairs"
_OUT = "Output"
_RUN = "Run"
_DETECTOR = "Damage detector"
Precision = choices("Precision", PRECISIONS)


class _ProgressBar:
    """A progress bar with ETA on a terminal; silent otherwise (logs, pipes)."""

    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.tasks: dict[str, int] = {}

    def __enter__(self) -> _ProgressBar:
        if console.is_terminal:
            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                console=console, transient=True,
            )
            self.progress.start()
        return self

    def __call__(self, phase: str, done: int, total: int) -> None:
        if self.progress is None:
            return
        if phase not in self.tasks:
            label = "reading masks" if phase == "masks" else "scoring"
            self.tasks[phase] = self.progress.add_task(label, total=total)
        self.progress.update(self.tasks[phase], completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def _metric_table(report, metric: str) -> Table:
    from ..evaluate import HIGHER_IS_BETTER, METRIC_TITLES, format_metric

    better = "higher" if HIGHER_IS_BETTER[metric] else "lower"
    table = Table(title=f"{METRIC_TITLES[metric]} — {better} is better, * = best",
                  title_justify="left")
    table.add_column("band")
    table.add_column("n", justify="right")
    for name in report.methods:
        table.add_column(escape(name), justify="right")
    for row in report.rows(metric):
        cells = []
        for name in report.methods:
            text = format_metric(metric, row.values[name])
            cells.append(f"[bold green]{text}*[/]" if name in row.best else text)
        if row.section:
            table.add_section()
        label = f"[dim]  {row.label}[/]" if row.sub else escape(row.label)
        table.add_row(label, str(row.n), *cells)
    return table


def _speed_table(report) -> Table:
    table = Table(title="Speed", title_justify="left")
    table.add_column("method")
    table.add_column("backend")
    table.add_column("s / image", justify="right")
    for name, result in report.methods.items():
        seconds = result.seconds_per_image
        table.add_row(escape(name), escape(result.backend),
                      f"{seconds:.4f}" if math.isfinite(seconds) else "–")
    return table


def _render(report) -> None:
    s = report.settings
    console.print(
        f"[bold]pconv evaluate[/]: {s['pairs']} pairs ({s['pairing']} pairing, seed "
        f"{s['seed']}), size {escape(s['size'])}, bands from {s['band_source']}"
        + (", border / no-border split" if s["border_split"] else ""),
        highlight=False,
    )
    console.print(f"  [dim]{escape(s['sizing'])}[/]", highlight=False)
    for metric in report.metrics:
        console.print(_metric_table(report, metric))
    console.print(_speed_table(report))


@app.command("evaluate", epilog=examples(
    ("pconv evaluate --images photos/ --masks test-masks/",
     "the bundled model and the installed classical methods, per band"),
    ("pconv evaluate --images photos/ --masks test-masks/ --model runs/a/best.pt "
     "--method pconv,ns --flips 1,8 --out report/",
     "your model with and without the 8-copy ensemble; JSON, CSV, Markdown and pictures"),
    ("pconv evaluate --images eval-sets/thin/images --masks eval-sets/thin/masks "
     "--pairs named --native --bands 0,1 --method pconv,ns,fsr",
     "thin damage at native resolution: scores per image kind and hole width"),
    ("pconv evaluate --images photos/ --masks test-masks/ --method pconv,auto:fsr "
     "--thin-width 2,6",
     "the model with FSR for thin holes, up to 2 and up to 6 px wide, against the model"),
    ("pconv evaluate --detector runs/detector/best.pt --detect-set eval-sets/detect "
     "--out report/",
     "a damage detector per damage kind, on undamaged images and end to end (restore with "
     "its masks against the true ones)"),
))
@handle_errors
def evaluate_command(
    images: Annotated[Path | None, typer.Option(
        "--images", help="Folder of ground-truth images (searched recursively); the first "
                         "sub-folder names an image's kind (photo/, document/, ...), images at "
                         "the top are photo (with --masks, unless --detector).",
        rich_help_panel=_DATA, show_default=False)] = None,
    masks: Annotated[Path | None, typer.Option(
        "--masks", help="Folder of masks (white = hole). A gen-masks folder brings each mask's "
                        "ratio and border flag from masks.csv; otherwise ratios come from the "
                        "pixels.", rich_help_panel=_DATA, show_default=False)] = None,
    model: Annotated[list[Path] | None, typer.Option(
        "--model", help="A pconv checkpoint to score, named by its file stem (repeatable).",
        rich_help_panel=_WHAT, show_default=False)] = None,
    onnx: Annotated[list[Path] | None, typer.Option(
        "--onnx", help="An exported ONNX model, run with ONNX Runtime (repeatable).",
        rich_help_panel=_WHAT, show_default=False)] = None,
    method: Annotated[list[str] | None, typer.Option(
        "--method", help="Comma list of: pconv (the bundled model), telea, ns (OpenCV), fsr, "
                         "fsr-best (OpenCV contrib, slow), biharmonic, mean; auto: the bundled "
                         "model with a classical method for holes up to --thin-width px wide, "
                         "as restore runs it (auto:fsr, auto:biharmonic, ... name the method) "
                         "\\[default, when "
                         "no --model or --onnx is given: "
                         "pconv,telea,ns,biharmonic; pconv,biharmonic without OpenCV].",
        rich_help_panel=_WHAT, show_default=False)] = None,
    flips: Annotated[str, typer.Option(
        "--flips", help="Score each model alone (1) or as an ensemble over 2, 4 or 8 mirrored "
                        "copies of each input; a comma list such as 1,4 scores each (named "
                        "NAME-flips4).", rich_help_panel=_WHAT)] = "1",
    blend: Annotated[str, typer.Option(
        "--blend", help="poisson: make each model's fills continuous with the pixels around "
                        "the hole, as restore does; none: the raw composite; poisson,none "
                        "scores both (NAME-noblend).", rich_help_panel=_WHAT)] = "poisson",
    thin_width: Annotated[str, typer.Option(
        "--thin-width", metavar="PX", help="For auto methods: the widest hole region (px) the "
                        "classical method fills; a comma list such as 2,6,10 scores each "
                        "(named NAME-w2 where not restore's default).",
        rich_help_panel=_WHAT)] = f"{DEFAULT_THIN_WIDTH:g}",
    pairs: Annotated[Literal["seeded", "all", "named"], typer.Option(
        "--pairs", help="seeded: each mask once, with an image drawn by --seed; all: every "
                        "image with every mask; named: each image with the mask of the same "
                        "name (a fixed set such as eval-sets/thin).",
        rich_help_panel=_DATA)] = "seeded",
    seed: Annotated[int, typer.Option(
        "--seed", help="Seed of the image-mask pairing.", rich_help_panel=_DATA)] = 0,
    bands: Annotated[str, typer.Option(
        "--bands", help="Hole-ratio bands (a,b]: 'paper' = 0.01,0.1,...,0.6, or edges such as "
                        "0.05,0.15,0.3.", rich_help_panel=_DATA)] = "paper",
    size: Annotated[str | None, typer.Option(
        "--size", help="Evaluation size N (square) or WxH, width first (640x256 = 640 wide, "
                       "256 high): images centre-cropped and resized, masks resized nearest "
                       "\\[default: each mask's size].",
        rich_help_panel=_DATA, show_default=False)] = None,
    invert: Annotated[bool, typer.Option(
        "--invert-mask", help="Mask files are black = hole (pconv's and the paper's test masks are "
                         "white = hole).", rich_help_panel=_DATA)] = False,
    native: Annotated[bool, typer.Option(
        "--native", help="Score images at their own size (models pad and crop back); masks "
                         "are resized to each image.", rich_help_panel=_DATA)] = False,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Folder for report.json, .csv, .md, .png and the sample grids (with "
                      "--detector: detect-report.md and .json).",
        rich_help_panel=_OUT, show_default=False)] = None,
    json_path: Annotated[Path | None, typer.Option(
        "--json", help="Write only the JSON report to this file.", rich_help_panel=_OUT,
        show_default=False)] = None,
    samples: Annotated[int, typer.Option(
        "--samples", help="Rows per band in sample grids (input | each method | truth) under "
                          "--out/samples.", rich_help_panel=_OUT)] = 0,
    lpips: Annotated[bool, typer.Option(
        "--lpips/--no-lpips", help="Add LPIPS (AlexNet): needs pip install 'pconv[lpips]' and "
                        "torchvision's AlexNet weights in its cache; never downloaded.",
        rich_help_panel=_OUT)] = False,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", help="Images per model call.", rich_help_panel=_RUN)] = 8,
    workers: Annotated[int | None, typer.Option(
        "--workers", help="Processes for classical methods and scoring \\[default: all cores].",
        rich_help_panel=_RUN, show_default=False)] = None,
    device: Annotated[str, typer.Option(
        "--device", help=f"Device of the models: {'|'.join(DEVICE_CHOICES)}.",
        rich_help_panel=_RUN)] = "auto",
    detector: Annotated[Path | None, typer.Option(
        "--detector", help="Score this damage detector (a checkpoint of pconv train --task "
                           "detect, or .onnx) on --detect-set, instead of inpainting methods.",
        rich_help_panel=_DETECTOR, show_default=False)] = None,
    detector_onnx: Annotated[Path | None, typer.Option(
        "--detector-onnx", help="Score a detector exported by pconv export, with ONNX Runtime.",
        rich_help_panel=_DETECTOR, show_default=False)] = None,
    detect_set: Annotated[Path | None, typer.Option(
        "--detect-set", help="A detector evaluation set: damaged/, masks/, clean/ and "
                             "undamaged/, such as eval-sets/detect.",
        rich_help_panel=_DETECTOR, show_default=False)] = None,
    threshold: Annotated[float, threshold_option(_DETECTOR)] = DEFAULT_THRESHOLD,
    tolerance: Annotated[int, typer.Option(
        "--tolerance", metavar="PX", min=0, help="F1 also within PX pixels of the damage (thin "
                        "kinds are judged on it).", rich_help_panel=_DETECTOR)] = 1,
    thresholds: Annotated[str | None, typer.Option(
        "--thresholds", metavar="LIST", help="Instead of the report at --threshold: precision, "
        "recall, F1 and the undamaged images' marked share at each of these thresholds "
        "(e.g. 0.3,0.5,0.7,0.9), to choose one.", rich_help_panel=_DETECTOR,
        show_default=False)] = None,
    grow: Annotated[int, typer.Option(
        "--grow", metavar="PX", min=0, help="Grow every detected region by PX pixels, as "
        "detect --grow does.", rich_help_panel=_DETECTOR)] = DetectOptions.grow,
    min_area: Annotated[int, min_area_option(_DETECTOR)] = DetectOptions.min_area,
    precision: Annotated[Precision, precision_option(_DETECTOR)] = Precision(
        DetectOptions.precision),
    end_to_end: Annotated[bool, typer.Option(
        "--end-to-end/--no-end-to-end", help="Also restore each damaged image with the detected "
                        "and with the true masks (one --method, default restore's auto; "
                        "--model or --onnx for its model) and score both against the clean "
                        "image.", rich_help_panel=_DETECTOR)] = True,
) -> None:
    """Score models and classical methods per hole-to-image ratio band (the paper's table), per
    image kind and per hole width, over the whole image and inside the holes; or, with
    --detector, a damage detector per damage kind."""
    if detector is not None or detector_onnx is not None or detect_set is not None:
        if images is not None or masks is not None:
            raise ConfigError("--images and --masks score inpainting; a detector is scored on "
                              "--detect-set alone")
        restore = dict(model=model, onnx=onnx, method=method, flips=flips, blend=blend,
                       thin_width=thin_width) if end_to_end else None
        masking = dict(threshold=threshold, tolerance=tolerance, grow=grow, min_area=min_area)
        sweep = _parse_thresholds(thresholds) if thresholds is not None else None
        _evaluate_detector(detector, detector_onnx, detect_set, masking, sweep, precision.value,
                           restore, device, out, json_path)
        return
    if images is None or masks is None:
        raise ConfigError("give --images and --masks (inpainting), or --detector and "
                          "--detect-set (a damage detector)")
    from ..evaluate import build_methods, default_workers, evaluate, make_pairs
    from ..masks import parse_bands, parse_size
    from ..metrics import load_lpips

    if samples and out is None:
        raise ConfigError("--samples writes its grids into the report folder: add --out DIR")
    if size is not None and native:
        raise ConfigError("--size and --native exclude each other: choose one")
    edges = parse_bands(bands)
    size_hw = parse_size(size) if size is not None else None
    methods = build_methods(model or [], onnx or [], method or [], device, flips, blend,
                            thin_width)
    # Loaded before the masks are read, so that a missing package or weights stop at once.
    lpips_scorer = load_lpips(device) if lpips else None
    with _ProgressBar() if console.is_terminal else nullcontext(None) as progress:
        pair_set = make_pairs(images, masks, pairing=pairs, seed=seed, edges=edges,
                              invert=invert, progress=progress)
        report = evaluate(
            pair_set, methods, size=size_hw, native=native, batch_size=batch_size,
            workers=workers if workers is not None else default_workers(), samples=samples,
            lpips=lpips_scorer or False, device=device, progress=progress,
        )
    _render(report)
    written = report.write_all(out) if out is not None else []
    if json_path is not None:
        written.append(report.write_json(json_path))
    for notice in report.notices:
        err_console.print(f"[yellow]note:[/] {escape(notice)}", highlight=False)
    for path in written:
        console.print(f"wrote {escape(str(path))}", highlight=False)
    if report.failed:
        for failure in report.failed:
            err_console.print(f"[red]skipped[/] {escape(failure.path)}: {escape(failure.reason)}",
                              highlight=False, soft_wrap=True)
        err_console.print(
            f"[bold red]error:[/] {len(report.failed)} file(s) could not be used; "
            f"{report.settings['pairs_skipped']} pair(s) skipped, the rest scored",
            highlight=False,
        )
        raise typer.Exit(1)


def _one(option: str, values: list | None, default: str | None = None) -> str | None:
    """The single value a detector's end-to-end restore takes from a list option (comma lists
    split, except for paths)."""
    given = [v for value in values or [] for v in (
        [str(value)] if isinstance(value, Path) else str(value).split(",")) if v.strip()]
    if len(given) > 1:
        raise ConfigError(f"{option} {','.join(given)}: the end-to-end scores of a detector "
                          "use one")
    return given[0].strip() if given else default


def _restorer(model: list[Path] | None, onnx: list[Path] | None, method: list[str] | None,
              flips: str, blend: str, thin_width: str, device: str):  # noqa: ANN202
    """The inpainter restore would run with these options (its default: auto, the bundled
    model)."""
    from ..routing import AUTO, load_method

    try:
        flips_n, width = int(_one("--flips", [flips])), float(_one("--thin-width", [thin_width]))
    except ValueError:
        raise ConfigError(f"--flips {flips} / --thin-width {thin_width}: give numbers") from None
    return load_method(_one("--method", method, AUTO), model=_one("--model", model),
                       onnx=_one("--onnx", onnx), device=device, flips=flips_n,
                       blend=_one("--blend", [blend]), thin_width=width)


def _evaluate_detector(detector: Path | None, detector_onnx: Path | None,
                       detect_set: Path | None, masking: dict, sweep: list[float] | None,
                       precision: str, restore: dict | None, device: str, out: Path | None,
                       json_path: Path | None) -> None:
    """``pconv evaluate --detector``: score it on the set, print the page, write the reports.
    ``masking``: threshold, tolerance, grow and min_area, as :func:`score_detector` takes
    them; ``sweep``: the thresholds of --thresholds, scored instead of the report."""
    if detector is not None and detector_onnx is not None:
        raise ConfigError("give --detector or --detector-onnx, not both")
    if detector is None and detector_onnx is None:
        raise ConfigError("--detect-set scores a damage detector: add --detector CKPT or "
                          "--detector-onnx FILE")
    if detect_set is None:
        raise ConfigError("--detector is scored on a detector evaluation set: add --detect-set "
                          "DIR (such as eval-sets/detect)")
    import json

    from ..detect import load_damage_detector
    from ..detection_eval import read_set, report_dict, report_markdown, score_detector
    from ..fileio import atomic_write_text

    read_set(detect_set)  # a wrong folder before any model loads
    found = load_damage_detector(detector, detector_onnx, device, option="--detector CKPT",
                                 precision=precision)
    if sweep is not None:
        written = _sweep(found, detect_set, sweep, masking, out, json_path)
    else:
        fill = _restorer(device=device, **restore) if restore is not None else None
        with _ProgressBar() as bar:
            report = score_detector(found, detect_set, **masking, inpainter=fill, device=device,
                                    progress=lambda done, total: bar("detect", done, total))
        console.print(report_markdown(report), markup=False, highlight=False, soft_wrap=True)
        written = []
        if out is not None:
            from ..detection_eval import write_report

            written += write_report(report, out)
        if json_path is not None:
            atomic_write_text(json_path, json.dumps(report_dict(report), indent=1) + "\n")
            written.append(json_path)
    for path in written:
        console.print(f"wrote {escape(str(path))}", highlight=False)


def _parse_thresholds(text: str) -> list[float]:
    try:
        values = sorted({float(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ConfigError(f"--thresholds {text}: give probabilities such as 0.3,0.5,0.7") from None
    if not values:
        raise ConfigError("--thresholds: give probabilities such as 0.3,0.5,0.7")
    return values


def _sweep(found, detect_set: Path, thresholds: list[float], masking: dict,  # noqa: ANN001
           out: Path | None, json_path: Path | None) -> list[Path]:
    """``--thresholds``: the detector at each threshold, printed and written."""
    import json

    from ..detection_eval import sweep_dict, sweep_markdown, threshold_sweep
    from ..fileio import atomic_write_text

    with _ProgressBar() as bar:
        rows = threshold_sweep(found, detect_set, thresholds,
                               tolerance=masking["tolerance"], grow=masking["grow"],
                               min_area=masking["min_area"],
                               progress=lambda done, total: bar("detect", done, total))
    text = sweep_markdown(rows, masking["tolerance"])
    console.print(text, markup=False, highlight=False, soft_wrap=True)
    written = []
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "detect-thresholds.md", text)
        written.append(out / "detect-thresholds.md")
    if json_path is not None:
        atomic_write_text(json_path, json.dumps(sweep_dict(rows), indent=1) + "\n")
        written.append(json_path)
    return written
