"""Batch restoration: a folder of damaged images in, a folder of restored images out.

Built for thousands of files, unattended:

* every bad file (corrupt, truncated, empty, unsupported, missing or mismatched mask, too many
  pixels) is reported with a one-line reason and the run goes on; the reasons are written to
  ``OUT/failures.csv``;
* inputs are never modified, outputs are written atomically, and a rerun skips what exists;
  OUT records the settings its images were made with, and a rerun with others is refused;
* pixels outside the holes are the original pixels at full resolution: the model's prediction
  is converted to the image's own pixel format and pasted into hole pixels only;
* large images are inpainted as crops around each hole (or as a resized copy);
* decoding and encoding run in worker threads while the model runs on batches of same-size
  inputs, and ``shard`` splits a folder between machines or GPU ranks deterministically.

Modules, each importing only those above it:

* ``results``: a file's task and result, the run's report, failure reasons;
* ``options``: :class:`RestoreOptions` and its validation, sharding across machines and ranks;
* ``files``: discovery of the inputs, output names, mask files paired with images, and
  :func:`plan`, the tasks of one shard;
* ``masks``: each image's mask from its source (file, painted, alpha, detector);
* ``regions``: hole regions, crops and tiles, from the mask alone;
* ``jobs``: the work for one image: model inputs, batches, the paste back, thin regions first;
* ``previews``: the ``--concat`` previews;
* ``record``: OUT's settings record (``.pconv-restore.json``) and failures file;
* ``pipeline``: the threads, read → infer → write;
* ``run``: :class:`RestoreRun` and :func:`restore`, which tie the steps together.

Image and mask files are read and written by :mod:`pconv_cli.imaging`. Heavy libraries
(torch, scipy, scikit-image, the detector) are imported where they are used, so that the CLI's
help and planning a run load none of them.
"""

from __future__ import annotations

from .files import DETECTED_MASKS_DIR, PREVIEW_DIR, discover, plan
from .jobs import (
    Job,
    batch_limit,
    fill_thin_regions_first,
    make_jobs,
    paste,
    plan_regions,
    restore_image,
    run_jobs,
)
from .masks import HOLE_WARNING_FRACTION, MaskSource, read_mask_file
from .options import (
    MASK_SOURCES,
    STRATEGIES,
    RestoreOptions,
    in_shard,
    parse_shard,
    rank_device,
    shard_for_rank,
)
from .previews import PREVIEW_SIDE, write_preview
from .record import (
    RUN_RECORD,
    check_output_settings,
    failures_csv_name,
    file_digest,
    output_settings,
    write_failures,
)
from .regions import Box, hole_boxes, tile_box, widest_hole
from .results import FileResult, RestoreReport, RestoreTask, failure_reason, failure_result
from .run import RestoreRun, restore

__all__ = [
    "DETECTED_MASKS_DIR",
    "HOLE_WARNING_FRACTION",
    "MASK_SOURCES",
    "PREVIEW_DIR",
    "PREVIEW_SIDE",
    "RUN_RECORD",
    "STRATEGIES",
    "Box",
    "FileResult",
    "Job",
    "MaskSource",
    "RestoreOptions",
    "RestoreReport",
    "RestoreRun",
    "RestoreTask",
    "batch_limit",
    "check_output_settings",
    "discover",
    "failure_reason",
    "failure_result",
    "failures_csv_name",
    "file_digest",
    "fill_thin_regions_first",
    "hole_boxes",
    "in_shard",
    "make_jobs",
    "output_settings",
    "parse_shard",
    "paste",
    "plan",
    "plan_regions",
    "rank_device",
    "read_mask_file",
    "restore",
    "restore_image",
    "run_jobs",
    "shard_for_rank",
    "tile_box",
    "widest_hole",
    "write_failures",
    "write_preview",
]
