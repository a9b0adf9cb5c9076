"""The work for one image: the model inputs cut from it (:class:`Job`: a crop, a tile or the
whole image, downscaled only where asked), their batching into model calls, and the paste of
the predictions into its hole pixels. :func:`restore_image` does all of it for one decoded
image; the pipeline does the same steps for a folder, with files in flight."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..imaging import ImageFile, model_rgb, native_color
from .options import RestoreOptions
from .regions import Box, hole_boxes, tile_box, widest_hole

if TYPE_CHECKING:
    from ..inpainter import Inpainter


@dataclass
class Job:
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


def make_jobs(image: ImageFile, valid: np.ndarray, options: RestoreOptions, multiple: int,
              fixed_size: tuple[int, int] | None = None) -> list[Job]:
    """The model inputs that fill every hole of ``image`` (see :class:`RestoreOptions`)."""
    boxes, limit = plan_regions(valid, options, multiple)
    # Native resolution: large crops are tiled, never shrunk; a static ONNX model takes
    # nothing larger than its own size, so its tiles are that size at most.
    tile = (options.hd_size, options.hd_size)
    if fixed_size is not None:
        tile = (min(tile[0], fixed_size[0]), min(tile[1], fixed_size[1]))
    jobs = []
    for box in boxes:
        pairs, box_limit = _windows(box, valid, options, limit, tile, multiple, fixed_size)
        for window, keep in pairs:
            jobs.append(_job_for(image, valid, window, keep, box_limit, fixed_size))
    return jobs


def _windows(box: Box, valid: np.ndarray, options: RestoreOptions, limit: int | None,
             tile: tuple[int, int], multiple: int, fixed_size: tuple[int, int] | None
             ) -> tuple[list[tuple[Box, Box]], int | None]:
    """How one region is inferred: its (window, keep) pairs and the longest side to infer
    them at (None: their own size)."""
    if limit is not None:  # resize: the whole image at hd_size, as asked
        return [(box, box)], limit
    if max(box[2] - box[0], box[3] - box[1]) <= options.hd_trigger and fixed_size is None:
        return [(box, box)], None  # an image (or crop) small enough for one pass
    if widest_hole(valid[box[0]:box[2], box[1]:box[3]]) > min(tile) // 4:
        # A hole too wide for a tile's context (a missing corner, a tear): a tile inside it
        # would see no image at all. Such a crop is inferred whole, at hd_size.
        return [(box, box)], options.hd_size
    # Only the tiles whose own part holds a hole: a long diagonal hair's box is mostly
    # intact image.
    return [(window, keep) for window, keep in tile_box(box, tile, options.hd_margin, multiple)
            if not valid[keep[0]:keep[2], keep[1]:keep[3]].all()], None


def _job_for(image: ImageFile, valid: np.ndarray, box: Box, keep: Box, limit: int | None,
             fixed_size: tuple[int, int] | None) -> Job:
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
    return Job(box, rgb, region_valid, scaled=scale < 1.0, keep=keep)


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


def run_jobs(inpainter: Inpainter, jobs: list[Job], options: RestoreOptions) -> None:
    """Fill ``job.result`` for every job, batching same-size inputs."""
    by_shape: dict[tuple[int, int], list[Job]] = {}
    for job in jobs:
        by_shape.setdefault(job.shape, []).append(job)
    for shape, group in by_shape.items():
        size = batch_limit(shape, options)
        for start in range(0, len(group), size):
            run_batch(inpainter, group[start:start + size])


def run_batch(inpainter: Inpainter, jobs: list[Job]) -> None:
    """One model call for same-size jobs; each gets its own prediction."""
    images = np.stack([j.rgb for j in jobs])
    valid = np.stack([j.valid for j in jobs])
    out = inpainter.inpaint(images, valid)
    for job, result in zip(jobs, out, strict=True):
        job.result = result


def paste(image: ImageFile, valid: np.ndarray, jobs: list[Job]) -> ImageFile:
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
    jobs = make_jobs(image, valid, options, inpainter.multiple, inpainter.fixed_size)
    run_jobs(inpainter, jobs, options)
    return paste(image, valid, jobs)


def fill_thin_regions_first(inpainter: Inpainter, image: ImageFile, valid: np.ndarray
                            ) -> tuple[ImageFile, np.ndarray]:
    """With ``--method auto``, fill the thin hole regions of the whole image with the
    classical method before any tiling; returns the image with them filled and the mask with
    them known.

    Thin damage is scattered over a whole scan, so tile by tile it would take the whole
    image through the model's tiling. Biharmonic (auto's default) fills them all in one
    sparse solve over the hole pixels; the other methods fill each region in a crop around
    it. Either way the cost grows with the damage, not with the scan. The wide holes left are
    then tiled for the model as usual.
    """
    from ..classical import BiharmonicInpainter
    from ..routing import RoutedInpainter, thin_regions

    if not isinstance(inpainter, RoutedInpainter):
        return image, valid
    thin = thin_regions(valid, inpainter.thin_width)
    if not thin.any():
        return image, valid
    if isinstance(inpainter.thin, BiharmonicInpainter):
        pixels = _fill_biharmonic(image, valid, thin)
    else:
        pixels = _fill_region_by_region(inpainter, image, valid, thin)
    return dataclasses.replace(image, pixels=pixels), valid | thin


def _fill_biharmonic(image: ImageFile, valid: np.ndarray, thin: np.ndarray) -> np.ndarray:
    """Every thin region in one sparse solve (:mod:`pconv_cli.biharmonic`): the cost grows
    with the hole pixels, and the scan's pixels are converted to RGB only where the fill reads
    them. The fill is the one the router gives on the whole image."""
    from ..biharmonic import biharmonic_fill

    fill = biharmonic_fill(_RgbAt(image), valid, thin)
    pixels = image.pixels.copy()
    ys, xs = np.nonzero(thin)
    pixels[ys, xs, :image.color_channels] = native_color(fill[:, None, :], image.mode,
                                                         pixels.dtype)[:, 0, :]
    return pixels


class _RgbAt:
    """``view[ys, xs]``: an image's pixels at those coordinates as float RGB (k×3)."""

    def __init__(self, image: ImageFile) -> None:
        self.image = image

    def __getitem__(self, at: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        return model_rgb(self.image.pixels[at][:, None, :], self.image.mode)[:, 0, :]


def _fill_region_by_region(inpainter: Inpainter, image: ImageFile, valid: np.ndarray,
                           thin: np.ndarray) -> np.ndarray:
    """Each thin region in a crop grown by what the method reads around it (its ``reach``):
    the whole image's fill of that region, at the cost of the crop. Region by region: merged
    boxes would chain scattered specks and long diagonal hairs into one box the size of the
    scan. Other thin pixels in a region's crop stay holes (their damage must not be drawn on);
    only the region's own pixels are kept."""
    from scipy import ndimage

    from ..routing import classical_view

    labels, _ = ndimage.label(thin, structure=np.ones((3, 3), dtype=bool))
    height, width = valid.shape
    method = inpainter.thin
    reach = method.reach if method.reach is not None else max(height, width)
    pixels = image.pixels.copy()
    for index, (rows, cols) in enumerate(ndimage.find_objects(labels)):
        top, bottom = max(rows.start - reach, 0), min(rows.stop + reach, height)
        left, right = max(cols.start - reach, 0), min(cols.stop + reach, width)
        rgb = model_rgb(image.pixels[top:bottom, left:right], image.mode)
        seen = classical_view(valid[top:bottom, left:right], thin[top:bottom, left:right],
                              method.reach)
        fill = method.inpaint(rgb[None], seen[None])[0]
        own = labels[top:bottom, left:right] == index + 1
        region = pixels[top:bottom, left:right]  # a view: writes go into ``pixels``
        region[own, :image.color_channels] = native_color(
            fill[own][:, None, :], image.mode, pixels.dtype)[:, 0, :]
    return pixels
