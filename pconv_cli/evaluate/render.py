"""A report as others read it: tables, JSON, CSV, Markdown, the plot and the sample grids.

Every function here is pure: it reads the report it is given (and, for the Markdown, the notices
it is given) and returns text, bytes or pixels; none writes a file or changes the report, so
they can run in any order. :mod:`.files` writes what they return.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..imaging import to_uint8
from ..metrics import HOLE_METRICS, SSIM_SETTINGS
from .aggregate import BORDER_NAMES, OVERALL, BandStats, MethodResult
from .scoring import WIDTH_LABELS

if TYPE_CHECKING:  # the report hands itself to these functions: no import at run time
    from .report import Report, SampleRow

HIGHER_IS_BETTER = {"l1": False, "psnr": True, "ssim": True, "lpips": False,
                    "hole_l1": False, "hole_psnr": True}
METRIC_TITLES = {"l1": "ℓ1 (%)", "psnr": "PSNR (dB)", "ssim": "SSIM", "lpips": "LPIPS",
                 "hole_l1": "hole ℓ1 (%)", "hole_psnr": "hole PSNR (dB)"}
# Decimals shown in the tables.
DIGITS = {"l1": 2, "psnr": 2, "ssim": 4, "lpips": 4, "hole_l1": 2, "hole_psnr": 2}
PLOT_SKIPPED = "report.png skipped: matplotlib is not installed (pip install 'pconv[plot]')"


# --------------------------------------------------------------------------- tables


def format_metric(metric: str, value: float | None) -> str:
    if value is None or math.isnan(value):
        return "–"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{DIGITS[metric]}f}"


def best_of(metric: str, values: dict[str, float]) -> set[str]:
    """The methods with the best value as shown (equal shown values share it); none where
    nothing was scored."""
    shown = {k: round(v, DIGITS[metric]) for k, v in values.items() if not math.isnan(v)}
    if not shown:
        return set()
    pick = max if HIGHER_IS_BETTER[metric] else min
    best = pick(shown.values())
    return {k for k, v in shown.items() if v == best}


@dataclass
class TableRow:
    label: str
    n: int
    values: dict[str, float]  # method → mean
    best: set[str]
    sub: bool = False  # a border / no-border or hole-width line under its group
    section: bool = False  # starts a new part of the table (overall, image kinds)


def table_rows(report: Report, metric: str) -> list[TableRow]:
    """One metric's table: bands (with border / no-border lines), the overall line, and
    with several image kinds a line per kind; hole metrics add a line per hole-width group
    under the overall line and under each kind."""
    names = list(report.methods)

    def row(label: str, pick: Callable[[MethodResult], BandStats], sub=False,
            section=False) -> TableRow:
        stats = {name: pick(report.methods[name]) for name in names}
        values = {name: s.mean.get(metric, math.nan) for name, s in stats.items()}
        n = stats[names[0]].n
        best = best_of(metric, values) if len(names) > 1 else set()
        return TableRow(label, n, values, best, sub, section)

    def width_rows(pick: Callable[[MethodResult], dict[str, BandStats]]) -> list[TableRow]:
        if metric not in HOLE_METRICS:
            return []
        return [row(f"holes {w}", lambda r, w=w: pick(r)[w], sub=True) for w in WIDTH_LABELS]

    out = []
    for label in report.band_labels:
        out.append(row(label, lambda r, lb=label: r.bands[lb]))
        if report.border_split:
            for kind in BORDER_NAMES.values():
                out.append(row(kind, lambda r, lb=label, k=kind: r.border_split[k][lb], True))
    out.append(row(OVERALL, lambda r: r.overall, section=True))
    out += width_rows(lambda r: r.widths)
    if len(report.kinds) > 1:
        for k, kind in enumerate(report.kinds):
            out.append(row(f"kind {kind}", lambda r, kd=kind: r.kinds[kd], section=k == 0))
            out += width_rows(lambda r, kd=kind: r.kind_widths[kd])
    return out


# --------------------------------------------------------------------------- JSON


def _json_number(value: float) -> float | None:
    """JSON has no infinity or NaN: both become null (see ``settings["null"]``)."""
    return float(value) if math.isfinite(value) else None


def stats_json(stats: BandStats, metrics: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": stats.n}
    out.update({m: _json_number(stats.mean.get(m, math.nan)) for m in metrics})
    out.update({f"{m}_std": _json_number(stats.std.get(m, math.nan)) for m in metrics})
    out["psnr_infinite"] = stats.psnr_infinite
    return out


def method_json(result: MethodResult, metrics: Sequence[str]) -> dict[str, Any]:
    hole = [m for m in metrics if m in HOLE_METRICS]
    out: dict[str, Any] = {
        "bands": {label: stats_json(s, metrics) for label, s in result.bands.items()},
        "overall": stats_json(result.overall, metrics),
        "kinds": {kind: stats_json(s, metrics) for kind, s in result.kinds.items()},
        "widths": {label: stats_json(s, hole) for label, s in result.widths.items()},
        "kind_widths": {
            kind: {label: stats_json(s, hole) for label, s in widths.items()}
            for kind, widths in result.kind_widths.items()
        },
        "seconds_per_image": _json_number(result.seconds_per_image),
    }
    if result.border_split:
        out["border_split"] = {
            kind: {label: stats_json(s, metrics) for label, s in bands.items()}
            for kind, bands in result.border_split.items()
        }
    return out


def report_json(report: Report) -> dict[str, Any]:
    return {
        "settings": report.settings,
        "methods": {name: method_json(r, report.metrics) for name, r in report.methods.items()},
        "failed": [{"path": f.path, "reason": f.reason} for f in report.failed],
    }


def json_text(report: Report) -> str:
    return json.dumps(report_json(report), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# --------------------------------------------------------------------------- CSV


def _csv_number(value: float) -> str:
    if math.isnan(value):
        return ""
    return repr(float(value))  # "inf" for an exact reconstruction; full precision otherwise


def csv_rows(report: Report) -> list[list[Any]]:
    """The header and one line per method, band, border set, image kind and hole-width group
    (long format, for plotting)."""
    columns = ["method", "backend", "band", "border", "kind", "width", "n"]
    for metric in report.metrics:
        columns += [metric, f"{metric}_std"]
    columns += ["psnr_infinite", "seconds_per_image"]
    rows: list[list[Any]] = [columns]
    for name, result in report.methods.items():
        # (band, border, image kind, hole width, stats)
        groups = [(label, "all", "all", "all", s) for label, s in result.bands.items()]
        for border, bands in result.border_split.items():
            groups += [(label, border, "all", "all", s) for label, s in bands.items()]
        groups.append((OVERALL, "all", "all", "all", result.overall))
        groups += [(OVERALL, "all", "all", w, s) for w, s in result.widths.items()]
        for kind, stats in result.kinds.items():
            groups.append((OVERALL, "all", kind, "all", stats))
            groups += [(OVERALL, "all", kind, w, s) for w, s in result.kind_widths[kind].items()]
        for label, border, kind, width, stats in groups:
            line = [name, result.backend, label, border, kind, width, stats.n]
            for metric in report.metrics:
                line += [_csv_number(stats.mean.get(metric, math.nan)),
                         _csv_number(stats.std.get(metric, math.nan))]
            line += [stats.psnr_infinite, _csv_number(result.seconds_per_image)]
            rows.append(line)
    return rows


def csv_text(report: Report) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(csv_rows(report))
    return buf.getvalue()


# --------------------------------------------------------------------------- Markdown


def markdown_text(report: Report, notices: Sequence[str] | None = None) -> str:
    """The report as Markdown: settings, a table per metric, speed, skipped files and notes.

    ``notices``: the notes to list, by default the report's own; the report folder's writer
    passes them with those of writing it (a plot left out).
    """
    notices = report.notices if notices is None else notices
    lines = _markdown_header(report.settings)
    for metric in report.metrics:
        lines += _markdown_table(report, metric)
    lines += ["## Speed", "", "| method | backend | seconds per image |", "|---|---|---:|"]
    for name, result in report.methods.items():
        seconds = result.seconds_per_image
        text = f"{seconds:.4f}" if math.isfinite(seconds) else "–"
        lines.append(f"| {name} | {result.backend} | {text} |")
    lines += ["", f"Seconds per image: {report.settings['seconds_per_image']}.", ""]
    if report.failed:
        lines += ["## Skipped files", ""]
        lines += [f"- `{f.path}`: {f.reason}" for f in report.failed]
        lines.append("")
    if notices:
        lines += ["## Notes", ""] + [f"- {n}" for n in notices] + [""]
    return "\n".join(lines)


def _markdown_header(s: dict[str, Any]) -> list[str]:
    return [
        "# pconv evaluate", "",
        f"- images: `{s['images']}` ({s['n_images']}); masks: `{s['masks']}` "
        f"({s['n_masks']}, ratios and borders from {s['band_source']})",
        f"- pairs: {s['pairs']} ({s['pairing']} pairing, seed {s['seed']}); "
        f"skipped: {s['pairs_skipped']}; masks outside the bands: {s['masks_outside_bands']}",
        f"- size: {s['size']} ({s['sizing']})",
        "- metrics on the composite (known pixels pasted back), images in [0, 1]: ℓ1 = mean "
        "absolute error over the whole image in %; hole ℓ1 and hole PSNR over the hole "
        "pixels only (per hole-width group on the `holes` lines: each connected hole's "
        "width is 2·r − 1 px, r its largest distance to a known pixel); image kind = first "
        "sub-folder of the images folder; PSNR with data range 1; SSIM by "
        "scikit-image with " + ", ".join(
            f"{k}={v}" for k, v in SSIM_SETTINGS.items()) + f"; LPIPS: {s['metrics']['lpips']}",
        "- each cell: mean over the band's images; **bold** = best in the row; "
        "`inf` = an exact reconstruction",
        f"- pconv {s['pconv_version']}, {s['created']}",
        "",
    ]


def _markdown_table(report: Report, metric: str) -> list[str]:
    names = list(report.methods)
    better = "higher" if HIGHER_IS_BETTER[metric] else "lower"
    lines = [f"## {METRIC_TITLES[metric]} — {better} is better", ""]
    lines.append("| band | n | " + " | ".join(names) + " |")
    lines.append("|---|---:|" + "---:|" * len(names))
    for row in table_rows(report, metric):
        label = f"&nbsp;&nbsp;{row.label}" if row.sub else row.label
        label = label.replace("<", "&lt;").replace(">", "&gt;")
        cells = []
        for name in names:
            text = format_metric(metric, row.values[name])
            cells.append(f"**{text}**" if name in row.best else text)
        lines.append(f"| {label} | {row.n} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


# --------------------------------------------------------------------------- pictures


def plot_png(report: Report) -> bytes | None:
    """Metric against band, one line per method, as a PNG; None without matplotlib (the
    caller says so: :data:`PLOT_SKIPPED`)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    fig = Figure(figsize=(4.2 * len(report.metrics), 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    x = np.arange(len(report.band_labels))
    for k, metric in enumerate(report.metrics):
        ax = fig.add_subplot(1, len(report.metrics), k + 1)
        for name, result in report.methods.items():
            y = [result.bands[label].mean.get(metric, math.nan) for label in report.band_labels]
            y = [v if math.isfinite(v) else math.nan for v in y]  # inf is not drawable
            ax.plot(x, y, marker="o", label=name)
        ax.set_xticks(x, report.band_labels, rotation=45, ha="right", fontsize=8)
        ax.set_xlabel("hole-to-image ratio")
        better = "higher" if HIGHER_IS_BETTER[metric] else "lower"
        ax.set_title(f"{METRIC_TITLES[metric]} ({better} is better)", fontsize=10)
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    return buf.getvalue()


def sample_grids(report: Report) -> dict[str, np.ndarray]:
    """One grid per band with sample rows, by file name (``band_0.01-0.1.png``)."""
    return {f"band_{_slug(label)}.png": sample_grid(rows, list(report.methods))
            for label, rows in report.samples.items()}


def _slug(label: str) -> str:
    """``(0.01,0.1]`` → ``0.01-0.1``: a file name without brackets or commas."""
    return label.strip("(]").replace(",", "-")


def sample_grid(rows: Sequence[SampleRow], methods: Sequence[str], header: int = 18) -> np.ndarray:
    """A uint8 image: a header line of names, then per row input | methods | truth."""
    cell_h, cell_w = rows[0].truth.shape[:2]
    titles = ["input", *methods, "truth"]
    pad = 2
    width = len(titles) * (cell_w + pad) + pad
    height = header + len(rows) * (cell_h + pad) + pad
    canvas = Image.new("RGB", (width, height), (40, 40, 40))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for k, title in enumerate(titles):
        draw.text((pad + k * (cell_w + pad) + 2, 2), title[:40], fill=(230, 230, 230), font=font)
    missing = np.full((cell_h, cell_w, 3), 0.5, dtype=np.float32)
    for r, row in enumerate(rows):
        cells = [row.masked, *(row.outputs.get(m, missing) for m in methods), row.truth]
        for k, cell in enumerate(cells):
            tile = _fit_cell(to_uint8(cell), cell_h, cell_w)
            canvas.paste(Image.fromarray(tile), (pad + k * (cell_w + pad),
                                                 header + pad + r * (cell_h + pad)))
    return np.asarray(canvas)


def _fit_cell(tile: np.ndarray, h: int, w: int) -> np.ndarray:
    """Letterbox a tile into h×w (native sizes differ between rows), keeping its aspect."""
    th, tw = tile.shape[:2]
    if (th, tw) == (h, w):
        return tile
    scale = min(h / th, w / tw)
    size = (max(1, round(tw * scale)), max(1, round(th * scale)))
    small = np.asarray(Image.fromarray(tile).resize(size, Image.Resampling.LANCZOS))
    out = np.full((h, w, 3), 40, dtype=np.uint8)
    top, left = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    out[top:top + small.shape[0], left:left + small.shape[1]] = small
    return out
