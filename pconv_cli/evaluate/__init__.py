"""Scoring inpainting methods per hole-ratio band: the protocol of the paper's Table 1 (§5).

Every method is scored on the same (image, mask) pairs. One module per step, listed in the
order the data flows; each imports only modules above it (render and files name the report's
class below them for type checkers only):

- :mod:`.pairs`: finding the masks (``masks.csv`` or pixels), pairing them with images
  (seeded, all or named), their bands and image kinds, and the files that failed.
- :mod:`.methods`: the inpainters to score, from checkpoints, ONNX files and method names,
  in their flip, blend and thin-width variants.
- :mod:`.loading`: a pair's image and mask at the evaluation size, and the masked input a
  method sees.
- :mod:`.scoring`: one output's composite and its scores, whole image, holes and hole widths.
- :mod:`.aggregate`: the scores as statistics per band, border set, image kind and width.
- :mod:`.render`: pure functions from a report to its tables, JSON, CSV, Markdown, plot and
  sample grids; :mod:`.files` writes them into the report folder.
- :mod:`.report`: the report as data (settings, statistics, failures, notices, samples).
- :mod:`.runner`: :func:`evaluate`, which runs the methods over the pairs (models in
  batches here, per-image methods and scoring in worker processes) and builds the report.

The names below are the package's interface; ``from pconv_cli.evaluate import X`` is the way
to reach them.
"""

from __future__ import annotations

from .aggregate import BandStats, MethodResult
from .loading import fit_image, hide_holes
from .methods import (
    KNOWN_METHODS,
    ROUTED_METHODS,
    build_methods,
    default_methods,
    file_method_names,
    parse_blends,
    parse_flips,
    parse_methods,
    parse_thin_widths,
    routed_name,
    variant_name,
)
from .pairs import PAIRINGS, Failure, Pair, PairSet, make_pairs, seeded_assignment
from .render import HIGHER_IS_BETTER, METRIC_TITLES, TableRow, format_metric
from .report import Report, SampleRow
from .runner import default_workers, evaluate
from .scoring import score_output

__all__ = [
    "HIGHER_IS_BETTER",
    "KNOWN_METHODS",
    "METRIC_TITLES",
    "PAIRINGS",
    "ROUTED_METHODS",
    "BandStats",
    "Failure",
    "MethodResult",
    "Pair",
    "PairSet",
    "Report",
    "SampleRow",
    "TableRow",
    "build_methods",
    "default_methods",
    "default_workers",
    "evaluate",
    "file_method_names",
    "fit_image",
    "format_metric",
    "hide_holes",
    "make_pairs",
    "parse_blends",
    "parse_flips",
    "parse_methods",
    "parse_thin_widths",
    "routed_name",
    "score_output",
    "seeded_assignment",
    "variant_name",
]
