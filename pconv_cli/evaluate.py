"""Scoring inpainting methods per hole-ratio band: the protocol of the paper's Table 1 (§5).

Every method is scored on the same (image, mask) pairs:

1. Masks come from a ``pconv gen-masks`` folder, whose ``masks.csv`` gives each mask's hole
   ratio and border flag (in the folder or in its immediate sub-folders), or from any folder of
   mask files, whose ratios are counted from the pixels. A pair's band is its mask's hole ratio
   as the mask was made, before any resizing; masks outside every band are not scored.
2. Each mask is paired once with an image chosen by seeded shuffled rounds over the images
   (``pairing="seeded"``: every image is used equally often, ±1), or with every image
   (``"all"``); or each image with the mask of the same name (``"named"``: ``film/a.png``
   with ``film/a.png`` under the masks folder, any image suffix), for a fixed evaluation set
   whose masks were drawn for their images. The pairs depend only on the two file lists and
   the seed. An image's kind is the first sub-folder of the images folder it lies in
   (``document/page.png`` → ``document``); images directly in the folder are ``photo``.
3. Images are centre-cropped to the evaluation aspect ratio and resized (Lanczos) to the
   evaluation size (default: each mask's own size); a mask whose size differs is resized
   nearest. With ``native`` an image keeps its size (models pad to their multiple and crop
   back) and its mask is resized to it.
4. A method sees the image with its hole pixels set to 0, and the mask. Its output becomes the
   composite here (known pixels pasted back from the truth) and is scored against the truth
   (:mod:`pconv_cli.metrics`): over the whole image, over the hole pixels, and over the hole
   pixels of each hole-width group (``metrics.WIDTH_GROUPS``).

Models run in batches in this process; per-image methods (``batched = False``, the classical
ones) and the scoring run in a pool of worker processes.
"""

from __future__ import annotations

import csv
import io
import json
import math
import multiprocessing
import os
import platform
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import __version__
from .classical import CLASSICAL_METHODS, classical_inpainter, limit_threads
from .errors import ConfigError, InputError
from .fileio import atomic_path, atomic_write_text
from .imaging import list_images, load_image, load_mask, to_uint8
from .masks import MANIFEST, PAPER_BAND_EDGES, band_label, band_of, hole_ratio, read_manifest
from .metrics import (
    HOLE_METRICS,
    SSIM_SETTINGS,
    SSIM_WINDOW,
    WIDTH_GROUPS,
    LpipsScorer,
    hole_scores,
    hole_width_groups,
    image_scores,
    load_lpips,
)
from .routing import AUTO, DEFAULT_THIN_WIDTH, check_thin_width, parse_method

PAIRINGS = ("seeded", "all", "named")
TOP_LEVEL_KIND = "photo"  # the kind of images directly in the images folder
KNOWN_METHODS = ("pconv", *CLASSICAL_METHODS)
# The model and a classical method routed by hole width (pconv_cli.routing): auto, auto:fsr, ...
ROUTED_METHODS = (AUTO, f"{AUTO}:NAME")
BASE_METRICS = ("l1", "psnr", "ssim", *HOLE_METRICS)
HIGHER_IS_BETTER = {"l1": False, "psnr": True, "ssim": True, "lpips": False,
                    "hole_l1": False, "hole_psnr": True}
METRIC_TITLES = {"l1": "ℓ1 (%)", "psnr": "PSNR (dB)", "ssim": "SSIM", "lpips": "LPIPS",
                 "hole_l1": "hole ℓ1 (%)", "hole_psnr": "hole PSNR (dB)"}
WIDTH_LABELS = tuple(label for label, _ in WIDTH_GROUPS)
BORDER_NAMES = {False: "no-border", True: "border"}
OVERALL = "overall"
MASK_CACHE_BYTES = 256 * 2**20  # masks reused by --pairs all stay loaded up to this much
MIN_TASKS_PER_WORKER = 16  # fewer (pair, method) tasks than this per worker: fewer workers

ProgressCallback = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass(frozen=True)
class Failure:
    """A file that could not be used, and why."""

    path: str
    reason: str


class FileFailure(InputError):
    """An input file of a pair is unusable; the pair is skipped and the file reported."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.failure = Failure(str(path), reason)


# --------------------------------------------------------------------------- masks and pairs


@dataclass(frozen=True)
class MaskEntry:
    path: Path
    hole_ratio: float | None = None  # None until measured from the file
    border: bool | None = None  # from masks.csv: may holes touch the image edge
    hole_pixels: int | None = None  # from masks.csv: checked against the file when loaded


def manifest_files(masks_dir: Path) -> list[Path]:
    """The folder's ``masks.csv``, or else those of its immediate sub-folders."""
    top = masks_dir / MANIFEST
    if top.is_file():
        return [top]
    return sorted(
        sub / MANIFEST
        for sub in masks_dir.iterdir()
        if sub.is_dir() and not sub.name.startswith(".") and (sub / MANIFEST).is_file()
    )


def find_masks(masks_dir: str | os.PathLike) -> tuple[list[MaskEntry], str]:
    """The masks of a folder and where their ratios come from (``masks.csv`` or ``pixels``)."""
    masks_dir = Path(masks_dir)
    if not masks_dir.is_dir():
        raise InputError(f"{masks_dir}: not a folder; --masks takes a folder of mask files")
    manifests = manifest_files(masks_dir)
    if not manifests:
        return [MaskEntry(path) for path in list_images(masks_dir)], "pixels"
    entries = []
    for manifest in manifests:
        for row in read_manifest(manifest):
            pixels = row.hole_pixels if row.hole_pixels >= 0 else None
            entries.append(MaskEntry(row.path, row.hole_ratio, row.border, pixels))
    return entries, MANIFEST


def measure_masks(
    entries: Sequence[MaskEntry],
    progress: ProgressCallback | None = None,
    *,
    invert: bool = False,
) -> tuple[list[MaskEntry], list[Failure]]:
    """Fill in the hole ratio of masks without one; unreadable masks keep None and fail."""
    measured, failed = [], []
    todo = sum(1 for e in entries if e.hole_ratio is None)
    done = 0
    for entry in entries:
        if entry.hole_ratio is None:
            try:
                valid = load_mask(entry.path, invert=invert)
            except InputError as exc:
                failed.append(Failure(str(entry.path), _reason(exc, entry.path)))
            else:
                holes = valid.size - int(np.count_nonzero(valid))
                entry = replace(entry, hole_ratio=hole_ratio(valid), hole_pixels=holes)
            done += 1
            if progress is not None:
                progress("masks", done, todo)
        measured.append(entry)
    return measured, failed


