"""Which (image, mask) pairs are scored, in which hole-ratio band and image kind.

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

Files that cannot be used are :class:`Failure` s: reported beside the scores, never fatal
while some pair can still be scored.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from ..imaging import list_images, load_mask
from ..masks import MANIFEST, PAPER_BAND_EDGES, band_label, band_of, hole_ratio, read_manifest

PAIRINGS = ("seeded", "all", "named")
TOP_LEVEL_KIND = "photo"  # the kind of images directly in the images folder

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


def failure_reason(exc: Exception, path: Path) -> str:
    """An error message without the path it starts with (the path is shown beside it)."""
    text = str(exc)
    prefix = f"{path}: "
    return text[len(prefix):] if text.startswith(prefix) else text


# --------------------------------------------------------------------------- masks


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
                failed.append(Failure(str(entry.path), failure_reason(exc, entry.path)))
            else:
                holes = valid.size - int(np.count_nonzero(valid))
                entry = replace(entry, hole_ratio=hole_ratio(valid), hole_pixels=holes)
            done += 1
            if progress is not None:
                progress("masks", done, todo)
        measured.append(entry)
    return measured, failed


# --------------------------------------------------------------------------- pairs


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
