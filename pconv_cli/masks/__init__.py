"""Irregular hole masks: a seeded generator, hole-area bands and mask-set folders.

Inside pconv a mask is a bool array with **True = valid, False = hole** (the paper's convention);
``imaging`` converts to and from files, where **white (255) = hole**. Every ratio here is the
fraction of hole pixels, counted from the final pixels.

Reproducibility: every mask has its own 63-bit seed, derived from the set seed and the mask's
place in the set (never from a worker or a draw counter), and stored in the manifest; the same
seed, size and parameters give the same pixels whatever the number of worker processes.

Modules, each importing only those above it:

- ``bands``: hole ratios, the paper's band edges, band membership and labels.
- ``params``: ``MaskParams`` (the generator's parameter ranges) and mask sizes.
- ``parsing``: what users type for sizes, ranges, parameters and bands (shared by commands).
- ``generator``: the seeded stroke geometry, the paper's augmentations (per-mask seeds are
  :mod:`pconv_cli.seeds`').
- ``steering``: one mask drawn freely or steered into a band (``sample_mask``).
- ``manifest``: ``masks.csv``, written and read.
- ``spec``: ``MaskSetSpec``, the files it plans and how each is drawn (strokes or thin holes).
- ``sets``: writing a set folder with a process pool, resuming, the manifests.
- ``preview``: the contact sheet of ``gen-masks --preview``.

Everything other code uses is re-exported here; import from ``pconv_cli.masks``.
"""

from __future__ import annotations

from ..seeds import mask_seed
from .bands import PAPER_BAND_EDGES, band_label, band_of, check_edges, hole_ratio
from .generator import GENERATOR_VERSION, generate_mask, transform_mask
from .manifest import MANIFEST, MANIFEST_COLUMNS, RECIPE, ManifestRow, read_manifest
from .params import MIN_SIZE, MaskParams
from .parsing import parse_bands, parse_mask_param, parse_range, parse_size
from .preview import preview_sheet
from .sets import BandSummary, MaskSetSummary, write_mask_set
from .spec import DEFAULT_MARGIN, MASK_SHAPES, MaskSetSpec
from .steering import MaskSample, sample_mask

__all__ = [
    "DEFAULT_MARGIN",
    "GENERATOR_VERSION",
    "MANIFEST",
    "MANIFEST_COLUMNS",
    "MASK_SHAPES",
    "MIN_SIZE",
    "PAPER_BAND_EDGES",
    "RECIPE",
    "BandSummary",
    "ManifestRow",
    "MaskParams",
    "MaskSample",
    "MaskSetSpec",
    "MaskSetSummary",
    "band_label",
    "band_of",
    "check_edges",
    "generate_mask",
    "hole_ratio",
    "mask_seed",
    "parse_bands",
    "parse_mask_param",
    "parse_range",
    "parse_size",
    "preview_sheet",
    "read_manifest",
    "sample_mask",
    "transform_mask",
    "write_mask_set",
]
