"""Each image's mask (True = valid pixel), from whichever source the options name: a mask file
(white = hole, black with --invert-mask, or painted in --mask-color), the one --mask for every
image, the image's alpha channel, or the damage detector. Also the hints given when a mask
looks inverted."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..imaging import (
    ImageFile,
    alpha_mask,
    grow_holes,
    load_mask,
    parse_color,
    read_painted_mask,
    resize_mask,
)
from .files import DETECTED_MASKS_DIR
from .options import RestoreOptions
from .results import RestoreTask

if TYPE_CHECKING:  # pconv_cli.detect imports this package: only its types are named here
    from ..detect import _Detector

# A mask that marks more than this share of its image as hole is most likely inverted (black =
# hole read as white = hole): the file is restored, with a warning naming --invert-mask.
HOLE_WARNING_FRACTION = 0.5
# Detected damage over this share of an image is more likely the detector's false alarms (thin
# dark content, white areas, dark corners) than damage: on scratched and cracked prints the
# real damage covered 2-9% of the image, an image that was mostly false alarms 13%. Restored,
# with a warning to check its mask in OUT/_masks.
DETECTED_WARNING_FRACTION = 0.1


def read_mask_file(path: str | os.PathLike, options: RestoreOptions) -> np.ndarray:
    """A mask file as the options read it (True = valid): white = hole, black with
    --invert-mask, or the pixels painted in --mask-color."""
    if options.mask_color is not None:
        return read_painted_mask(path, parse_color(options.mask_color),
                                 tolerance=options.color_tolerance,
                                 max_pixels=options.max_pixels)
    return load_mask(path, invert=options.invert_mask, max_pixels=options.max_pixels)


class MaskSource:
    """The masks of one run. Called from the pipeline's worker threads, one image at a time.

    ``shared_mask`` is --mask's one mask, read once by the run; it is sized and grown once per
    image size.
    """

    def __init__(self, options: RestoreOptions, shared_mask: np.ndarray | None,
                 detector: _Detector | None = None) -> None:
        self.options = options
        self.shared_mask = shared_mask
        self.detector = detector
        self._shared_masks: dict[tuple[int, int], np.ndarray] = {}

    def mask_for(self, task: RestoreTask, image: ImageFile) -> tuple[np.ndarray, ImageFile]:
        """The image's mask, grown by --grow-mask, and the image to restore (without its alpha
        channel where that was the mask)."""
        opts = self.options
        if opts.mask_from == "alpha":
            valid = alpha_mask(image, invert=opts.invert_mask)
            return grow_holes(valid, opts.grow_mask), image.without_alpha()
        if opts.mask_from == "detect":
            from ..detect import find_damage, write_mask

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
        return resize_mask(valid, size)

    def polarity_hint(self) -> str:
        """What to try where a mask seems to mark the wrong pixels, for this mask source."""
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

    def hole_warning(self, valid: np.ndarray) -> str:
        """A warning for a mask that is mostly hole (likely inverted), or for detected damage
        that covers more of the image than damage does; empty otherwise."""
        hole_fraction = 1.0 - np.count_nonzero(valid) / valid.size
        detecting = self.options.mask_from == "detect"
        if hole_fraction <= (DETECTED_WARNING_FRACTION if detecting else HOLE_WARNING_FRACTION):
            return ""
        return (f"the mask marks {hole_fraction:.0%} of the image as hole; "
                f"{self.polarity_hint()}")