def seeded_assignment(n_masks: int, n_images: int, seed: int) -> np.ndarray:
    """The image index of each mask: shuffled rounds over all images, so that every image is
    used ⌊n_masks/n_images⌋ or ⌈n_masks/n_images⌉ times."""
    rng = np.random.default_rng(seed)
    rounds = -(-n_masks // n_images)
    order = [rng.permutation(n_images) for _ in range(rounds)]
    return np.concatenate(order)[:n_masks] if order else np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class Pair:
    index: int
    image: Path
    mask: MaskEntry
    band: int
    kind: str = TOP_LEVEL_KIND


def image_kind(image: Path, images_dir: Path) -> str:
    """The first sub-folder of ``images_dir`` that holds ``image``; ``photo`` at the top."""
    parts = Path(image).relative_to(images_dir).parts
    return parts[0] if len(parts) > 1 else TOP_LEVEL_KIND


def _name_key(path: Path, folder: Path) -> str:
    """A file's path under its folder without the suffix: what ``named`` pairing matches."""
    return Path(path).relative_to(folder).with_suffix("").as_posix()


@dataclass
class PairSet:
    """The pairs to score, and how they were made (for the report)."""

    pairs: list[Pair]
    edges: tuple[float, ...]
    pairing: str
    seed: int
    images_dir: Path
    masks_dir: Path
    band_source: str
    n_images: int
    n_masks: int
    masks_outside_bands: int
    failed: list[Failure] = field(default_factory=list)
    invert: bool = False  # mask files are black = hole

    @property
    def border_split(self) -> bool:
        """True when every pair's mask has a border flag and both kinds are present."""
        flags = {p.mask.border for p in self.pairs}
        return flags == {True, False}

    @property
    def band_labels(self) -> list[str]:
        return [band_label(lo, hi) for lo, hi in pairwise(self.edges)]

    @property
    def kinds(self) -> list[str]:
        """The image kinds of the pairs, sorted."""
        return sorted({p.kind for p in self.pairs})


def make_pairs(
    images_dir: str | os.PathLike,
    masks_dir: str | os.PathLike,
    *,
    pairing: str = "seeded",
    seed: int = 0,
    edges: Sequence[float] = PAPER_BAND_EDGES,
    invert: bool = False,
    progress: ProgressCallback | None = None,
) -> PairSet:
    """Pair images with masks (see the module docstring); masks outside the bands are dropped.

    ``invert``: the mask files are black = hole (pconv's own files are white = hole).
    ``pairing="named"``: every image needs a mask of the same name (see the module docstring).
    """
    if pairing not in PAIRINGS:
        raise ConfigError(f"pairing {pairing!r}: choose {' or '.join(PAIRINGS)}")
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    if not images_dir.is_dir():
        raise InputError(f"{images_dir}: not a folder; --images takes a folder of images")
    images = list_images(images_dir)
    if not images:
        raise InputError(f"{images_dir}: no images found (png, jpg, webp, tif or bmp)")
    entries, source = find_masks(masks_dir)
    if not entries:
        raise InputError(f"{masks_dir}: no mask files found (white = hole PNGs)")
    entries, failed = measure_masks(entries, progress, invert=invert)
    edges = tuple(float(e) for e in edges)
    banded = [
        (k, entry, band_of(entry.hole_ratio, edges))
        for k, entry in enumerate(entries)
        if entry.hole_ratio is not None
    ]
    in_band = [(k, entry, band) for k, entry, band in banded if band is not None]
    outside = len(banded) - len(in_band)
    if not in_band:
        raise InputError(_no_pairs_message(masks_dir, edges, outside, failed))
    if pairing == "named":
        pairs = _named_pairs(images, images_dir, entries, masks_dir, edges)
        if not pairs:
            raise InputError(f"{masks_dir}: no image's mask lies in the bands "
                             f"({edges[0]:g},{edges[-1]:g}] (choose other --bands)")
    elif pairing == "seeded":
        # Over every listed mask, so that a mask keeps its image whatever the bands.
        assignment = seeded_assignment(len(entries), len(images), seed)
        pairs = [Pair(i, images[assignment[k]], entry, band)
                 for i, (k, entry, band) in enumerate(in_band)]
    else:
        # Image-major, so that each image is loaded once.
        pairs = [Pair(i * len(in_band) + j, image, entry, band)
                 for i, image in enumerate(images) for j, (_k, entry, band) in enumerate(in_band)]
    pairs = [replace(p, kind=image_kind(p.image, images_dir)) for p in pairs]
    return PairSet(pairs, edges, pairing, seed, images_dir, masks_dir, source, len(images),
                   len(entries), outside, failed, invert)


def _named_pairs(images: list[Path], images_dir: Path, entries: list[MaskEntry],
                 masks_dir: Path, edges: tuple[float, ...]) -> list[Pair]:
    """Each image with the mask of its name; masks outside the bands drop their image."""
    by_name: dict[str, MaskEntry] = {}
    for entry in entries:
        key = _name_key(entry.path, masks_dir)
        if key in by_name:
            raise InputError(f"{masks_dir}: two masks are named {key} (--pairs named matches "
                             "images to masks by name, whatever the suffix)")
        by_name[key] = entry
    missing = [image for image in images if _name_key(image, images_dir) not in by_name]
    if missing:
        first = _name_key(missing[0], images_dir)
        raise InputError(f"{masks_dir}: {len(missing)} image(s) have no mask of the same name "
                         f"(first: {first}); --pairs named needs one mask per image")
    pairs = []
    for image in images:
        entry = by_name[_name_key(image, images_dir)]
        band = band_of(entry.hole_ratio, edges) if entry.hole_ratio is not None else None
        if band is not None:
            pairs.append(Pair(len(pairs), image, entry, band))
    return pairs


def _no_pairs_message(masks_dir: Path, edges: tuple[float, ...], outside: int,
                      failed: list[Failure]) -> str:
    span = f"({edges[0]:g},{edges[-1]:g}]"
    parts = []
    if outside:
        parts.append(f"{outside} outside the bands {span} (choose other --bands)")
    if failed:
        parts.append(f"{len(failed)} unreadable (first: {failed[0].path}: {failed[0].reason})")
    return f"{masks_dir}: no mask to score: " + "; ".join(parts)


# --------------------------------------------------------------------------- preparing inputs


def fit_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Centre-crop to the aspect ratio of ``size`` (height, width), then resize (Lanczos)."""
    h, w = image.shape[:2]
    th, tw = size
    if (h, w) == (th, tw):
        return image
    if w * th > h * tw:  # wider than the target: crop the sides
        cw, ch = h * tw / th, float(h)
    else:
        cw, ch = float(w), w * th / tw
    box = ((w - cw) / 2, (h - ch) / 2, (w + cw) / 2, (h + ch) / 2)
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c]))
                   .resize((tw, th), Image.Resampling.LANCZOS, box=box))
        for c in range(image.shape[2])
    ]
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32)


def resize_mask(valid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a library mask to (height, width): it stays binary."""
    if valid.shape == tuple(size):
        return valid
    img = Image.fromarray(np.where(valid, 255, 0).astype(np.uint8))
    return np.asarray(img.resize((size[1], size[0]), Image.Resampling.NEAREST)) > 127


def hide_holes(images: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """What a method may see: the hole pixels set to 0."""
    return images * valid[..., None].astype(images.dtype)


def _reason(exc: Exception, path: Path) -> str:
    """An error message without the path it starts with (the path is shown beside it)."""
    text = str(exc)
    prefix = f"{path}: "
    return text[len(prefix):] if text.startswith(prefix) else text


class _Loader:
    """Loads and sizes the inputs of a pair; remembers files that failed and recent masks."""

    def __init__(self, size: tuple[int, int] | None, native: bool, invert: bool) -> None:
        self.size = size
        self.native = native
        self.invert = invert
        self.bad: dict[str, str] = {}
        self._image: tuple[tuple[str, tuple[int, int] | None], np.ndarray] | None = None
        self._masks: OrderedDict[str, np.ndarray] = OrderedDict()
        self._mask_bytes = 0

    def load(self, pair: Pair) -> tuple[np.ndarray, np.ndarray]:
        """(truth H×W×3 float32, valid H×W bool) at the evaluation size; InputError if not."""
        for path in (pair.mask.path, pair.image):
            if str(path) in self.bad:
                raise FileFailure(path, self.bad[str(path)])
        valid = self._mask(pair.mask)
        if self.native:
            truth = self._load_image(pair.image, None)
            valid = resize_mask(valid, truth.shape[:2])
        else:
            target = self.size or valid.shape
            truth = self._load_image(pair.image, target)
            valid = resize_mask(valid, target)
        if min(truth.shape[:2]) < SSIM_WINDOW:
            h, w = truth.shape[:2]
            raise FileFailure(pair.image, f"{w}x{h} is smaller than the {SSIM_WINDOW}-pixel "
                                          "SSIM window; evaluate at a larger --size")
        return truth, valid

    def _mask(self, entry: MaskEntry) -> np.ndarray:
        key = str(entry.path)
        if key in self._masks:
            self._masks.move_to_end(key)
            return self._masks[key]
        try:
            valid = load_mask(entry.path, invert=self.invert)
        except InputError as exc:
            self.bad[key] = _reason(exc, entry.path)
            raise FileFailure(entry.path, self.bad[key]) from None
        holes = valid.size - int(np.count_nonzero(valid))
        if entry.hole_pixels is not None and holes != entry.hole_pixels:
            read = " (read as black = hole)" if self.invert else ""
            self.bad[key] = (f"masks.csv says {entry.hole_pixels} hole pixels, the file has "
                             f"{holes}{read}; the file changed after its manifest was written")
            raise FileFailure(entry.path, self.bad[key])
        self._masks[key] = valid
        self._mask_bytes += valid.nbytes
        while self._mask_bytes > MASK_CACHE_BYTES and len(self._masks) > 1:
            _, old = self._masks.popitem(last=False)
            self._mask_bytes -= old.nbytes
        return valid

    def _load_image(self, path: Path, size: tuple[int, int] | None) -> np.ndarray:
        key = (str(path), None if size is None else tuple(size))
        if self._image is not None and self._image[0] == key:
            return self._image[1]
        try:
            image = load_image(path)
        except InputError as exc:
            self.bad[str(path)] = _reason(exc, path)
            raise FileFailure(path, self.bad[str(path)]) from None
        if size is not None:
            image = fit_image(image, size)
        image = np.ascontiguousarray(image, dtype=np.float32)
        self._image = (key, image)
        return image


# --------------------------------------------------------------------------- scoring


WidthScores = dict[str, dict[str, float]]  # width group label → hole scores


def score_output(
    truth: np.ndarray, valid: np.ndarray, output: np.ndarray,
    widths: np.ndarray | None = None,
) -> tuple[dict[str, float], np.ndarray, WidthScores]:
    """The composite of a method's output with the truth's known pixels, its scores (whole
    image and holes), and its hole scores per width group present (``widths``: the map of
    :func:`metrics.hole_width_groups`, computed here when not given)."""
    output = np.asarray(output, dtype=np.float32)
    if output.shape != truth.shape:
        raise ConfigError(f"a method returned shape {output.shape} for an input of {truth.shape}")
    comp = np.where(valid[..., None], truth, np.clip(output, 0.0, 1.0)).astype(np.float32)
    scores = image_scores(comp, truth)
    scores.update(hole_scores(comp, truth, ~valid))
    if widths is None:
        widths = hole_width_groups(valid)
    by_width = {label: hole_scores(comp, truth, widths == k)
                for k, label in enumerate(WIDTH_LABELS) if (widths == k).any()}
    return scores, comp, by_width


def _score_task(truth, valid, widths, output, keep: bool):
    scores, comp, by_width = score_output(truth, valid, output, widths)
    return scores, by_width, 0.0, comp if keep else None


def _inpaint_task(method, truth, valid, widths, keep: bool):
    """Run one per-image method on one pair (in a worker) and score it there."""
    masked = hide_holes(truth[None], valid[None])
    start = time.perf_counter()
    output = method.inpaint(masked, valid[None])[0]
    seconds = time.perf_counter() - start
    scores, comp, by_width = score_output(truth, valid, output, widths)
    return scores, by_width, seconds, comp if keep else None


class _InlineExecutor:
    """The executor interface without processes, for ``workers=1``."""

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # re-raised by future.result(), as a pool would
            future.set_exception(exc)
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def _make_executor(workers: int):
    if workers <= 1:
        return _InlineExecutor()
    # A fresh interpreter per worker: forking a process that runs torch threads can deadlock.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method),
                               initializer=limit_threads)


@dataclass
class _Pending:
    method: str
    pair: Pair
    truth: np.ndarray
    future: Future


@dataclass
class SampleRow:
    """One row of a band's sample grid."""

    pair: Pair
    masked: np.ndarray  # the input as shown: holes white
    truth: np.ndarray
    outputs: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class _MethodRun:
    method: Any
    scores: dict[int, dict[str, float]] = field(default_factory=dict)  # by pair index
    width_scores: dict[int, WidthScores] = field(default_factory=dict)  # by pair index
    seconds: float = 0.0
    images: int = 0
    warm: bool = False


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


class _Evaluation:
    def __init__(self, pair_set: PairSet, methods: Sequence[Any], *, size, native, batch_size,
                 workers, samples, lpips, progress) -> None:
        self.pair_set = pair_set
        self.runs = {m.name: _MethodRun(m) for m in methods}
        self.loader = _Loader(size, native, pair_set.invert)
        self.batch_size = batch_size
        self.workers = workers
        self.lpips = lpips
        self.progress = progress
        self.sample_ids = _sample_ids(pair_set.pairs, samples)
        self.samples: dict[int, SampleRow] = {}
        self.failed: list[Failure] = []
        self.skipped_pairs = 0
        self.sizes: set[tuple[int, int]] = set()
        self.done = 0
        self.total = len(pair_set.pairs) * len(self.runs)

    def run(self) -> None:
        pooled = [r for r in self.runs.values() if not r.method.batched]
        batched = [r for r in self.runs.values() if r.method.batched]
        chunk = max(self.batch_size, 8 * self.workers, 16)
        self._tick(0)
        executor = _make_executor(self.workers)
        try:
            pending: list[_Pending] = []
            for start in range(0, len(self.pair_set.pairs), chunk):
                items = self._load(self.pair_set.pairs[start:start + chunk])
                current = [self._submit(executor, r, item) for r in pooled for item in items]
                for r in batched:
                    current += self._run_batched(executor, r, items)
                # The workers finish the previous chunk while this one was being loaded.
                self._gather(pending)
                pending = current
            self._gather(pending)
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        executor.shutdown(wait=True)

    def _tick(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress("scoring", self.done, self.total)

    def _load(self, pairs: Sequence[Pair]
              ) -> list[tuple[Pair, np.ndarray, np.ndarray, np.ndarray]]:
        items = []
        for pair in pairs:
            try:
                truth, valid = self.loader.load(pair)
            except FileFailure as exc:
                self.skipped_pairs += 1
                if all(f.path != exc.failure.path for f in self.failed):
                    self.failed.append(exc.failure)
                self._tick(len(self.runs))
                continue
            self.sizes.add(truth.shape[:2])
            if pair.index in self.sample_ids:
                shown = np.where(valid[..., None], truth, 1.0).astype(np.float32)
                self.samples[pair.index] = SampleRow(pair, shown, truth)
            if valid.all():
                self.skipped_pairs += 1
                failure = Failure(str(pair.mask.path), "no hole pixel at the evaluation size "
                                                       "(the resized mask lost its holes)")
                if failure not in self.failed:
                    self.failed.append(failure)
                self._tick(len(self.runs))
                continue
            # Once per pair, not once per method: the distance transform is not free at 1024².
            items.append((pair, truth, valid, hole_width_groups(valid)))
        return items

    def _keep(self, pair: Pair) -> bool:
        return self.lpips is not None or pair.index in self.sample_ids

    def _submit(self, executor, run: _MethodRun, item) -> _Pending:
        pair, truth, valid, widths = item
        future = executor.submit(_inpaint_task, run.method, truth, valid, widths,
                                 self._keep(pair))
        return _Pending(run.method.name, pair, truth, future)

    def _run_batched(self, executor, run: _MethodRun, items) -> list[_Pending]:
        pending = []
        for batch in _batches(items, self.batch_size):
            truths = np.stack([item[1] for item in batch])
            valids = np.stack([item[2] for item in batch])
            masked = hide_holes(truths, valids)
            if not run.warm:  # first-call set-up (allocation, kernel choice) is not speed
                run.method.inpaint(masked[:1], valids[:1])
                run.warm = True
            start = time.perf_counter()
            outputs = np.asarray(run.method.inpaint(masked, valids))
            run.seconds += time.perf_counter() - start
            run.images += len(batch)
            if outputs.shape != truths.shape:
                raise ConfigError(f"method {run.method.name!r} returned shape {outputs.shape} "
                                  f"for inputs of {truths.shape}")
            for (pair, truth, valid, widths), output in zip(batch, outputs, strict=True):
                future = executor.submit(_score_task, truth, valid, widths, output,
                                         self._keep(pair))
                pending.append(_Pending(run.method.name, pair, truth, future))
        return pending

    def _gather(self, pending: list[_Pending]) -> None:
        comps: list[tuple[_Pending, dict[str, float], np.ndarray]] = []
        for item in pending:
            scores, by_width, seconds, comp = item.future.result()
            run = self.runs[item.method]
            run.scores[item.pair.index] = scores
            run.width_scores[item.pair.index] = by_width
            if not run.method.batched:
                run.seconds += seconds
                run.images += 1
            if comp is not None:
                comps.append((item, scores, comp))
                if item.pair.index in self.samples:
                    self.samples[item.pair.index].outputs[item.method] = comp
            self._tick(1)
        if self.lpips is not None:
            self._add_lpips(comps)

    def _add_lpips(self, comps) -> None:
        groups: dict[tuple, list] = {}
        for entry in comps:
            groups.setdefault((entry[0].method, entry[2].shape), []).append(entry)
        for group in groups.values():
            for i in range(0, len(group), self.batch_size):
                part = group[i:i + self.batch_size]
                values = self.lpips(np.stack([c for _, _, c in part]),
                                    np.stack([p.truth for p, _, _ in part]))
                for (_, scores, _), value in zip(part, values, strict=True):
                    scores["lpips"] = value


def _batches(items: list, size: int) -> Iterator[list]:
    """Consecutive runs of same-shape items, at most ``size`` long (a batch needs one shape)."""
    batch: list = []
    for item in items:
        if batch and (len(batch) == size or item[1].shape != batch[0][1].shape):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def _sample_ids(pairs: Sequence[Pair], per_band: int) -> set[int]:
    chosen: dict[int, list[int]] = {}
    for pair in pairs:
        band = chosen.setdefault(pair.band, [])
        if len(band) < per_band:
            band.append(pair.index)
    return {i for ids in chosen.values() for i in ids}


def evaluate(
    pair_set: PairSet,
    methods: Sequence[Any],
    *,
    size: tuple[int, int] | None = None,
    native: bool = False,
    batch_size: int = 8,
    workers: int = 1,
    samples: int = 0,
    lpips: bool | LpipsScorer = False,
    device: str = "auto",
    progress: ProgressCallback | None = None,
) -> Report:
    """Score every method on every pair and aggregate per band.

    ``methods`` are inpainters: objects with ``name`` and ``inpaint(images, valid)`` (see
    :mod:`pconv_cli.inference`); ``batched = False`` ones run one image at a time in the
    worker pool. ``size`` is (height, width). ``samples`` keeps that many pairs per band for
    the sample grids. ``lpips`` adds LPIPS: True loads the scorer (on ``device``) with
    :func:`metrics.load_lpips`, which fails in one line when the ``lpips`` package or its
    weights are not on this machine; a scorer it returned is used as it is.
    """
    methods = list(methods)
    if not methods:
        raise ConfigError("nothing to evaluate: give --model CKPT, --onnx FILE or --method NAMES")
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise ConfigError(f"method names must differ, got {', '.join(names)}")
    if size is not None and native:
        raise ConfigError("--size and --native exclude each other: choose one")
    if batch_size < 1 or workers < 1 or samples < 0:
        raise ConfigError("--batch-size and --workers must be at least 1, --samples at least 0")
    notices: list[str] = []
    scorer = load_lpips(device) if lpips is True else (lpips or None)
    lpips_setting = scorer.description if scorer else "not requested"
    # A pool costs a second or more to start: tiny runs are faster in this process.
    tasks = len(pair_set.pairs) * len(methods)
    workers = max(1, min(workers, tasks // MIN_TASKS_PER_WORKER))
    run = _Evaluation(pair_set, methods, size=size, native=native, batch_size=batch_size,
                      workers=workers, samples=samples, lpips=scorer, progress=progress)
    run.run()
    scored = len(pair_set.pairs) - run.skipped_pairs
    if scored == 0:
        first = run.failed[0] if run.failed else Failure("?", "unknown")
        raise InputError(f"no pair could be scored: every image or mask failed to load "
                         f"(first: {first.path}: {first.reason})")
    return _build_report(pair_set, run, size=size, native=native, batch_size=batch_size,
                         workers=workers, lpips_setting=lpips_setting, notices=notices)


# --------------------------------------------------------------------------- methods


def parse_methods(values: str | Sequence[str] | None) -> list[str]:
    """Method names from ``"telea,ns"`` (or several such strings), checked, duplicates dropped."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    names: list[str] = []
    for value in values:
        for name in (part.strip().lower() for part in value.split(",")):
            if not name:
                continue
            if is_routed(name):
                parse_method(name)  # a thin method that auto does not take is refused here
            elif name not in KNOWN_METHODS:
                raise ConfigError(
                    f"unknown method {name!r}; known methods: "
                    f"{', '.join((*KNOWN_METHODS, *ROUTED_METHODS))} "
                    "(a checkpoint goes to --model, an ONNX file to --onnx)"
                )
            if name not in names:
                names.append(name)
    return names


def is_routed(name: str) -> bool:
    """``auto`` or ``auto:NAME``: the bundled model with a classical method for thin holes."""
    return name.partition(":")[0] == AUTO


def parse_thin_widths(value: str | float | Sequence[float]) -> list[float]:
    """Thin-width thresholds (px) from ``"2,6"`` (or a number or a list), checked, duplicates
    dropped."""
    if isinstance(value, (int, float)):
        parts: list = [value]
    elif isinstance(value, str):
        parts = [part.strip() for part in value.split(",") if part.strip()]
    else:
        parts = list(value)
    widths: list[float] = []
    for part in parts:
        try:
            width = float(part)
        except ValueError:
            raise ConfigError(f"--thin-width {value}: give widths in pixels, such as 6 or "
                              "2,6,10") from None
        if check_thin_width(width) not in widths:
            widths.append(width)
    if not widths:
        raise ConfigError("--thin-width: give widths in pixels, such as 6 or 2,6,10")
    return widths


def routed_name(name: str, thin_width: float) -> str:
    """An ``auto`` method's name in a report: ``-wN`` added where its thin width is not
    restore's default (``auto:fsr-w2``)."""
    return name if thin_width == DEFAULT_THIN_WIDTH else f"{name}-w{thin_width:g}"


def default_methods() -> list[str]:
    """What evaluate scores when given no model and no method: the bundled model and the
    classical methods that are installed (telea and ns need OpenCV)."""
    try:
        import cv2  # noqa: F401
    except ImportError:
        opencv = []
    else:
        opencv = ["telea", "ns"]
    return ["pconv", *opencv, "biharmonic"]


def file_method_names(paths: Sequence[Path], reserved: Sequence[str] = ()) -> list[str]:
    """Names for model files: their stems, lengthened only as far as needed to differ."""
    paths = [Path(p) for p in paths]
    resolved = [p.resolve() for p in paths]
    if len(set(resolved)) != len(resolved):
        raise ConfigError("the same model file is given twice")
    styles = (lambda p: p.stem, lambda p: p.name, lambda p: f"{p.parent.name}/{p.name}", str)
    for style in styles:
        names = [style(p) for p in paths]
        if len(set(names)) == len(names) and not set(names) & set(reserved):
            return names
    return [str(p) for p in resolved]


def parse_flips(value: str | int | Sequence[int]) -> list[int]:
    """Flip-ensemble sizes from ``"1,4"`` (or an int or a list), checked, duplicates dropped."""
    from .inference import check_flips, ensemble_sizes

    if isinstance(value, int):
        parts: list = [value]
    elif isinstance(value, str):
        parts = [part.strip() for part in value.split(",") if part.strip()]
    else:
        parts = list(value)
    flips: list[int] = []
    for part in parts:
        try:
            number = int(part)
        except ValueError:
            raise ConfigError(
                f"--flips {value}: give 1, {ensemble_sizes()}, or a list such as 1,4") from None
        if check_flips(number) not in flips:
            flips.append(number)
    if not flips:
        raise ConfigError(f"--flips: give 1, {ensemble_sizes()}, or a list such as 1,4")
    return flips


def parse_blends(value: str | Sequence[str]) -> list[str]:
    """Seam-blending choices from ``"poisson,none"`` (or a list), checked, duplicates dropped."""
    from .seams import check_blend

    parts = value.split(",") if isinstance(value, str) else list(value)
    blends: list[str] = []
    for part in (p.strip() for p in parts):
        if part and check_blend(part) not in blends:
            blends.append(part)
    if not blends:
        raise ConfigError("--blend: give poisson or none, or both as poisson,none")
    return blends


def variant_name(name: str, flips: int, blend: str = "poisson") -> str:
    """A model's name in a report: ``pconv`` as restore runs it by default; ``-flips4`` for a
    4-flip ensemble, ``-noblend`` without seam blending (``pconv-flips4-noblend``)."""
    return name + (f"-flips{flips}" if flips > 1 else "") + ("-noblend" if blend == "none" else "")


def build_methods(
    models: Sequence[str | os.PathLike] = (),
    onnx: Sequence[str | os.PathLike] = (),
    methods: Sequence[str] = (),
    device: str = "auto",
    flips: str | Sequence[int] = (1,),
    blend: str | Sequence[str] = ("poisson",),
    thin_width: str | float | Sequence[float] = (DEFAULT_THIN_WIDTH,),
) -> list[Any]:
    """Inpainters for checkpoints, ONNX files and named methods (see :data:`KNOWN_METHODS`).

    Each model (a checkpoint, an ONNX file or ``pconv``) is scored once per combination of
    ``flips`` (a list, or ``"1,4"`` as ``--flips`` takes it: alone for 1, as a flip ensemble,
    ``inference.FLIP_ENSEMBLES``, for 2, 4 and 8) and ``blend`` (``"poisson,none"``: with and
    without seam blending, :mod:`pconv_cli.seams`), named by :func:`variant_name`. Classical
    methods are built first, so a missing optional dependency fails before any model is loaded.
    ``auto`` and ``auto:NAME`` (:mod:`pconv_cli.routing`) are the bundled model in each of
    those variants with a classical method for the hole regions up to each ``thin_width``
    (a list, or ``"2,6"``) px wide, named by :func:`routed_name` and :func:`variant_name`.
    Given nothing at all, it builds :func:`default_methods`.
    """
    names = parse_methods(list(methods))
    variants = [(f, b) for f in parse_flips(flips) for b in parse_blends(blend)]
    widths = parse_thin_widths(thin_width)
    if not (models or onnx or names):
        names = default_methods()
    classical = {n: classical_inpainter(n) for n in names if n in CLASSICAL_METHODS}
    thin = {n: classical_inpainter(parse_method(n)[1]) for n in names if is_routed(n)}
    files = [Path(p) for p in [*models, *onnx]]
    file_names = file_method_names(files, reserved=names)
    built: list[Any] = []
    for i, (path, name) in enumerate(zip(files, file_names, strict=True)):
        make = _torch_inpainter if i < len(models) else _onnx_inpainter
        built += [make(path, device, variant_name(name, f, b), f, b) for f, b in variants]
    for name in names:
        if name == "pconv":
            from .inference import default_model_path

            built += [_torch_inpainter(default_model_path(), device, variant_name("pconv", f, b),
                                       f, b) for f, b in variants]
        elif is_routed(name):
            from .inference import default_model_path
            from .routing import RoutedInpainter

            for f, b in variants:
                model = _torch_inpainter(default_model_path(), device, variant_name("pconv", f, b),
                                         f, b)
                built += [RoutedInpainter(model, thin[name], w,
                                          name=variant_name(routed_name(name, w), f, b))
                          for w in widths]
        else:
            built.append(classical[name])
    return built


def _torch_inpainter(path: Path, device: str, name: str, flips: int, blend: str) -> Any:
    from .inference import TorchInpainter

    return TorchInpainter.from_checkpoint(path, device, name=name, flips=flips, blend=blend)


def _onnx_inpainter(path: Path, device: str, name: str, flips: int, blend: str) -> Any:
    from .inference import OnnxInpainter  # it reports a missing ONNX Runtime itself

    return OnnxInpainter(path, device=device, name=name, flips=flips, blend=blend)


# --------------------------------------------------------------------------- aggregation


@dataclass
class BandStats:
    """Mean and standard deviation (over images, ddof 0) of each metric in one group."""

    n: int
    mean: dict[str, float]
    std: dict[str, float]
    psnr_infinite: int = 0  # images reconstructed exactly: their PSNR is infinite

    def to_json(self, metrics: Sequence[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"n": self.n}
        out.update({m: _json_number(self.mean.get(m, math.nan)) for m in metrics})
        out.update({f"{m}_std": _json_number(self.std.get(m, math.nan)) for m in metrics})
        out["psnr_infinite"] = self.psnr_infinite
        return out


def _json_number(value: float) -> float | None:
    """JSON has no infinity or NaN: both become null (see ``settings["null"]``)."""
    return float(value) if math.isfinite(value) else None


def band_stats(scores: Sequence[dict[str, float]], metrics: Sequence[str]) -> BandStats:
    mean, std = {}, {}
    for metric in metrics:
        values = np.array([s[metric] for s in scores if metric in s], dtype=np.float64)
        if len(values) == 0:
            mean[metric] = std[metric] = math.nan
        elif np.isinf(values).any():
            # One exact reconstruction makes the mean infinite; a spread is then undefined.
            mean[metric], std[metric] = float(np.mean(values)), math.nan
        else:
            mean[metric], std[metric] = float(np.mean(values)), float(np.std(values))
    # Width groups have only a hole PSNR; elsewhere an exact hole is an exact image.
    infinite = sum(1 for s in scores
                   if math.isinf(s.get("psnr", 0.0)) or math.isinf(s.get("hole_psnr", 0.0)))
    return BandStats(len(scores), mean, std, infinite)


@dataclass
class MethodResult:
    name: str
    backend: str
    source: str
    bands: dict[str, BandStats]
    overall: BandStats
    border_split: dict[str, dict[str, BandStats]]  # "no-border"/"border" → band → stats
    seconds_per_image: float
    kinds: dict[str, BandStats] = field(default_factory=dict)  # image kind → stats
    widths: dict[str, BandStats] = field(default_factory=dict)  # width group → hole stats
    kind_widths: dict[str, dict[str, BandStats]] = field(default_factory=dict)

    def to_json(self, metrics: Sequence[str]) -> dict[str, Any]:
        hole = [m for m in metrics if m in HOLE_METRICS]
        out: dict[str, Any] = {
            "bands": {label: s.to_json(metrics) for label, s in self.bands.items()},
            "overall": self.overall.to_json(metrics),
            "kinds": {kind: s.to_json(metrics) for kind, s in self.kinds.items()},
            "widths": {label: s.to_json(hole) for label, s in self.widths.items()},
            "kind_widths": {
                kind: {label: s.to_json(hole) for label, s in widths.items()}
                for kind, widths in self.kind_widths.items()
            },
            "seconds_per_image": _json_number(self.seconds_per_image),
        }
        if self.border_split:
            out["border_split"] = {
                kind: {label: s.to_json(metrics) for label, s in bands.items()}
                for kind, bands in self.border_split.items()
            }
        return out


def _build_report(pair_set: PairSet, run: _Evaluation, *, size, native, batch_size, workers,
                  lpips_setting, notices) -> Report:
    metrics = [*BASE_METRICS]
    if run.lpips is not None:
        metrics.append("lpips")
    labels = pair_set.band_labels
    split = pair_set.border_split
    pairs = {p.index: p for p in pair_set.pairs}
    results = {}
    for name, method_run in run.runs.items():
        scored = [(pairs[i], s) for i, s in sorted(method_run.scores.items())]

        def stats(keep: Callable[[Pair], bool], scored=scored) -> BandStats:
            return band_stats([s for p, s in scored if keep(p)], metrics)

        bands = {label: stats(lambda p, b=b: p.band == b) for b, label in enumerate(labels)}
        border_split = {}
        if split:
            for flag, kind in BORDER_NAMES.items():
                border_split[kind] = {
                    label: stats(lambda p, b=b, f=flag: p.band == b and p.mask.border == f)
                    for b, label in enumerate(labels)
                }
        method = method_run.method
        seconds = method_run.seconds / method_run.images if method_run.images else math.nan
        by_width = [(pairs[i], w) for i, w in sorted(method_run.width_scores.items())]

        def width_stats(label: str, keep: Callable[[Pair], bool], by_width=by_width
                        ) -> BandStats:
            return band_stats([w[label] for p, w in by_width if keep(p) and label in w],
                              list(HOLE_METRICS))

        kinds = pair_set.kinds
        results[name] = MethodResult(
            name, method.backend, method.source,
            bands, stats(lambda p: True), border_split, seconds,
            kinds={k: stats(lambda p, k=k: p.kind == k) for k in kinds},
            widths={w: width_stats(w, lambda p: True) for w in WIDTH_LABELS},
            kind_widths={k: {w: width_stats(w, lambda p, k=k: p.kind == k) for w in WIDTH_LABELS}
                         for k in kinds},
        )
    scored_pairs = len(pair_set.pairs) - run.skipped_pairs
    settings = _settings(pair_set, results, run, size=size, native=native, batch_size=batch_size,
                         workers=workers, lpips_setting=lpips_setting, scored_pairs=scored_pairs)
    failed = [*pair_set.failed, *run.failed]
    samples: dict[str, list[SampleRow]] = {}
    for index in sorted(run.samples):
        row = run.samples[index]
        samples.setdefault(labels[row.pair.band], []).append(row)
    return Report(settings, results, metrics, labels, split, failed, notices, samples)


def _size_text(size: tuple[int, int]) -> str:
    return f"{size[1]}x{size[0]}"


def _settings(pair_set: PairSet, results, run: _Evaluation, *, size, native, batch_size, workers,
              lpips_setting, scored_pairs) -> dict[str, Any]:
    if native:
        sizing = ("each image at its own size (models pad to their multiple, the padding "
                  "counting as hole, and crop back); its mask resized (nearest) to it")
    elif size is not None:
        sizing = ("images centre-cropped to that aspect ratio and resized (Lanczos); masks "
                  "resized (nearest) where their size differs")
    else:
        sizing = ("each image centre-cropped to its mask's aspect ratio and resized (Lanczos) "
                  "to the mask's size")
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for module, label in (("skimage", "scikit-image"), ("torch", "torch"),
                          ("onnxruntime", "onnxruntime"), ("cv2", "opencv")):
        if module in sys.modules:
            versions[label] = str(getattr(sys.modules[module], "__version__", "?"))
    return {
        "pconv_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "images": str(pair_set.images_dir),
        "masks": str(pair_set.masks_dir),
        "n_images": pair_set.n_images,
        "n_masks": pair_set.n_masks,
        "pairing": pair_set.pairing,
        "seed": pair_set.seed,
        "pairs": scored_pairs,
        "pairs_skipped": run.skipped_pairs,
        "masks_outside_bands": pair_set.masks_outside_bands,
        "size": "native" if native else (_size_text(size) if size else "mask size"),
        "sizing": sizing,
        "sizes_scored": sorted(_size_text(s) for s in run.sizes),
        "bands": list(pair_set.edges),
        "band_source": pair_set.band_source,
        "mask_files": "black = hole" if pair_set.invert else "white = hole",
        "border_split": pair_set.border_split,
        "metrics": {
            "on": "the composite: known pixels from the truth, holes from the method; "
                  "methods see the holes as 0",
            "range": "images in [0, 1]",
            "l1": "mean absolute error over all pixels and channels of the whole image, "
                  "in percent",
            "psnr": {"data_range": 1.0, "unit": "dB"},
            "ssim": {"implementation": "skimage.metrics.structural_similarity",
                     **SSIM_SETTINGS},
            "lpips": lpips_setting,
            "hole_l1": "mean absolute error over the hole pixels and channels only, in percent",
            "hole_psnr": {"data_range": 1.0, "unit": "dB", "over": "the hole pixels only"},
            "hole_widths": {
                "groups": {label: f"measured width >= {low:g} px"
                           for label, low in WIDTH_GROUPS},
                "measure": "each 8-connected hole region: 2*r - 1 px, r = its largest "
                           "Euclidean distance from a hole pixel to the nearest known pixel",
                "scores": "hole_l1 and hole_psnr over the pixels of the group's regions; "
                          "n = images with such regions",
            },
            "std": "population standard deviation over images (ddof 0)",
        },
        "kinds": {
            "rule": "the first sub-folder of the images folder an image lies in; images "
                    f"directly in it are {TOP_LEVEL_KIND!r}",
            "pairs": {kind: sum(1 for p in pair_set.pairs if p.kind == kind)
                      for kind in pair_set.kinds},
        },
        "null": "JSON has no infinity: a null psnr with n > 0 means at least one image was "
                "reconstructed exactly (infinite PSNR; psnr_infinite counts them); null also "
                "marks values of empty bands and undefined spreads",
        "seconds_per_image": "time inside the method per image: models at the batch size on "
                             "their device (first call excluded), per-image methods on one "
                             "worker core",
        "methods": [{"name": r.name, "backend": r.backend, "source": r.source}
                    for r in results.values()],
        "batch_size": batch_size,
        "workers": workers,
        "versions": versions,
    }


# --------------------------------------------------------------------------- the report


# Decimals shown in the tables.
DIGITS = {"l1": 2, "psnr": 2, "ssim": 4, "lpips": 4, "hole_l1": 2, "hole_psnr": 2}


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


@dataclass
class Report:
    settings: dict[str, Any]
    methods: dict[str, MethodResult]
    metrics: list[str]
    band_labels: list[str]
    border_split: bool
    failed: list[Failure]
    notices: list[str]
    samples: dict[str, list[SampleRow]] = field(default_factory=dict)

    @property
    def kinds(self) -> list[str]:
        first = next(iter(self.methods.values()))
        return list(first.kinds)

    def rows(self, metric: str) -> list[TableRow]:
        """One metric's table: bands (with border / no-border lines), the overall line, and
        with several image kinds a line per kind; hole metrics add a line per hole-width group
        under the overall line and under each kind."""
        names = list(self.methods)

        def row(label: str, pick: Callable[[MethodResult], BandStats], sub=False,
                section=False) -> TableRow:
            stats = {name: pick(self.methods[name]) for name in names}
            values = {name: s.mean.get(metric, math.nan) for name, s in stats.items()}
            n = stats[names[0]].n
            best = best_of(metric, values) if len(names) > 1 else set()
            return TableRow(label, n, values, best, sub, section)

        def width_rows(pick: Callable[[MethodResult], dict[str, BandStats]]) -> list[TableRow]:
            if metric not in HOLE_METRICS:
                return []
            return [row(f"holes {w}", lambda r, w=w: pick(r)[w], sub=True)
                    for w in WIDTH_LABELS]

        out = []
        for label in self.band_labels:
            out.append(row(label, lambda r, lb=label: r.bands[lb]))
            if self.border_split:
                for kind in BORDER_NAMES.values():
                    out.append(row(kind, lambda r, lb=label, k=kind: r.border_split[k][lb], True))
        out.append(row(OVERALL, lambda r: r.overall, section=True))
        out += width_rows(lambda r: r.widths)
        if len(self.kinds) > 1:
            for k, kind in enumerate(self.kinds):
                out.append(row(f"kind {kind}", lambda r, kd=kind: r.kinds[kd], section=k == 0))
                out += width_rows(lambda r, kd=kind: r.kind_widths[kd])
        return out

    # ---- JSON

    def to_json(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "methods": {name: r.to_json(self.metrics) for name, r in self.methods.items()},
            "failed": [{"path": f.path, "reason": f.reason} for f in self.failed],
        }

    def json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"

    def write_json(self, path: str | os.PathLike) -> Path:
        atomic_write_text(path, self.json_text())
        return Path(path)

    # ---- CSV: one line per method, band and border set (long format, for plotting)

    def csv_text(self) -> str:
        columns = ["method", "backend", "band", "border", "kind", "width", "n"]
        for metric in self.metrics:
            columns += [metric, f"{metric}_std"]
        columns += ["psnr_infinite", "seconds_per_image"]
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        for name, result in self.methods.items():
            # (band, border, image kind, hole width, stats)
            groups = [(label, "all", "all", "all", s) for label, s in result.bands.items()]
            for border, bands in result.border_split.items():
                groups += [(label, border, "all", "all", s) for label, s in bands.items()]
            groups.append((OVERALL, "all", "all", "all", result.overall))
            groups += [(OVERALL, "all", "all", w, s) for w, s in result.widths.items()]
            for kind, stats in result.kinds.items():
                groups.append((OVERALL, "all", kind, "all", stats))
                groups += [(OVERALL, "all", kind, w, s)
                           for w, s in result.kind_widths[kind].items()]
            for label, border, kind, width, stats in groups:
                line = [name, result.backend, label, border, kind, width, stats.n]
                for metric in self.metrics:
                    line += [_csv_number(stats.mean.get(metric, math.nan)),
                             _csv_number(stats.std.get(metric, math.nan))]
                line += [stats.psnr_infinite, _csv_number(result.seconds_per_image)]
                writer.writerow(line)
        return buf.getvalue()

    def write_csv(self, path: str | os.PathLike) -> Path:
        atomic_write_text(path, self.csv_text())
        return Path(path)

    # ---- Markdown

    def markdown_text(self) -> str:
        s = self.settings
        lines = ["# pconv evaluate", ""]
        lines += [
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
        names = list(self.methods)
        for metric in self.metrics:
            better = "higher" if HIGHER_IS_BETTER[metric] else "lower"
            lines += [f"## {METRIC_TITLES[metric]} — {better} is better", ""]
            lines.append("| band | n | " + " | ".join(names) + " |")
            lines.append("|---|---:|" + "---:|" * len(names))
            for row in self.rows(metric):
                label = f"&nbsp;&nbsp;{row.label}" if row.sub else row.label
                label = label.replace("<", "&lt;").replace(">", "&gt;")
                cells = []
                for name in names:
                    text = format_metric(metric, row.values[name])
                    cells.append(f"**{text}**" if name in row.best else text)
                lines.append(f"| {label} | {row.n} | " + " | ".join(cells) + " |")
            lines.append("")
        lines += ["## Speed", "", "| method | backend | seconds per image |", "|---|---|---:|"]
        for name, result in self.methods.items():
            seconds = result.seconds_per_image
            text = f"{seconds:.4f}" if math.isfinite(seconds) else "–"
            lines.append(f"| {name} | {result.backend} | {text} |")
        lines += ["", f"Seconds per image: {s['seconds_per_image']}.", ""]
        if self.failed:
            lines += ["## Skipped files", ""]
            lines += [f"- `{f.path}`: {f.reason}" for f in self.failed]
            lines.append("")
        if self.notices:
            lines += ["## Notes", ""] + [f"- {n}" for n in self.notices] + [""]
        return "\n".join(lines)

    def write_markdown(self, path: str | os.PathLike) -> Path:
        atomic_write_text(path, self.markdown_text())
        return Path(path)

    # ---- plot

    def write_plot(self, path: str | os.PathLike) -> bool:
        """Metric against band, one line per method; False (and a notice) without matplotlib."""
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError:
            self.notices.append("report.png skipped: matplotlib is not installed "
                                "(pip install 'pconv[plot]')")
            return False
        fig = Figure(figsize=(4.2 * len(self.metrics), 3.8), layout="constrained")
        FigureCanvasAgg(fig)
        x = np.arange(len(self.band_labels))
        for k, metric in enumerate(self.metrics):
            ax = fig.add_subplot(1, len(self.metrics), k + 1)
            for name, result in self.methods.items():
                y = [result.bands[label].mean.get(metric, math.nan) for label in self.band_labels]
                y = [v if math.isfinite(v) else math.nan for v in y]  # inf is not drawable
                ax.plot(x, y, marker="o", label=name)
            ax.set_xticks(x, self.band_labels, rotation=45, ha="right", fontsize=8)
            ax.set_xlabel("hole-to-image ratio")
            better = "higher" if HIGHER_IS_BETTER[metric] else "lower"
            ax.set_title(f"{METRIC_TITLES[metric]} ({better} is better)", fontsize=10)
            ax.grid(alpha=0.3)
        fig.axes[0].legend(fontsize=8)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=120)
        return True

    # ---- sample grids

    def write_samples(self, folder: str | os.PathLike) -> list[Path]:
        """One PNG per band: a row per sample pair, input | each method | truth."""
        written = []
        for label, rows in self.samples.items():
            path = Path(folder) / f"band_{_slug(label)}.png"
            grid = sample_grid(rows, list(self.methods))
            with atomic_path(path) as tmp:
                Image.fromarray(grid).save(tmp, format="PNG")
            written.append(path)
        return written

    # ---- everything

    def write_all(self, out_dir: str | os.PathLike) -> list[Path]:
        """report.json, .csv, .md, .png (when matplotlib is there) and the sample grids."""
        out_dir = Path(out_dir)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(
                f"{out_dir}: cannot create the report folder ({exc.strerror or exc})"
            ) from None
        written = [
            self.write_json(out_dir / "report.json"),
            self.write_csv(out_dir / "report.csv"),
        ]
        if self.write_plot(out_dir / "report.png"):
            written.append(out_dir / "report.png")
        written += self.write_samples(out_dir / "samples")
        # Last, so that it lists the notices of the writers above.
        written.append(self.write_markdown(out_dir / "report.md"))
        return written


def _csv_number(value: float) -> str:
    if math.isnan(value):
        return ""
    return repr(float(value))  # "inf" for an exact reconstruction; full precision otherwise


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
