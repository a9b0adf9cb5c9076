"""Training data: random crops of a folder of photographs, each with a hole mask.

Every sample is a pure function of ``(seed, sample_id)``: the image is picked from a seeded
per-epoch permutation and the crop, flip and mask come from generators seeded with the sample
id. So a run resumed at step s sees exactly the samples it would have seen, whatever the
number of loader workers, and ranks under torchrun draw disjoint ids.
"""

from __future__ import annotations

import math
import os
import signal
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from .errors import ConfigError, InputError
from .imaging import list_images, load_image, load_mask, resize_mask
from .masks import PAPER_BAND_EDGES, MaskParams, generate_mask, mask_seed, sample_mask

# Stream tags keep the generators of one sample independent of each other.
_PICK, _AUGMENT, _MASK, _VAL_MASK = 0, 1, 2, 3
# Decoded photos each loader worker keeps (about 110 photos of 1365×768).
DECODED_CACHE_BYTES = 512 * 1024 * 1024


def find_training_images(folder: str | os.PathLike) -> list[Path]:
    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"{folder}: data folder does not exist")
    files = list_images(folder, recursive=True)
    if not files:
        raise InputError(
            f"{folder}: no images found (looked recursively for jpg, png, webp, tif, bmp)"
        )
    return files


def split_validation(
    files: Sequence[Path], fraction: float, seed: int, *, max_images: int
) -> tuple[list[Path], list[Path]]:
    """A seeded hold-out split: ``fraction`` of the files, at most ``max_images``, for
    validation; the rest for training. The same files and seed always give the same split.

    The cap is the number of images validation uses: a held-out image is always validated.
    """
    if len(files) < 2 or not 0 < fraction < 1:
        raise InputError(
            "need a validation set: pass --val-data DIR or at least 2 images with "
            "--val-fraction between 0 and 1"
        )
    n_val = min(max_images, max(1, int(round(len(files) * fraction))), len(files) - 1)
    order = np.random.default_rng([seed, 99]).permutation(len(files))
    val_idx = set(order[:n_val].tolist())
    train = [f for i, f in enumerate(files) if i not in val_idx]
    val = [f for i, f in enumerate(files) if i in val_idx]
    return train, val


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def _draw_rescaled_crop(width: int, height: int, size: int,
                        rng: np.random.Generator) -> tuple[int, int, int, int]:
    """The random draws of a rescale-and-crop: the rescaled size (nw, nh) and the crop's
    corner (x, y) in it."""
    short = min(width, height)
    scale = rng.uniform(size, max(size, short)) / short
    nw, nh = max(size, math.ceil(width * scale)), max(size, math.ceil(height * scale))
    x = int(rng.integers(0, nw - size + 1))
    y = int(rng.integers(0, nh - size + 1))
    return nw, nh, x, y


def random_rescale_crop(image: Image.Image, size: int, rng: np.random.Generator) -> Image.Image:
    """Rescale keeping the aspect ratio (short side uniform in [size, max(size, own)]), then
    a random size×size crop.

    Only the crop's own region is resampled (``resize(box=...)``): the pixels of rescaling the
    whole photo and cropping, within a few grey levels (rounding, and the integer pre-reduction
    of large downscales), at a small fraction of the cost.
    """
    w, h = image.size
    nw, nh, x, y = _draw_rescaled_crop(w, h, size, rng)
    if (nw, nh) == (w, h):
        return image.crop((x, y, x + size, y + size))
    sx, sy = w / nw, h / nh  # source pixels per output pixel, as resize((nw, nh)) uses
    box = (x * sx, y * sy, (x + size) * sx, (y + size) * sy)
    return image.resize((size, size), Image.Resampling.BILINEAR, box=box, reducing_gap=2.0)


def rescale_then_crop(image: Image.Image, size: int, rng: np.random.Generator) -> Image.Image:
    """What :func:`random_rescale_crop` computes, done the straightforward way: rescale the
    whole photo, then crop (the same random draws). Its reference in the tests and the
    baseline of ``benchmarks/bench_data.py``."""
    nw, nh, x, y = _draw_rescaled_crop(*image.size, size, rng)
    if (nw, nh) != image.size:
        image = image.resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return image.crop((x, y, x + size, y + size))


