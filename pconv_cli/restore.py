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
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import __version__
from .classical import ClassicalInpainter
from .errors import ConfigError, InputError, PconvError
from .fileio import atomic_path, atomic_write_text
from .imaging import IMAGE_SUFFIXES
from .restore_io import (
    DEFAULT_MAX_PIXELS,
    FORMAT_CHOICES,
    FORMAT_SUFFIX,
    UNSUPPORTED_SUFFIXES,
    ImageFile,
    alpha_mask,
    grow_holes,
    model_rgb,
    native_color,
    output_format,
    parse_color,
    pixel_limit,
    read_image,
    read_mask,
    read_painted_mask,
    resize_mask,
    write_image,
)

STRATEGIES = ("crop", "resize", "original")
MASK_SOURCES = ("masks", "alpha", "detect")
PREVIEW_DIR = "_previews"
DETECTED_MASKS_DIR = "_masks"  # in OUT: the detected masks a run used (white = hole)
PREVIEW_SIDE = 1024  # longest side of each panel of a --concat preview
_GRID = 8  # hole regions are found on a grid of 8×8-pixel cells (cheap, and merges speckles)
# A mask that marks more than this share of its image as hole is most likely inverted (black =
# hole read as white = hole): the file is restored, with a warning naming --invert-mask.
HOLE_WARNING_FRACTION = 0.5

if TYPE_CHECKING:  # torch is imported where it is used: planning a run needs none of it
    from .detect import _Detector
    from .inference import Inpainter


@dataclass
class RestoreOptions:
    """Everything ``pconv restore`` can be told; the defaults are the CLI's.

    Masks come from exactly one of: ``masks`` (a folder mirroring the input tree, paired by
    relative path and stem), ``mask`` (one file for every image), ``mask_from="alpha"`` (the
    image's transparent pixels), ``mask_from="detect"`` (found by the damage detector:
    ``detector``, else the bundled one; ``threshold``, ``grow``, ``min_area`` and ``tile`` as
    in ``pconv detect``; the masks used are kept in ``OUT/_masks``). Without any of them the
    detector is used where one is available (:meth:`validate` sets ``mask_from``).

    ``mask_color`` (with ``masks`` or ``mask``): the mask files are painted copies of the
    images, the pixels within ``color_tolerance`` (8-bit RGB distance) of that colour being
    the holes.

    Large images: when the longest side exceeds ``hd_trigger``, ``hd_strategy`` decides:
    ``crop`` inpaints a crop around each hole region with ``hd_margin`` pixels of context, at
    the image's own resolution; a crop longer than ``hd_size`` is split into overlapping tiles
    of at most ``hd_size`` (each keeps the fill of its own part, read with ``hd_margin`` of
    context around it), so a hair-thin hole is never shrunk away. ``resize`` infers a copy
    whose longest side is ``hd_size`` (the one strategy that changes the resolution, for users
    who ask for it), ``original`` the whole image in one pass. Only hole pixels are replaced.

    A model call holds at most ``batch_size`` same-size inputs and at most ``hd_size``²
    pixels (a single larger input, an image under the trigger, still runs on its own): the
    model's memory, which grows with the pixels of a call, stays that of one hd_size input.
    """

    masks: Path | None = None
    mask: Path | None = None
    mask_from: str = "masks"
    invert_mask: bool = False
    resize_masks: bool = False
    grow_mask: int = 0  # pixels each hole is grown by (after resizing)
    recursive: bool = False
    format: str = "keep"
    quality: int | None = None
    hd_strategy: str = "crop"
    hd_trigger: int = 1024
    hd_margin: int = 128
    hd_size: int = 768
    batch_size: int = 4
    workers: int = 4
    skip_existing: bool = True
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    shard: tuple[int, int] | None = None  # (k, n): the k-th of n shares, 1 ≤ k ≤ n
    concat: bool = False
    detector: Path | None = None  # a detector checkpoint (or .onnx); None: the bundled one
    threshold: float = 0.5
    grow: int = 0  # pixels detected damage is grown by (part of the kept mask)
    min_area: int = 0
    tile: int = 768  # detection.DEFAULT_TILE
    mask_color: str | None = None
    color_tolerance: float = 40.0

    def validate(self) -> None:
        from .detect import bundled_detector_installed, check_detection_settings

        if self.mask_from not in MASK_SOURCES:
            raise ConfigError(f"--mask-from {self.mask_from!r}: choose masks, alpha or detect")
        sources = [self.masks is not None, self.mask is not None, self.mask_from == "alpha",
                   self.mask_from == "detect"]
        if sum(sources) > 1:
            raise ConfigError("give only one of --masks DIR, --mask FILE, --mask-from alpha and "
                              "--mask-from detect")
        can_detect = self.detector is not None or bundled_detector_installed()
        if sum(sources) == 0:
            if not can_detect:
                raise ConfigError("no masks given: pass --masks DIR, --mask FILE or --mask-from "
                                  "alpha, or --detector CKPT to find the damage (no bundled "
                                  "detector is installed)")
            self.mask_from = "detect"
        if self.mask_from == "detect":
            if not can_detect:
                raise ConfigError("--mask-from detect: no bundled detector is installed; pass "
                                  "--detector CKPT")
            check_detection_settings(self.threshold, self.grow, self.min_area, self.tile)
        elif self.detector is not None:
            raise ConfigError("--detector finds the masks: it does not go with --masks, --mask "
                              "or --mask-from alpha")
        if self.mask_color is not None:
            if self.masks is None and self.mask is None:
                raise ConfigError("--mask-color reads painted copies of the images given with "
                                  "--masks DIR (or --mask FILE)")
            if self.invert_mask:
                raise ConfigError("--invert-mask does not apply to painted masks (--mask-color): "
                                  "the painted pixels are the holes")
            parse_color(self.mask_color)
            if not 0 <= self.color_tolerance <= 442:
                raise ConfigError(f"--color-tolerance {self.color_tolerance:g}: must be between "
                                  "0 and 442 (the RGB distance from black to white)")
        if self.format not in FORMAT_CHOICES:
            choices = ", ".join(FORMAT_CHOICES)
            raise ConfigError(f"--format {self.format!r}: choose one of {choices}")
        if self.quality is not None and not 1 <= self.quality <= 100:
            raise ConfigError(f"--quality {self.quality}: must be between 1 and 100")
        if self.hd_strategy not in STRATEGIES:
            raise ConfigError(
                f"--hd-strategy {self.hd_strategy!r}: choose one of {', '.join(STRATEGIES)}"
            )
        for name in ("hd_trigger", "hd_size", "batch_size", "workers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
        if self.hd_margin < 0:
            raise ConfigError("--hd-margin must be ≥ 0")
        if self.grow_mask < 0:
            raise ConfigError("--grow-mask must be ≥ 0")
        if self.max_pixels is not None and self.max_pixels < 1:
            raise ConfigError("--max-pixels must be positive")
        if self.shard is not None:
            k, n = self.shard
            if not 1 <= k <= n:
                raise ConfigError(f"--shard {k}/{n}: K must be between 1 and N")


@dataclass(frozen=True)
class RestoreTask:
    """One input file and where its mask and output are."""

    source: Path
    relative: Path  # the input's path under the input folder (its name for a single file)
    output: Path
    mask: Path | None = None
    preview: Path | None = None
    detected_mask: Path | None = None  # where a detected mask is kept (OUT/_masks/...)


@dataclass
class FileResult:
    relative: str
    status: str  # "restored", "unchanged" (no holes: copied), "skipped" (exists), "failed"
    reason: str = ""
    output: Path | None = None
    warning: str = ""  # restored, but worth a look (a mask that is mostly hole)


@dataclass
class RestoreReport:
    results: list[FileResult]
    backend: str
    seconds: float
    interrupted: bool = False
    remaining: int = 0  # files not reached because of an interruption
    ignored: int = 0  # files that are not images
    failures_csv: Path | None = None
    shard: tuple[int, int] | None = None
    notes: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted

    @property
    def files_per_second(self) -> float:
        done = self.count("restored") + self.count("unchanged")
        return done / self.seconds if self.seconds > 0 else 0.0


# ----------------------------------------------------------------------------- sharding


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/8"`` → (2, 8): the second of eight shares."""
    try:
        k, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text!r}: expected K/N, e.g. 1/4") from None
    if not 1 <= k <= n:
        raise ConfigError(f"--shard {text}: K must be between 1 and N")
    return k, n


