"""Real film-damage cut-outs: a folder of RGBA PNGs whose alpha is the artefact's exact mask.

The folder is laid out like ``../shared/damage-artefacts`` (FilmDamageSimulator's artefacts):
one sub-folder per class (``hair``, ``scratches``, ``dots``...). Nothing is read at import:
the file list is made on first use and each alpha is decoded when first drawn and kept in a
bounded cache, so a training run touches only what it samples.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ConfigError, InputError
from .geometry import Patch, rotate_patch
from .layers import Layer, paint
from .procedural import dark_colour, light_colour

ARTEFACTS_ENV = "PCONV_DAMAGE_ARTEFACTS"
# Classes of FilmDamageSimulator's artefact set, with how often each is drawn by default:
# loose fibres and specks are what a dusty scan mostly shows; big stains are rarer.
ARTEFACT_WEIGHTS: dict[str, float] = {
    "hair": 3.0, "hair-short": 2.0, "scratches": 1.0, "lint": 1.0, "dirt": 1.0,
    "sprinkles": 0.5, "spots": 2.0, "dots": 1.0, "smut": 1.0, "stain": 0.5,
}
# The classes made of thin strokes or specks, for thin-hole masks.
THIN_ARTEFACT_WEIGHTS: dict[str, float] = {
    "hair": 3.0, "hair-short": 2.0, "scratches": 1.0, "lint": 1.0, "spots": 1.0,
}
# Blotches and fields of grime: their size on a scan is a share of the picture, whatever its
# resolution. The other classes are fibres and scratches, whose width in pixels matters more:
# they keep a scale of their own pixels, so that a hair stays 1-3 px wide.
SIZED_BY_IMAGE = frozenset({"dots", "smut", "stain", "sprinkles", "dirt"})
_MAX_SCALE = 2.0  # beyond this an upscaled cut-out turns visibly blurred
_ALPHA_CACHE_SIZE = 512  # alphas are cropped to their content: typically a few tens of KB


def resolve_folder(folder: str | os.PathLike | None) -> Path | None:
    """The artefact folder to use: ``folder``, else $PCONV_DAMAGE_ARTEFACTS, else None."""
    if folder is None:
        folder = os.environ.get(ARTEFACTS_ENV) or None
    return None if folder is None else Path(folder)


class ArtefactLibrary:
    """The PNG files of an artefact folder, by class; listed on first use, and again only
    when a folder's modification time says that files were added or removed."""

    def __init__(self, folder: Path) -> None:
        if not folder.is_dir():
            raise ConfigError(
                f"damage artefacts {folder}: not a folder; point it at a folder with "
                f"sub-folders such as hair/ and dots/ (or unset ${ARTEFACTS_ENV})"
            )
        self.folder = folder
        self._files: dict[str, list[Path]] = {}
        self._stamp: tuple[int, ...] | None = None

    def _folders(self) -> list[os.DirEntry]:
        return sorted((e for e in os.scandir(self.folder)
                       if e.is_dir() and not e.name.startswith(".")), key=lambda e: e.name)

    @property
    def files(self) -> dict[str, list[Path]]:
        folders = self._folders()
        stamp = (self.folder.stat().st_mtime_ns, *(e.stat().st_mtime_ns for e in folders))
        if stamp != self._stamp:
            self._files = {e.name: sorted(Path(e.path).glob("*.png")) for e in folders}
            self._stamp = stamp
        return self._files

    def usable_weights(self, weights: dict[str, float]) -> dict[str, float]:
        """The classes of ``weights`` that have files here, with their weights."""
        usable = {name: wt for name, wt in weights.items() if wt > 0 and self.files.get(name)}
        if not usable:
            wanted = ", ".join(name for name, wt in weights.items() if wt > 0)
            raise ConfigError(
                f"damage artefacts {self.folder}: no PNG files in any of the sub-folders "
                f"{wanted}; use a folder laid out like FilmDamageSimulator's artefacts"
            )
        return usable

    def pick(self, rng: np.random.Generator, weights: dict[str, float]) -> Path:
        usable = self.usable_weights(weights)
        names = list(usable)
        p = np.array([usable[n] for n in names], dtype=np.float64)
        files = self._files[names[int(rng.choice(len(names), p=p / p.sum()))]]
        return files[int(rng.integers(len(files)))]


@lru_cache(maxsize=8)
def open_library(folder: Path) -> ArtefactLibrary:
    return ArtefactLibrary(folder)


@lru_cache(maxsize=_ALPHA_CACHE_SIZE)
def load_alpha(path: Path) -> np.ndarray:
    """The artefact's alpha as float32 in [0, 1], cropped to its non-zero pixels (read-only)."""
    try:
        with Image.open(path) as img:
            if img.mode not in ("RGBA", "LA", "PA"):
                raise InputError(f"{path}: a damage artefact needs an alpha channel "
                                 f"(mode {img.mode}); save it as an RGBA PNG")
            alpha = np.asarray(img.getchannel("A"))
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"{path}: cannot read this damage artefact ({exc})") from None
    rows = np.flatnonzero(alpha.any(axis=1))
    cols = np.flatnonzero(alpha.any(axis=0))
    if len(rows) == 0:
        out = np.zeros((1, 1), dtype=np.float32)
    else:
        out = alpha[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].astype(np.float32) / 255
    out.flags.writeable = False
    return out


@dataclass(frozen=True)
class ArtefactStyle:
    library: ArtefactLibrary
    weights: dict[str, float]
    scale: tuple[float, float]  # of the artefact's own pixels
    extent: tuple[float, float]  # longer side / image's shorter side, for SIZED_BY_IMAGE
    opacity: tuple[float, float]
    dark_share: float  # chance of a darkened artefact (dust on a print) instead of a white one


def artefact_patch(rng: np.random.Generator, size: tuple[int, int], style: ArtefactStyle
                   ) -> Patch:
    """A random artefact's alpha: scaled, turned, maybe mirrored, placed anywhere."""
    h, w = size
    path = style.library.pick(rng, style.weights)
    alpha = load_alpha(path)
    if path.parent.name in SIZED_BY_IMAGE:
        scale = min(rng.uniform(*style.extent) * min(h, w) / max(alpha.shape), _MAX_SCALE)
    else:
        scale = rng.uniform(*style.scale)
    turned = rotate_patch(alpha, rng.uniform(0, 2 * math.pi), scale, bool(rng.random() < 0.5))
    turned *= rng.uniform(*style.opacity)
    cy, cx = rng.random(2) * np.array([h - 1, w - 1])
    return Patch(int(round(cy - turned.shape[0] / 2)), int(round(cx - turned.shape[1] / 2)),
                 np.clip(turned, 0.0, 1.0).astype(np.float32))


def artefact(rng: np.random.Generator, size: tuple[int, int], style: ArtefactStyle
             ) -> list[Layer]:
    """A real film artefact, white as on a positive film scan or dark as dust on a print."""
    patch = artefact_patch(rng, size, style)
    colour = dark_colour(rng) if rng.random() < style.dark_share else light_colour(rng)
    return [paint(patch, colour)]
