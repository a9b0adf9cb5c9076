"""Training data of the damage detector: clean photographs with synthetic damage laid on.

As for inpainting (:mod:`pconv_cli.data`), every sample is a pure function of
``(seed, sample_id)``, so a resumed run sees exactly the samples an uninterrupted one would.
Sample ``sample_id`` takes the photo the same seeded per-epoch permutation picks, then

- half of the time a crop at the photo's own resolution (thin damage keeps the width it has
  on a real scan, and the photo's own grain and blur stay as they are), else a crop after a
  random rescale (the sizes of things vary);
- a random horizontal flip;
- damage from :func:`pconv_cli.damage.synthesise`, seeded with
  ``damage_seed(seed, _DAMAGE, sample_id)``; the target is its exact mask (1 = damage).

A share of the samples (``clean_fraction``) gets no damage, but still an image kind and the
degradations (grain, JPEG, fading...): they are not damage, and the detector must learn to
leave them alone.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .damage import DAMAGE_WEIGHTS, DamageParams, damage_seed, synthesise
from .data import (
    DecodedImages,
    _open_rgb,
    _to_tensor,
    centre_crop,
    native_crop,
    open_sample_photo,
    random_rescale_crop,
)
from .errors import InputError

# Stream tags, apart from those of pconv_cli.data, keep each draw of a sample independent.
_CROP, _DAMAGE, _VAL_DAMAGE = 10, 11, 12
NATIVE_SHARE = 0.5  # of the crops cut at the photo's own resolution
PROCEDURAL_ONLY = ""  # TrainConfig.artefacts of a run without a film-artefact folder


def damage_params(artefacts: str | os.PathLike) -> DamageParams:
    """The synthesiser's settings for a run: its artefact folder, or procedural damage only.

    "Procedural only" turns the artefact kind off rather than leaving the folder unset, since
    the synthesiser would otherwise read $PCONV_DAMAGE_ARTEFACTS on its own, behind the run's
    recorded settings (a resumed run must draw what it drew before).
    """
    if str(artefacts) == PROCEDURAL_ONLY:
        kinds = {name: weight for name, weight in DAMAGE_WEIGHTS.items() if name != "artefact"}
        return DamageParams(kinds=kinds)
    return DamageParams(artefacts=artefacts)


def without_damage(params: DamageParams) -> DamageParams:
    """The same image kinds and degradations, no damage: the clean samples."""
    return dataclasses.replace(params, count=(0, 0))


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32) / 255.0


class DetectionSamples(Dataset):
    """``dataset[sample_id] -> {"image", "target", "skipped"}`` (see the module docstring):
    image 3×size×size in [0, 1], target 1×size×size (1 = damage)."""

    def __init__(self, files: Sequence[Path], size: int, params: DamageParams,
                 clean_fraction: float, seed: int) -> None:
        self.files = list(files)
        self.size = size
        self.params = params
        self.clean_params = without_damage(params)
        self.clean_fraction = clean_fraction
        self.seed = seed
        self.decoded = DecodedImages()

    def __len__(self) -> int:  # the stream is endless; this is one epoch
        return len(self.files)

    def __getitem__(self, sample_id: int) -> dict:
        photo, skipped = open_sample_photo(self.files, self.decoded, self.seed, sample_id)
        rng = np.random.default_rng([self.seed, _CROP, sample_id])
        if rng.random() < NATIVE_SHARE:
            crop = native_crop(photo, self.size, rng)
        else:
            crop = random_rescale_crop(photo, self.size, rng)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        params = self.clean_params if rng.random() < self.clean_fraction else self.params
        damage_rng = np.random.default_rng(damage_seed(self.seed, _DAMAGE, sample_id))
        damaged = synthesise(_pixels(crop), damage_rng, params)
        return {
            "image": _to_tensor(damaged.image),
            "target": torch.from_numpy(damaged.hole[None].astype(np.float32)),
            "skipped": skipped,
        }


@dataclass(frozen=True)
class DetectionValidationSet:
    """Each validation image twice: with damage drawn from a fixed seed, and clean."""

    images: torch.Tensor  # N×3×S×S: damaged and clean crops, alternating
    targets: torch.Tensor  # N×1×S×S, 1 = damage (all 0 on the clean crops)
    clean: torch.Tensor  # N bool: which crops are the clean copies
    used: list[Path]  # the images that could be decoded


def native_centre_crop(image: Image.Image, size: int) -> Image.Image:
    """The central size×size pixels at the photo's own resolution (a smaller photo is
    rescaled first, as :func:`pconv_cli.data.centre_crop` does)."""
    w, h = image.size
    if min(w, h) < size:
        return centre_crop(image, size)
    x, y = (w - size) // 2, (h - size) // 2
    return image.crop((x, y, x + size, y + size))


def load_detection_validation_set(files: Sequence[Path], size: int, params: DamageParams,
                                  seed: int) -> DetectionValidationSet:
    """Native-resolution centre crops of ``files``, each damaged with
    ``damage_seed(seed, _VAL_DAMAGE, index)`` and also kept clean: the same at every
    validation and on resume."""
    images, targets, clean, used = [], [], [], []
    for index, path in enumerate(files):
        try:
            pixels = _pixels(native_centre_crop(_open_rgb(path), size))
        except InputError:
            continue
        rng = np.random.default_rng(damage_seed(seed, _VAL_DAMAGE, index))
        damaged = synthesise(pixels, rng, params)
        images += [_to_tensor(damaged.image), _to_tensor(pixels)]
        targets += [torch.from_numpy(damaged.hole[None].astype(np.float32)),
                    torch.zeros(1, size, size)]
        clean += [False, True]
        used.append(path)
    if not images:
        raise InputError("no validation image could be decoded")
    return DetectionValidationSet(torch.stack(images), torch.stack(targets),
                                  torch.tensor(clean), used)