def shard_for_rank(shard: tuple[int, int] | None,
                   environ: Mapping[str, str] = os.environ) -> tuple[int, int] | None:
    """Combine ``--shard K/N`` with a torchrun rank (RANK / WORLD_SIZE in the environment).

    Under torchrun each rank takes its own share of the given shard (or of everything), so
    ``--shard 2/3`` on three machines × four GPUs splits the folder into twelve shares, each
    file in exactly one.
    """
    try:
        world = int(environ.get("WORLD_SIZE", "1"))
        rank = int(environ.get("RANK", "0"))
    except ValueError:
        raise ConfigError("RANK / WORLD_SIZE in the environment are not integers") from None
    if world <= 1:
        return shard
    if not 0 <= rank < world:
        raise ConfigError(f"RANK={rank} is outside WORLD_SIZE={world}")
    k, n = shard or (1, 1)
    return (k - 1) * world + rank + 1, n * world


def in_shard(index: int, shard: tuple[int, int] | None) -> bool:
    """File ``index`` (in sorted relative-path order) is in shard k of n if index ≡ k-1 mod n."""
    return shard is None or index % shard[1] == shard[0] - 1


def rank_device(device: str, environ: Mapping[str, str] = os.environ) -> str:
    """Under torchrun, ``auto``/``cuda`` means this rank's own GPU (LOCAL_RANK)."""
    import torch

    local = environ.get("LOCAL_RANK")
    if local is None or device not in ("auto", "cuda") or not torch.cuda.is_available():
        return device
    return f"cuda:{int(local) % torch.cuda.device_count()}"


# ----------------------------------------------------------------------------- planning


