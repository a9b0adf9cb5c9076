"""A pair's inputs at the evaluation size, and what a method may see of them.

Images are centre-cropped to the evaluation aspect ratio and resized (Lanczos) to the
evaluation size (default: each mask's own size); a mask whose size differs is resized nearest.
With ``native`` an image keeps its size (models pad to their multiple and crop back) and its
mask is resized to it. A method sees the image with its hole pixels set to 0, and the mask.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputError
from ..imaging import load_image, load_mask, resize_mask
from ..metrics import SSIM_WINDOW
from .pairs import FileFailure, MaskEntry, Pair, failure_reason

MASK_CACHE_BYTES = 256 * 2**20  # masks reused by --pairs all stay loaded up to this much


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


def hide_holes(images: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """What a method may see: the hole pixels set to 0."""
    return images * valid[..., None].astype(images.dtype)


class Loader:
    """Loads and sizes the inputs of a pair; remembers files that failed and recent masks.

    ``--pairs all`` comes image-major: keeping the last image reads each image once, and its
    masks come round again for every image, so they stay loaded up to ``MASK_CACHE_BYTES``.
    """

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
            self.bad[key] = failure_reason(exc, entry.path)
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
            self.bad[str(path)] = failure_reason(exc, path)
            raise FileFailure(path, self.bad[str(path)]) from None
        if size is not None:
            image = fit_image(image, size)
        image = np.ascontiguousarray(image, dtype=np.float32)
        self._image = (key, image)
        return image