def centre_crop(image: Image.Image, size: int) -> Image.Image:
    w, h = image.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    image = image.resize((nw, nh), Image.Resampling.BICUBIC, reducing_gap=2.0)
    x, y = (nw - size) // 2, (nh - size) // 2
    return image.crop((x, y, x + size, y + size))


def _open_rgb(path: Path) -> Image.Image:
    return Image.fromarray((load_image(path) * 255).round().astype(np.uint8))


class DecodedImages:
    """Decoded training photos kept in memory (least recently used out beyond ``max_bytes``).

    Decoding a photo costs several times more than cutting a crop from it, and a loader worker
    sees every photo once per epoch; the samples are the same either way (decoding is
    deterministic). Each loader worker holds its own cache.
    """

    def __init__(self, max_bytes: int = DECODED_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._images: OrderedDict[Path, Image.Image] = OrderedDict()
        self._bytes = 0

    def open(self, path: Path) -> Image.Image:
        if path in self._images:
            self._images.move_to_end(path)
            return self._images[path]
        image = _open_rgb(path)
        size = image.width * image.height * 3
        if size <= self.max_bytes:
            self._images[path] = image
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, old = self._images.popitem(last=False)
                self._bytes -= old.width * old.height * 3
        return image


def leave_stop_signals_to_the_trainer(_worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: loader workers ignore SIGTERM and SIGINT.

    Schedulers and terminals signal the whole process group. A worker that died of the signal
    would make the main process raise in the middle of a step instead of saving at the step's
    end; ignoring it leaves the stop to the trainer, which then shuts its workers down (and a
    worker whose trainer is gone exits by itself).
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _file_index(n_files: int, seed: int, sample_id: int, offset: int = 0) -> int:
    epoch, pos = divmod(sample_id, n_files)
    order = np.random.default_rng([seed, _PICK, epoch]).permutation(n_files)
    return int(order[(pos + offset) % n_files])


def open_sample_photo(files: Sequence[Path], decoded: DecodedImages, seed: int,
                      sample_id: int) -> tuple[Image.Image, int]:
    """The photo of sample ``sample_id``: from a seeded permutation per epoch, so that every
    photo is seen once an epoch. One that fails to decode is replaced by the next file in the
    permutation; its index is returned (-1 if none failed) for the trainer to report once."""
    skipped = -1
    for offset in range(len(files)):
        index = _file_index(len(files), seed, sample_id, offset)
        try:
            return decoded.open(files[index]), skipped
        except InputError:
            if skipped < 0:
                skipped = index
    raise InputError("no training image could be decoded")


def native_crop(image: Image.Image, size: int, rng: np.random.Generator) -> Image.Image:
    """A random size×size crop at the photo's own resolution (a photo smaller than ``size``
    is rescaled as :func:`random_rescale_crop` does): what is 2 px wide stays 2 px wide."""
    w, h = image.size
    if min(w, h) < size:
        return random_rescale_crop(image, size, rng)
    x = int(rng.integers(0, w - size + 1))
    y = int(rng.integers(0, h - size + 1))
    return image.crop((x, y, x + size, y + size))


@dataclass(frozen=True)
class MaskSource:
    """Where training masks come from: mask files (white = hole) or the generator."""

    files: tuple[Path, ...] = ()
    params: MaskParams = MaskParams()

    @classmethod
    def from_folder(cls, folder: str | os.PathLike | None, params: MaskParams) -> MaskSource:
        if folder is None:
            return cls((), params)
        files = list_images(folder, recursive=True)
        if not files:
            raise InputError(f"{folder}: no mask files found")
        return cls(tuple(files), params)

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """A bool size×size mask, True = valid."""
        if not self.files:
            return generate_mask(rng, (size, size), self.params)
        # No EXIF orientation: the mask is turned and flipped at random below anyway, and
        # leaving the step out keeps reading many small masks as fast as it can be.
        valid = load_mask(self.files[int(rng.integers(len(self.files)))], orient=False)
        valid = resize_mask(valid, (size, size))
        valid = np.rot90(valid, int(rng.integers(4)))
        if rng.random() < 0.5:
            valid = valid[:, ::-1]
        return np.ascontiguousarray(valid)


class TrainingSamples(Dataset):
    """``dataset[sample_id] -> {"image", "mask", "skipped"}`` (see the module docstring).

    An image that fails to decode is replaced by the next file in the permutation; its index
    is returned in ``"skipped"`` (-1 otherwise) so that the trainer can report it once.
    """

    def __init__(self, files: Sequence[Path], size: int, masks: MaskSource, seed: int) -> None:
        self.files = list(files)
        self.size = size
        self.masks = masks
        self.seed = seed
        self.decoded = DecodedImages()

    def __len__(self) -> int:  # the stream is endless; this is one epoch
        return len(self.files)

    def __getitem__(self, sample_id: int) -> dict:
        aug = np.random.default_rng([self.seed, _AUGMENT, sample_id])
        image, skipped = open_sample_photo(self.files, self.decoded, self.seed, sample_id)
        crop = random_rescale_crop(image, self.size, aug)
        if aug.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        pixels = np.asarray(crop, dtype=np.float32) / 255.0
        mask = self.masks.draw(np.random.default_rng([self.seed, _MASK, sample_id]), self.size)
        return {
            "image": _to_tensor(pixels),
            "mask": torch.from_numpy(mask[None].astype(np.float32)),
            "skipped": skipped,
        }


class StepSampler(Sampler[int]):
    """Endless sample ids for steps ``start_step, start_step+1, ...`` of one rank.

    Step s of rank r with batch b over w ranks uses ids s·b·w + r·b + [0, b).
    """

    def __init__(self, start_step: int, batch_size: int, rank: int = 0, world_size: int = 1):
        self.start_step = start_step
        self.batch_size = batch_size
        self.rank = rank
        self.world_size = world_size

    def __iter__(self) -> Iterator[int]:
        step = self.start_step
        b = self.batch_size
        while True:
            base = step * b * self.world_size + self.rank * b
            yield from range(base, base + b)
            step += 1


def validation_masks(
    size: int, params: MaskParams, seed: int, image_index: int,
    edges: Sequence[float] = PAPER_BAND_EDGES,
) -> list[np.ndarray]:
    """One mask per hole-ratio band for validation image ``image_index`` (True = valid).

    Drawn by the generator, steered into each band, whatever ``--masks`` the run trains on:
    the validation set then covers small and large holes alike and stays the same when a
    resumed run switches its training masks. A band the generator cannot reach at a small
    ``size`` gets a free draw instead.
    """
    masks = []
    for band, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=False)):
        seed_b = mask_seed(seed, _VAL_MASK, image_index, band)
        try:
            masks.append(sample_mask(seed_b, size, params, band=(lo, hi), max_attempts=20).valid)
        except ConfigError:
            masks.append(sample_mask(seed_b, size, params).valid)
    return masks


def load_validation_set(
    files: Sequence[Path], size: int, params: MaskParams, seed: int
) -> tuple[torch.Tensor, torch.Tensor, list[Path]]:
    """Centre crops of the validation images, each paired with :func:`validation_masks`.

    Returns images and masks with one entry per (image, band) pair, the same at every
    validation, and the images used.
    """
    images, valid, used = [], [], []
    for j, path in enumerate(files):
        try:
            crop = centre_crop(_open_rgb(path), size)
        except InputError:
            continue
        image = _to_tensor(np.asarray(crop, dtype=np.float32) / 255.0)
        for m in validation_masks(size, params, seed, j):
            images.append(image)
            valid.append(torch.from_numpy(m[None].astype(np.float32)))
        used.append(path)
    if not images:
        raise InputError("no validation image could be decoded")
    return torch.stack(images), torch.stack(valid), used