def _inside(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or lies somewhere under it (both resolved)."""
    return path == folder or folder in path.parents


def discover(input_path: Path, exclude: list[Path], *, recursive: bool
             ) -> tuple[list[Path], list[Path], int, int]:
    """Files under ``input_path``: (images, unsupported images, ignored count, unsearched dirs).

    Hidden files and folders are left out, and so are the ``exclude`` paths that lie inside
    the input: a folder with everything under it (OUT, a mask folder within IN), a file by
    itself (the shared mask). An excluded path that is the input itself or holds it (OUT or
    the mask folder a parent of IN) excludes nothing: every file is still the input's.
    """
    if input_path.is_file():
        suffix = input_path.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            return [input_path], [], 0, 0
        if suffix in UNSUPPORTED_SUFFIXES:
            return [], [input_path], 0, 0
        raise InputError(f"{input_path}: not an image file ({suffix or 'no suffix'})")
    if not input_path.is_dir():
        raise InputError(f"{input_path}: no such file or folder")
    images, unsupported, ignored, unsearched = [], [], 0, 0
    root = input_path.resolve()
    excluded = {p.resolve() for p in exclude}
    excluded = {p for p in excluded if p != root and root in p.parents}
    walker = input_path.rglob("*") if recursive else input_path.iterdir()
    for path in walker:
        rel = path.relative_to(input_path)
        if any(part.startswith(".") for part in rel.parts):
            continue
        resolved = path.resolve()
        if resolved in excluded or not excluded.isdisjoint(resolved.parents):
            continue
        if path.is_dir():
            unsearched += not recursive
            continue
        if not path.is_file():
            continue
        suffix = path.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            images.append(path)
        elif suffix in UNSUPPORTED_SUFFIXES:
            unsupported.append(path)
        else:
            ignored += 1
    return images, unsupported, ignored, unsearched


def _masks_beside_images(images: list[Path], root: Path, masks: Path) -> set[Path]:
    """The listed files that are the full-name masks of other listed images (``a.jpg.png`` for
    ``a.jpg``): where the mask folder is the input folder, masks sit beside the images."""
    by_place = {(p.resolve().parent, p.stem): p for p in images}
    found = set()
    for image in images:
        rel = image.relative_to(root)
        mask = by_place.get(((masks / rel.parent).resolve(), rel.name))
        if mask is not None:
            found.add(mask)
    return found


def _output_names(relatives: list[Path], fmt: str | None) -> dict[Path, Path | None]:
    """Output relative paths; inputs that would collide are kept apart, never overwritten.

    With ``--format png``, ``a.jpg`` and ``a.png`` would both become ``a.png``: the one
    already named ``.png`` keeps it and ``a.jpg`` is written as ``a.jpg.png``. A name that still
    collides maps to None (reported as a failure).
    """
    if fmt is None:
        return {rel: rel for rel in relatives}
    suffix = FORMAT_SUFFIX[fmt]
    same = {".jpg": (".jpg", ".jpeg"), ".tif": (".tif", ".tiff")}.get(suffix, (suffix,))

    def target(rel: Path) -> Path:
        return rel if rel.suffix.lower() in same else rel.with_suffix(suffix)

    groups: dict[str, list[Path]] = {}
    for rel in relatives:
        groups.setdefault(target(rel).as_posix().lower(), []).append(rel)
    names: dict[Path, Path | None] = {}
    for members in groups.values():
        for rel in members:
            collide = len(members) > 1 and rel.suffix.lower() not in same
            names[rel] = rel.with_name(rel.name + suffix) if collide else target(rel)
    seen: dict[str, Path] = {}
    for rel in relatives:
        key = names[rel].as_posix().lower()
        if key in seen:
            names[rel] = None
            names[seen[key]] = None
        else:
            seen[key] = rel
    return names


class _MaskFolder:
    """Pairs images with mask files by relative path: ``sub/a.jpg`` ↔ ``masks/sub/a.*``.

    A mask named after the whole file name (``sub/a.jpg.png``) wins over one named after the
    stem, which is how two images with the same stem (``a.jpg`` and ``a.png``) get their own
    masks. A stem mask that two images would share is an error, not a silent pairing.
    """

    def __init__(self, root: Path, images: list[Path], images_root: Path) -> None:
        if not root.is_dir():
            raise InputError(f"--masks {root}: no such folder")
        self.root = root
        self.images_root = images_root
        self._inputs = {(images_root / rel).resolve() for rel in images}
        self._listing: dict[Path, list[Path]] = {}
        self._stems: dict[tuple[Path, str], list[Path]] = {}
        for rel in images:
            self._stems.setdefault((rel.parent, rel.stem), []).append(rel)

    def _files(self, folder: Path) -> list[Path]:
        if folder not in self._listing:
            directory = self.root / folder
            self._listing[folder] = sorted(
                p for p in directory.iterdir()
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
            ) if directory.is_dir() else []
        return self._listing[folder]

    def _matches(self, rel: Path) -> tuple[list[Path], list[Path]]:
        # Where masks sit beside the images, an image is never its own mask.
        image = (self.images_root / rel).resolve()
        files = [p for p in self._files(rel.parent) if p.resolve() != image]
        by_name = [p for p in files if p.stem == rel.name]
        by_stem = [p for p in files if p.stem == rel.stem]
        return by_name, by_stem

    def find(self, rel: Path) -> Path:
        by_name, by_stem = self._matches(rel)
        shown = (self.root / rel.parent).as_posix()
        for candidate in (by_name or by_stem)[:1]:
            if candidate.resolve() in self._inputs:  # masks beside images, named by stem
                raise InputError(
                    f"its mask {candidate.name} is one of the input images; a mask kept beside "
                    f"its image is named after the full file name ({rel.name}.png)"
                )
        if len(by_name) == 1:
            return by_name[0]
        if len(by_name) > 1:
            raise InputError(f"ambiguous masks {_names(by_name)} in {shown}; keep one")
        if len(by_stem) > 1:
            raise InputError(f"ambiguous masks {_names(by_stem)} in {shown}; keep one")
        if not by_stem:
            raise InputError(
                f"no mask for it in {shown} (looked for {rel.stem}.* and {rel.name}.*)"
            )
        rivals = [other for other in self._stems[(rel.parent, rel.stem)]
                  if other != rel and not self._matches(other)[0]]
        if rivals:
            both = _names(sorted([rel, *rivals]))
            raise InputError(
                f"mask {by_stem[0].name} would pair with {both}; name the masks after the full "
                f"file names ({rel.name}{by_stem[0].suffix}, ...)"
            )
        return by_stem[0]


def _names(paths: Iterable[Path]) -> str:
    return " and ".join(p.name for p in paths)


def plan(input_path: str | os.PathLike, output: str | os.PathLike,
         options: RestoreOptions, *, command: str = "restore"
         ) -> tuple[list[RestoreTask], list[FileResult], int, list[str]]:
    """The files of this shard: tasks to run, failures found without decoding, ignored count,
    notes. Raises :class:`InputError` when the run as a whole cannot start: OUT is the folder
    that holds the input or the mask folder, or there is no image to restore. ``command``
    names the command in those messages (``detect`` plans its runs here too)."""
    input_path, output = Path(input_path), Path(output)
    if output.exists() and not output.is_dir():
        raise InputError(f"{output}: exists and is not a folder")
    out_resolved = output.resolve()
    if input_path.is_dir() and out_resolved == input_path.resolve():
        raise InputError(f"OUT is the input folder: {command} never overwrites its inputs; "
                         "choose another folder")
    if input_path.is_file() and out_resolved == input_path.resolve().parent:
        raise InputError(f"OUT is the folder that holds {input_path.name}: {command} never "
                         "overwrites its inputs; choose another folder")
    if options.masks is not None and out_resolved == Path(options.masks).resolve():
        raise InputError("OUT is the mask folder: restore never writes among its masks; "
                         "choose another folder")
    exclude = [output] + [Path(p) for p in (options.masks, options.mask) if p is not None]
    images, unsupported, ignored, unsearched = discover(input_path, exclude,
                                                        recursive=options.recursive)
    root = input_path if input_path.is_dir() else input_path.parent
    if options.masks is not None:
        beside = _masks_beside_images(images, root, Path(options.masks))
        images = [p for p in images if p not in beside]
    if not images and not unsupported:
        raise InputError(_no_images(input_path, ignored, unsearched, command))
    notes = []
    if unsearched:
        notes.append(f"{unsearched} subfolder(s) not searched (pass --recursive to include them)")
    flag = "--concat" if command == "restore" else "--preview"
    if options.concat and any(p.relative_to(root).parts[0] == PREVIEW_DIR for p in images):
        raise InputError(f"the input has a top-level folder {PREVIEW_DIR!r}, where {flag} "
                         f"writes its previews; rename it or drop {flag}")
    detecting = options.mask_from == "detect"
    if detecting and any(p.relative_to(root).parts[0] == DETECTED_MASKS_DIR for p in images):
        raise InputError(f"the input has a top-level folder {DETECTED_MASKS_DIR!r}, where "
                         "restore keeps the masks it detects; rename it or pass --masks")

    relatives = sorted([p.relative_to(root) for p in images + unsupported],
                       key=lambda r: r.as_posix())
    image_rels = [p.relative_to(root) for p in images]
    fmt = FORMAT_CHOICES[options.format]
    names = _output_names(image_rels, fmt)
    # Detected masks are named as restore pairs them with images (a.png; a.jpg.png where
    # a.jpg and a.png share the stem): OUT/_masks can be edited and passed as --masks.
    mask_names = _output_names(image_rels, "PNG") if detecting else {}
    pairing = (_MaskFolder(Path(options.masks), image_rels, root)
               if options.masks is not None else None)
    inputs = {p.resolve() for p in images}
    unsupported_set = {p.relative_to(root) for p in unsupported}
    # OUT inside the input folder is left out of the listing; anywhere else, an output that
    # lands inside the input folder would be taken for an input by the next run.
    root_resolved = root.resolve()
    out_in_input = out_resolved != root_resolved and _inside(out_resolved, root_resolved)

    planned: list[tuple[Path, Path, Path, Path | None]] = []
    failures = []
    for index, rel in enumerate(relatives):
        if not in_shard(index, options.shard):
            continue
        if rel in unsupported_set:
            failures.append(FileResult(rel.as_posix(), "failed", f"unsupported format "
                            f"{rel.suffix.lower()}; convert it to PNG, JPEG, WebP, TIFF or BMP"))
            continue
        out_rel = names[rel]
        if out_rel is None:
            failures.append(FileResult(rel.as_posix(), "failed",
                                       "output name collides with another input's; rename one"))
            continue
        try:
            mask = pairing.find(rel) if pairing is not None else options.mask
        except InputError as exc:
            failures.append(FileResult(rel.as_posix(), "failed", str(exc)))
            continue
        planned.append((rel, out_rel, output / out_rel, mask))

    protected = inputs | {Path(m).resolve() for *_, m in planned if m is not None}
    tasks = []
    for rel, out_rel, target, mask in planned:
        resolved = target.resolve()
        if resolved in protected:
            reason = f"the output {target} would overwrite an input or a mask; choose another OUT"
        elif not out_in_input and _inside(resolved, root_resolved):
            reason = f"the output {target} would be written inside the input folder"
        else:
            preview = (output / PREVIEW_DIR / (out_rel.as_posix() + ".jpg")
                       if options.concat else None)
            kept = (output / DETECTED_MASKS_DIR / mask_names[rel]) if detecting else None
            tasks.append(RestoreTask(root / rel, rel, target, mask, preview, kept))
            continue
        failures.append(FileResult(rel.as_posix(), "failed", reason))
    failures.sort(key=lambda r: r.relative)
    if options.shard is not None and not tasks and not failures:
        k, n = options.shard
        notes.append(f"shard {k}/{n} holds none of the {len(relatives)} file(s)")
    return tasks, failures, ignored, notes


def _no_images(input_path: Path, ignored: int, unsearched: int, command: str = "restore") -> str:
    """Why a folder gave nothing to restore, and what to try."""
    formats = ", ".join(s.lstrip(".") for s in IMAGE_SUFFIXES)
    what = {"detect": "look for damage in"}.get(command, command)
    message = f"{input_path}: no images to {what} (looked for {formats})"
    if unsearched:
        message += f"; {unsearched} subfolder(s) not searched: pass --recursive to include them"
    if ignored:
        message += f"; {ignored} other file(s) are not images"
    return message


def failures_csv_name(shard: tuple[int, int] | None) -> str:
    return "failures.csv" if shard is None else f"failures-{shard[0]}-of-{shard[1]}.csv"


# ----------------------------------------------------------------------- hole regions


Box = tuple[int, int, int, int]  # top, left, bottom, right (exclusive)


def hole_boxes(valid: np.ndarray, margin: int, multiple: int = 1) -> list[Box]:
    """Crops that together cover every hole pixel, each with ``margin`` pixels of context.

    Holes are grouped into connected regions (on an 8-pixel grid), each region's bounding box
    is grown by ``margin`` and towards a multiple of ``multiple`` (the model's native sizes,
    so that less of the crop is padding), and overlapping boxes are merged until none overlap.
    Every hole pixel then lies in exactly one box.
    """
    from skimage.measure import label, regionprops

    height, width = valid.shape
    hole = ~valid
    gh, gw = -(-height // _GRID), -(-width // _GRID)
    padded = np.zeros((gh * _GRID, gw * _GRID), dtype=bool)
    padded[:height, :width] = hole
    cells = padded.reshape(gh, _GRID, gw, _GRID).any(axis=(1, 3))
    boxes = []
    for region in regionprops(label(cells, connectivity=2)):
        top, left, bottom, right = region.bbox
        boxes.append((top * _GRID, left * _GRID, min(bottom * _GRID, height),
                      min(right * _GRID, width)))
    boxes = [_grow(b, margin, multiple, height, width) for b in boxes]
    while True:
        merged = _merge_overlapping(boxes)
        if len(merged) == len(boxes):
            return sorted(merged)
        boxes = [_grow(b, 0, multiple, height, width) for b in merged]


def _grow(box: Box, margin: int, multiple: int, height: int, width: int) -> Box:
    top, left, bottom, right = box
    top, left = max(0, top - margin), max(0, left - margin)
    bottom, right = min(height, bottom + margin), min(width, right + margin)
    top, bottom = _grow_axis(top, bottom, multiple, height)
    left, right = _grow_axis(left, right, multiple, width)
    return top, left, bottom, right


def _grow_axis(start: int, stop: int, multiple: int, limit: int) -> tuple[int, int]:
    """Extend [start, stop) to a multiple of ``multiple`` where the image allows, centred."""
    size = stop - start
    want = min(limit, -(-size // multiple) * multiple)
    extra = want - size
    start = max(0, start - extra // 2)
    stop = min(limit, start + want)
    return max(0, stop - want), stop


def _merge_overlapping(boxes: list[Box]) -> list[Box]:
    merged: list[Box] = []
    for box in sorted(boxes):
        for i, other in enumerate(merged):
            if box[0] < other[2] and other[0] < box[2] and box[1] < other[3] and other[1] < box[3]:
                merged[i] = (min(box[0], other[0]), min(box[1], other[1]),
                             max(box[2], other[2]), max(box[3], other[3]))
                break
        else:
            merged.append(box)
    return merged


# ------------------------------------------------------------------------ inference jobs


@dataclass
class _Job:
    """One model input: a region of an image, possibly downscaled, and where it goes back.

    ``keep`` (inside ``box``) is the part whose fill is pasted: all of the box, or for a tile
    of a large crop its own share, the rest of the box being context.
    """

    box: Box
    rgb: np.ndarray  # h×w×3 float32, at inference resolution
    valid: np.ndarray  # h×w bool
    scaled: bool
    keep: Box | None = None  # None: the whole box
    result: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.rgb.shape[:2]


def plan_regions(valid: np.ndarray, options: RestoreOptions, multiple: int
                 ) -> tuple[list[Box], int | None]:
    """The regions to inpaint and, for ``resize``, the longest side to infer them at."""
    height, width = valid.shape
    whole = [(0, 0, height, width)]
    if max(height, width) <= options.hd_trigger or options.hd_strategy == "original":
        return whole, None
    if options.hd_strategy == "resize":
        return whole, options.hd_size
    return hole_boxes(valid, options.hd_margin, multiple), None


def tile_box(box: Box, tile: tuple[int, int], margin: int, multiple: int
             ) -> list[tuple[Box, Box]]:
    """Split ``box`` into (window, keep) pairs: the keeps partition the box, each window is
    its keep with up to ``margin`` pixels of the box around it, and no window is larger than
    ``tile`` (height, width). A box that fits is one pair."""
    top, left, bottom, right = box
    windows_h = _tile_axis(top, bottom, tile[0], margin, multiple)
    windows_w = _tile_axis(left, right, tile[1], margin, multiple)
    return [((wt, wl, wb, wr), (kt, kl, kb, kr))
             for (wt, wb), (kt, kb) in windows_h for (wl, wr), (kl, kr) in windows_w]


def _tile_axis(start: int, stop: int, tile: int, margin: int, multiple: int
               ) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    if stop - start <= tile:
        return [((start, stop), (start, stop))]
    # The context must leave room for a kept part of at least one grid step.
    margin = max(0, min(margin, (tile - multiple) // 2))
    step = max(1, tile - 2 * margin)
    step = max(multiple, step // multiple * multiple) if step >= multiple else step
    out = []
    for keep_start in range(start, stop, step):
        keep_stop = min(stop, keep_start + step)
        window_start = max(start, keep_start - margin)
        window_stop = min(stop, keep_stop + margin)
        # At the box's edges the window slides inwards to use all of the tile as context.
        if window_stop - window_start < tile:
            window_start = max(start, min(window_start, window_stop - tile))
            window_stop = min(stop, max(window_stop, window_start + tile))
        out.append(((window_start, window_stop), (keep_start, keep_stop)))
    return out


def make_jobs(image: ImageFile, valid: np.ndarray, options: RestoreOptions, multiple: int,
              fixed_size: tuple[int, int] | None = None) -> list[_Job]:
    boxes, limit = plan_regions(valid, options, multiple)
    # Native resolution: large crops are tiled, never shrunk; a static ONNX model takes
    # nothing larger than its own size, so its tiles are that size at most.
    tile = (options.hd_size, options.hd_size)
    if fixed_size is not None:
        tile = (min(tile[0], fixed_size[0]), min(tile[1], fixed_size[1]))
    jobs = []
    for box in boxes:
        box_limit = limit
        if limit is not None:  # resize: the whole image at hd_size, as asked
            pairs = [(box, box)]
        elif max(box[2] - box[0], box[3] - box[1]) <= options.hd_trigger and fixed_size is None:
            pairs = [(box, box)]  # an image (or crop) small enough for one pass
        elif widest_hole(valid[box[0]:box[2], box[1]:box[3]]) > min(tile) // 4:
            # A hole too wide for a tile's context (a missing corner, a tear): a tile inside
            # it would see no image at all. Such a crop is inferred whole, at hd_size.
            pairs, box_limit = [(box, box)], options.hd_size
        else:
            # Only the tiles whose own part holds a hole: a long diagonal hair's box is
            # mostly intact image.
            pairs = [(window, keep) for window, keep in tile_box(box, tile, options.hd_margin,
                                                                  multiple)
                     if not valid[keep[0]:keep[2], keep[1]:keep[3]].all()]
        for window, keep in pairs:
            jobs.append(_job_for(image, valid, window, keep, box_limit, fixed_size))
    return jobs


def widest_hole(valid: np.ndarray) -> int:
    """About the width (px) of the widest hole: twice the largest distance from a hole pixel
    to a known one, on the 8-pixel grid (a cell is hole if any pixel in it is), so it is cheap
    on a 24 MP crop and errs towards wide."""
    from scipy import ndimage

    height, width = valid.shape
    gh, gw = -(-height // _GRID), -(-width // _GRID)
    padded = np.zeros((gh * _GRID, gw * _GRID), dtype=bool)
    padded[:height, :width] = ~valid
    cells = padded.reshape(gh, _GRID, gw, _GRID).any(axis=(1, 3))
    if not cells.any():
        return 0
    return int(2 * ndimage.distance_transform_edt(np.pad(cells, 1)).max() * _GRID)


def _job_for(image: ImageFile, valid: np.ndarray, box: Box, keep: Box, limit: int | None,
             fixed_size: tuple[int, int] | None) -> _Job:
    top, left, bottom, right = box
    h, w = bottom - top, right - left
    scale = 1.0 if limit is None else min(1.0, limit / max(h, w))
    if fixed_size is not None:  # only resize can ask a static model for a larger region
        scale = min(scale, fixed_size[0] / h, fixed_size[1] / w)
    rgb = model_rgb(image.pixels[top:bottom, left:right], image.mode)
    region_valid = valid[top:bottom, left:right]
    if scale < 1.0:
        size = (max(1, int(h * scale)), max(1, int(w * scale)))
        rgb, region_valid = _downscale(rgb, region_valid, size)
    return _Job(box, rgb, region_valid, scaled=scale < 1.0, keep=keep)


def _downscale(rgb: np.ndarray, valid: np.ndarray, size: tuple[int, int]
               ) -> tuple[np.ndarray, np.ndarray]:
    """Area-average downscale; a small pixel is valid only if everything it covers is."""
    import torch
    import torch.nn.functional as F

    image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
    mask = torch.from_numpy(np.ascontiguousarray(valid, dtype=np.float32))[None, None]
    # Hole pixels hold damaged content, but none of it reaches the model: a small pixel whose
    # footprint touches a hole is a hole itself (coverage below 1), and holes are masked out.
    small = F.interpolate(image, size=size, mode="area")
    coverage = F.interpolate(mask, size=size, mode="area")
    small_valid = coverage[0, 0].numpy() >= 1.0 - 1e-6
    return small[0].permute(1, 2, 0).numpy(), small_valid


def _upscale(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
    big = F.interpolate(image, size=size, mode="bicubic", align_corners=False).clamp(0, 1)
    return big[0].permute(1, 2, 0).numpy()


def batch_limit(shape: tuple[int, int], options: RestoreOptions) -> int:
    """How many inputs of ``shape`` one model call takes (see :class:`RestoreOptions`)."""
    return max(1, min(options.batch_size, options.hd_size ** 2 // (shape[0] * shape[1])))


def run_jobs(inpainter: Inpainter, jobs: list[_Job], options: RestoreOptions) -> None:
    """Fill ``job.result`` for every job, batching same-size inputs."""
    by_shape: dict[tuple[int, int], list[_Job]] = {}
    for job in jobs:
        by_shape.setdefault(job.shape, []).append(job)
    for shape, group in by_shape.items():
        size = batch_limit(shape, options)
        for start in range(0, len(group), size):
            _run_batch(inpainter, group[start:start + size])


def _run_batch(inpainter: Inpainter, jobs: list[_Job]) -> None:
    images = np.stack([j.rgb for j in jobs])
    valid = np.stack([j.valid for j in jobs])
    out = inpainter.inpaint(images, valid)
    for job, result in zip(jobs, out, strict=True):
        job.result = result


def paste(image: ImageFile, valid: np.ndarray, jobs: list[_Job]) -> ImageFile:
    """The restored image: hole pixels from the jobs' predictions, every other pixel as read."""
    pixels = image.pixels.copy()
    channels = image.color_channels
    for job in jobs:
        top, left, bottom, right = job.box
        prediction = job.result
        if job.scaled:
            prediction = _upscale(prediction, (bottom - top, right - left))
        hole = ~valid[top:bottom, left:right]
        if job.keep is not None and job.keep != job.box:
            kt, kl, kb, kr = job.keep
            outside_keep = np.ones_like(hole)
            outside_keep[kt - top:kb - top, kl - left:kr - left] = False
            hole = hole & ~outside_keep
        if not hole.any():
            continue
        color = native_color(prediction[hole][:, None, :], image.mode, pixels.dtype)[:, 0, :]
        region = pixels[top:bottom, left:right]  # a view: writes go into ``pixels``
        region[hole, :channels] = color
    return dataclasses.replace(image, pixels=pixels)


def restore_image(inpainter: Inpainter, image: ImageFile, valid: np.ndarray,
                  options: RestoreOptions | None = None) -> ImageFile:
    """Restore one decoded image in memory (``valid``: H×W bool, True = known pixel)."""
    options = options or RestoreOptions()
    if valid.shape != (image.height, image.width):
        raise InputError(f"mask is {valid.shape[1]}×{valid.shape[0]}, image is "
                         f"{image.width}×{image.height}")
    if valid.all():
        return image
    image, valid = fill_thin_regions_first(inpainter, image, valid)
    jobs = make_jobs(image, valid, options, inpainter.multiple,
                     inpainter.fixed_size)
    run_jobs(inpainter, jobs, options)
    return paste(image, valid, jobs)


def fill_thin_regions_first(inpainter: Inpainter, image: ImageFile, valid: np.ndarray
                            ) -> tuple[ImageFile, np.ndarray]:
    """With ``--method auto``, fill the thin hole regions of the whole image with the
    classical method before any tiling, each in a crop around it with the context that
    method reads; returns the image with them filled and the mask with them known.

    Thin damage is scattered over a whole scan, so tile by tile it would take the whole
    image through the model's tiling; in crops of its own it costs about its own size. The
    wide holes left are then tiled for the model as usual.
    """
    from scipy import ndimage

    from .routing import CLASSICAL_REACH, RoutedInpainter, classical_view, thin_regions

    if not isinstance(inpainter, RoutedInpainter):
        return image, valid
    thin = thin_regions(valid, inpainter.thin_width)
    if not thin.any():
        return image, valid
    # Region by region: merged boxes would chain scattered specks and long diagonal hairs
    # into one box the size of the scan. Other thin pixels in a region's crop stay holes
    # (their damage must not be drawn on); only the region's own pixels are kept.
    labels, _ = ndimage.label(thin, structure=np.ones((3, 3), dtype=bool))
    height, width = valid.shape
    pixels = image.pixels.copy()
    for index, (rows, cols) in enumerate(ndimage.find_objects(labels)):
        top, bottom = max(rows.start - CLASSICAL_REACH, 0), min(rows.stop + CLASSICAL_REACH,
                                                               height)
        left, right = max(cols.start - CLASSICAL_REACH, 0), min(cols.stop + CLASSICAL_REACH,
                                                               width)
        rgb = model_rgb(image.pixels[top:bottom, left:right], image.mode)
        seen = classical_view(valid[top:bottom, left:right], thin[top:bottom, left:right])
        fill = inpainter.thin.inpaint(rgb[None], seen[None])[0]
        own = labels[top:bottom, left:right] == index + 1
        region = pixels[top:bottom, left:right]  # a view: writes go into ``pixels``
        region[own, :image.color_channels] = native_color(
            fill[own][:, None, :], image.mode, pixels.dtype)[:, 0, :]
    return dataclasses.replace(image, pixels=pixels), valid | thin


# ------------------------------------------------------------------------ the pipeline


@dataclass
class _Prepared:
    task: RestoreTask
    image: ImageFile
    valid: np.ndarray
    jobs: list[_Job]
    waiting: int = 0
    failure: str | None = None
    warning: str = ""
    # The image as read and its whole mask, for the preview, where ``image`` and ``valid``
    # already have the thin regions filled (--method auto).
    as_read: tuple[ImageFile, np.ndarray] | None = None


class _Restorer:
    """Decode and encode in a thread pool around batched inference in the calling thread."""

    def __init__(self, inpainter: Inpainter, options: RestoreOptions,
                 shared_mask: np.ndarray | None, detector: _Detector | None = None) -> None:
        self.inpainter = inpainter
        self.options = options
        self.shared_mask = shared_mask
        self.detector = detector
        # --mask's one mask, sized and grown once per image size
        self._shared_masks: dict[tuple[int, int], np.ndarray] = {}
        self.fmt = FORMAT_CHOICES[options.format]

    # --- worker side -----------------------------------------------------------------
    def prepare(self, task: RestoreTask) -> _Prepared | FileResult:
        try:
            image = read_image(task.source, max_pixels=self.options.max_pixels)
            valid, image = self._mask_for(task, image)
            if not valid.any():
                raise InputError("the mask covers the whole image: nothing to restore from "
                                 f"({self._polarity_hint()})")
            if valid.all():
                return self._write_unchanged(task, image)
            warning = self._hole_warning(valid)
            as_read = (image, valid)
            image, valid = fill_thin_regions_first(self.inpainter, image, valid)
            jobs = make_jobs(image, valid, self.options, self.inpainter.multiple,
                             self.inpainter.fixed_size)
            return _Prepared(task, image, valid, jobs, waiting=len(jobs), warning=warning,
                             as_read=as_read)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
            return _failure(task, exc)

    def _polarity_hint(self) -> str:
        if self.options.mask_from == "detect":
            return ("is the detector marking clean pixels? check the mask in "
                    f"{DETECTED_MASKS_DIR}, raise --threshold or pass --masks")
        if self.options.mask_color is not None:
            return "is --mask-color a colour of the photograph itself? lower --color-tolerance"
        if self.options.mask_from == "alpha":
            return ("are the transparent pixels the holes? then drop --invert-mask"
                    if self.options.invert_mask else
                    "are the opaque pixels the holes? then pass --invert-mask")
        return ("are its holes white? then drop --invert-mask" if self.options.invert_mask
                else "are its holes black? then pass --invert-mask")

    def _hole_warning(self, valid: np.ndarray) -> str:
        hole_fraction = 1.0 - np.count_nonzero(valid) / valid.size
        if hole_fraction <= HOLE_WARNING_FRACTION:
            return ""
        return (f"the mask marks {hole_fraction:.0%} of the image as hole; "
                f"{self._polarity_hint()}")

    def _mask_for(self, task: RestoreTask, image: ImageFile) -> tuple[np.ndarray, ImageFile]:
        opts = self.options
        if opts.mask_from == "alpha":
            valid = alpha_mask(image, invert=opts.invert_mask)
            return grow_holes(valid, opts.grow_mask), image.without_alpha()
        if opts.mask_from == "detect":
            from .detect import find_damage, write_mask

            damage = find_damage(self.detector, image, threshold=opts.threshold, grow=opts.grow,
                                 min_area=opts.min_area, tile=opts.tile).mask
            # Kept before --grow-mask: rerunning with --masks OUT/_masks and the same
            # --grow-mask repeats the run.
            write_mask(task.detected_mask, damage)
            return grow_holes(~damage, opts.grow_mask), image
        size = (image.height, image.width)
        if self.shared_mask is not None:
            if size not in self._shared_masks:  # one mask for every file: size it and grow it once
                self._shared_masks[size] = grow_holes(self._sized(self.shared_mask, size, task),
                                                 opts.grow_mask)
            return self._shared_masks[size], image
        valid = read_mask_file(task.mask, opts)
        return grow_holes(self._sized(valid, size, task), opts.grow_mask), image

    def _sized(self, valid: np.ndarray, size: tuple[int, int], task: RestoreTask) -> np.ndarray:
        if valid.shape == size:
            return valid
        if not self.options.resize_masks:
            name = Path(task.mask).name
            raise InputError(
                f"mask {name} is {valid.shape[1]}×{valid.shape[0]}, the image "
                f"{size[1]}×{size[0]}; pass --resize-masks to resize it (nearest)"
            )
        return resize_mask(valid, *size)

    def _write_unchanged(self, task: RestoreTask, image: ImageFile) -> FileResult:
        """No hole: the file itself is copied when its format is kept, byte for byte."""
        fmt = output_format(image.format, self.options.format)
        if fmt == image.format and self.options.mask_from != "alpha":
            with atomic_path(task.output) as tmp:
                shutil.copyfile(task.source, tmp)
        else:
            write_image(task.output, image, format=fmt, quality=self.options.quality)
        if task.preview is not None:
            _write_preview(task.preview, image, np.ones(image.pixels.shape[:2], bool), image)
        return FileResult(task.relative.as_posix(), "unchanged", "no holes in the mask",
                          task.output)

    def finish(self, item: _Prepared) -> FileResult:
        task = item.task
        try:
            if item.failure is not None:
                return FileResult(task.relative.as_posix(), "failed", item.failure)
            restored = paste(item.image, item.valid, item.jobs)
            fmt = output_format(item.image.format, self.options.format)
            write_image(task.output, restored, format=fmt, quality=self.options.quality)
            if task.preview is not None:
                before, holes = item.as_read or (item.image, item.valid)
                _write_preview(task.preview, before, holes, restored)
            return FileResult(task.relative.as_posix(), "restored", "", task.output,
                              warning=item.warning)
        except Exception as exc:  # noqa: BLE001
            return _failure(task, exc)

    # --- main side ---------------------------------------------------------------------
    def run(self, tasks: list[RestoreTask], emit: Callable[[FileResult], None]) -> None:
        """Process ``tasks``, emitting one result each. A KeyboardInterrupt is re-raised once
        the work in flight is written and reported."""
        opts = self.options
        window = opts.workers + 2 * opts.batch_size
        max_waiting = 2 * opts.batch_size + opts.workers
        queue: deque[tuple[RestoreTask, Future]] = deque()
        encodes: list[Future] = []
        buckets: dict[tuple[int, int], list[tuple[_Prepared, _Job]]] = {}
        waiting: list[_Prepared] = []
        todo = deque(tasks)
        pool = ThreadPoolExecutor(max_workers=opts.workers, thread_name_prefix="pconv-io")

        def drain(block: bool = False) -> None:
            for fut in list(encodes):
                if block or fut.done():
                    encodes.remove(fut)
                    emit(fut.result())

        def run_bucket(key: tuple[int, int]) -> None:
            entries = [(p, j) for p, j in buckets.pop(key, []) if p.failure is None]
            if entries:
                try:
                    _run_batch(self.inpainter, [j for _, j in entries])
                except Exception as exc:  # noqa: BLE001 - the batch's files fail, the run goes on
                    reason = _reason(exc)
                    for prepared, _ in entries:
                        prepared.failure = reason
                for prepared, _ in entries:
                    prepared.waiting -= 1
            for prepared in [p for p in waiting if p.waiting <= 0 or p.failure is not None]:
                waiting.remove(prepared)
                encodes.append(pool.submit(self.finish, prepared))

        try:
            while todo or queue:
                while todo and len(queue) < window:
                    task = todo.popleft()
                    queue.append((task, pool.submit(self.prepare, task)))
                _, fut = queue.popleft()
                item = fut.result()
                if isinstance(item, FileResult):
                    emit(item)
                elif not item.jobs:  # every hole was thin and is filled already
                    encodes.append(pool.submit(self.finish, item))
                else:
                    waiting.append(item)
                    for job in item.jobs:
                        bucket = buckets.setdefault(job.shape, [])
                        bucket.append((item, job))
                        if len(bucket) >= batch_limit(job.shape, opts):
                            run_bucket(job.shape)
                    if len(waiting) >= max_waiting:  # bound memory: flush partial batches
                        for key in list(buckets):
                            run_bucket(key)
                drain()
            for key in list(buckets):
                run_bucket(key)
            drain(block=True)
        except KeyboardInterrupt:
            # Stop reading new files; what is decoded but not yet inferred is dropped. Encodes
            # already running finish (each is atomic either way) and are reported.
            for _, fut in queue:
                fut.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            for fut in encodes:
                if not fut.cancelled():
                    emit(fut.result())
            raise
        finally:
            pool.shutdown(wait=True)


def read_mask_file(path: str | os.PathLike, options: RestoreOptions) -> np.ndarray:
    """A mask file as the options read it (True = valid): white = hole, black with
    --invert-mask, or the pixels painted in --mask-color."""
    if options.mask_color is not None:
        return read_painted_mask(path, parse_color(options.mask_color),
                                 tolerance=options.color_tolerance,
                                 max_pixels=options.max_pixels)
    return read_mask(path, invert=options.invert_mask, max_pixels=options.max_pixels)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, PconvError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory (try a smaller --hd-size or --batch-size)"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}".rstrip(": ")


def _failure(task: RestoreTask, exc: BaseException) -> FileResult:
    """A failed result whose reason does not repeat the file's path (the file column has it)."""
    reason = _reason(exc)
    if reason.startswith(f"{task.source}: "):
        reason = reason[len(f"{task.source}: "):]
    elif task.mask is not None and reason.startswith(f"{task.mask}: "):
        reason = f"mask {Path(task.mask).name}: " + reason[len(f"{task.mask}: "):]
    return FileResult(task.relative.as_posix(), "failed", reason)


def _preview_rgb8(pixels: np.ndarray, mode: str, step: int) -> np.ndarray:
    return np.rint(model_rgb(pixels[::step, ::step], mode) * 255).astype(np.uint8)


def _write_preview(path: Path, before: ImageFile, valid: np.ndarray, after: ImageFile) -> None:
    """input | mask (white = hole) | result, side by side, each panel at most PREVIEW_SIDE."""
    from PIL import Image

    step = max(1, -(-max(before.height, before.width) // PREVIEW_SIDE))
    left = _preview_rgb8(before.pixels, before.mode, step)
    right = _preview_rgb8(after.pixels, after.mode, step)
    middle = np.repeat(np.where(valid[::step, ::step], 0, 255).astype(np.uint8)[..., None], 3, 2)
    strip = np.concatenate([left, middle, right], axis=1)
    buffer = io.BytesIO()
    Image.fromarray(strip).save(buffer, format="JPEG", quality=90)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


RUN_RECORD = ".pconv-restore.json"  # in OUT: the settings its images were restored with


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file (a model): the record tells two models apart by content, not name."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def output_settings(options: RestoreOptions, inpainter: Inpainter,
                    model_digest: str | None = None, detector: _Detector | None = None) -> dict:
    """Every setting that decides an output's pixels or format, keyed by its CLI option.

    Not recorded: what only decides which files are done or how fast (--recursive, --shard,
    --workers, --batch-size, --max-pixels, --device, --tile). Settings of a mask source not
    in use are None, as in records written before that source existed.
    """
    detecting = options.mask_from == "detect"
    painted = options.mask_color is not None
    def resolved(path: Path | None) -> str | None:
        return None if path is None else str(Path(path).resolve())

    # --method: a model alone (recorded as None, as in records written before --method), a
    # classical method alone (no model), or both routed by hole width (the model's name).
    from .routing import RoutedInpainter

    routed = isinstance(inpainter, RoutedInpainter)
    classical = isinstance(inpainter, ClassicalInpainter)
    model_name = inpainter.model.name if routed else None if classical else inpainter.name
    return {
        "model": model_name,
        "model-sha256": None if classical else model_digest,
        "flips": None if classical else inpainter.flips,
        "blend": None if classical else inpainter.blend,
        "method": inpainter.name if routed or classical else None,
        "thin-width": inpainter.thin_width if routed else None,
        "masks": resolved(options.masks),
        "mask": resolved(options.mask),
        "mask-from": options.mask_from,
        "invert-mask": options.invert_mask,
        "resize-masks": options.resize_masks,
        "grow-mask": options.grow_mask,
        "format": (FORMAT_CHOICES[options.format] or "keep").lower(),
        "quality": options.quality,
        "hd-strategy": options.hd_strategy,
        "hd-trigger": options.hd_trigger,
        "hd-margin": options.hd_margin,
        "hd-size": options.hd_size,
        "detector": detector.name if detecting and detector is not None else None,
        "detector-sha256": detector.sha256 if detecting and detector is not None else None,
        "threshold": options.threshold if detecting else None,
        "grow": options.grow if detecting else None,
        "min-area": options.min_area if detecting else None,
        "mask-color": options.mask_color.lower() if painted else None,
        "color-tolerance": options.color_tolerance if painted else None,
    }


def _shown(key: str, value: object) -> str:
    if value is None:
        return "pconv" if key == "method" else "none"  # the model alone: see output_settings
    if key.endswith("sha256"):
        return f"{value}"[:12] + "…"
    return str(value)


def check_output_settings(output: Path, settings: dict, *, overwrite: bool,
                          record_name: str = RUN_RECORD, made: str = "images restored") -> None:
    """Refuse to mix images restored with other settings in one OUT, then record these.

    A rerun with the same settings resumes (existing outputs are skipped); with other settings
    it would skip every file and leave the old images under the new settings' name, so it is
    refused unless ``overwrite`` redoes them.
    """
    record = output / record_name
    if not overwrite and record.exists():
        try:
            old = json.loads(record.read_text(encoding="utf-8")).get("settings")
        except (OSError, ValueError, AttributeError):
            old = None
        if not isinstance(old, dict):
            raise InputError(f"{record} is unreadable; pass --overwrite to redo the images in "
                             f"{output}, or choose another folder")
        differing = [f"--{key} {_shown(key, value)} (was {_shown(key, old.get(key))})"
                     for key, value in settings.items() if old.get(key) != value]
        if differing:
            raise InputError(
                f"{output} holds {made} with other settings: {', '.join(differing)}; "
                "pass --overwrite to redo them, or choose another folder"
            )
    try:
        atomic_write_text(record, json.dumps({"pconv_version": __version__,
                                              "settings": settings}, indent=2) + "\n")
    except OSError as exc:
        raise InputError(f"{output}: cannot write there ({exc.strerror or exc}); choose a "
                         "writable folder") from None


class RestoreRun:
    """One restore run in two steps, so that a caller can check everything it can before it
    loads a model: planning on construction (options, IN, OUT, masks, the file list; raises
    :class:`InputError` or :class:`ConfigError`, writes nothing) and :meth:`execute`."""

    def __init__(self, input_path: str | os.PathLike, output: str | os.PathLike,
                 options: RestoreOptions | None = None) -> None:
        self.options = options or RestoreOptions()
        given = (self.options.masks, self.options.mask) != (None, None)
        #: True where no mask source was given and the detector stands in (see validate).
        self.detection_implied = not given and self.options.mask_from == "masks"
        self.options.validate()
        self.detection_implied &= self.options.mask_from == "detect"
        self.input_path, self.output = Path(input_path), Path(output)
        self._checked_settings: dict | None = None
        with pixel_limit(self.options.max_pixels):
            self.tasks, self.failures, self.ignored, self.notes = plan(
                self.input_path, self.output, self.options)
            self.shared_mask = None
            if self.options.mask is not None:
                self.shared_mask = read_mask_file(self.options.mask, self.options)

    @property
    def detecting(self) -> bool:
        return self.options.mask_from == "detect"

    def load_detector(self, device: str = "auto") -> _Detector | None:
        """The detector this run finds its masks with (None where it reads them)."""
        if not self.detecting:
            return None
        from .detect import load_damage_detector

        return load_damage_detector(self.options.detector, device=device)

    def check_output(self, inpainter: Inpainter, model_digest: str | None = None,
                     detector: _Detector | None = None) -> None:
        """Refuse an OUT restored with other settings, or record these in it (see
        :func:`check_output_settings`); :meth:`execute` does it if the caller has not."""
        settings = output_settings(self.options, inpainter, model_digest, detector)
        if settings != self._checked_settings:
            check_output_settings(self.output, settings,
                                  overwrite=not self.options.skip_existing)
            self._checked_settings = settings

    def _is_done(self, task: RestoreTask) -> bool:
        # With --concat a file is done when its preview is written too; a detected mask, when
        # it is kept.
        return all(p is None or p.exists()
                   for p in (task.output, task.preview, task.detected_mask))

    def execute(
        self,
        inpainter: Inpainter,
        *,
        model_digest: str | None = None,
        detector: _Detector | None = None,
        on_start: Callable[[int, int], None] | None = None,
        on_result: Callable[[FileResult], None] | None = None,
    ) -> RestoreReport:
        """Restore the planned files with ``inpainter`` (see :func:`restore`); ``detector``
        finds the masks of a detecting run (default: :meth:`load_detector`)."""
        options = self.options
        started = time.perf_counter()
        results: list[FileResult] = []

        def emit(result: FileResult) -> None:
            results.append(result)
            if on_result is not None:
                on_result(result)

        if self.detecting and detector is None:
            detector = self.load_detector()
        self.check_output(inpainter, model_digest, detector)
        with pixel_limit(options.max_pixels):
            done = [t for t in self.tasks if options.skip_existing and self._is_done(t)]
            todo = [t for t in self.tasks if not (options.skip_existing and self._is_done(t))]
            if on_start is not None:
                on_start(len(self.tasks) + len(self.failures), len(todo))
            for failure in self.failures:
                emit(failure)
            for task in done:
                emit(FileResult(task.relative.as_posix(), "skipped", "output exists",
                                task.output))
            restorer = _Restorer(inpainter, options, self.shared_mask, detector)
            interrupted, remaining = False, 0
            try:
                restorer.run(todo, emit)
            except KeyboardInterrupt:
                interrupted = True
                handled = {r.relative for r in results}
                remaining = sum(t.relative.as_posix() not in handled for t in todo)
        report = RestoreReport(
            results=results, backend=inpainter.backend, seconds=time.perf_counter() - started,
            interrupted=interrupted, remaining=remaining, ignored=self.ignored,
            shard=options.shard, notes=self.notes,
        )
        report.failures_csv = write_failures(self.output, report.failed, options.shard)
        return report


def restore(
    input_path: str | os.PathLike,
    output: str | os.PathLike,
    inpainter: Inpainter,
    options: RestoreOptions | None = None,
    *,
    model_digest: str | None = None,
    detector: _Detector | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> RestoreReport:
    """Restore every image under ``input_path`` into ``output`` (see the module docstring).

    ``on_start(total, to_process)`` is called once the files are known (``total`` counts the
    files refused while planning and the outputs that exist, which take no time; the others
    are processed); ``on_result(result)`` once per file, from the calling thread. A
    KeyboardInterrupt stops the run cleanly: the report says ``interrupted`` and how many
    files were not reached. ``model_digest`` (see :func:`file_digest`) tells models apart in
    OUT's record of settings (:func:`check_output_settings`).
    """
    return RestoreRun(input_path, output, options).execute(
        inpainter, model_digest=model_digest, detector=detector, on_start=on_start,
        on_result=on_result)


def write_failures(output: Path, failed: list[FileResult], shard: tuple[int, int] | None
                   ) -> Path:
    """``OUT/failures.csv`` (``failures-K-of-N.csv`` for a shard): file, reason; header only
    when nothing failed, so that a clean rerun does not leave an old list behind."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file", "reason"])
    for result in failed:
        writer.writerow([result.relative, result.reason])
    path = output / failures_csv_name(shard)
    atomic_write_text(path, buffer.getvalue())
    return path
