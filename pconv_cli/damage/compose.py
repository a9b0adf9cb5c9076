"""The damage synthesiser's parameters and entry points: ``synthesise`` and ``thin_hole_mask``."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .artefacts import (
    ARTEFACT_WEIGHTS,
    THIN_ARTEFACT_WEIGHTS,
    ArtefactStyle,
    artefact,
    open_library,
    resolve_folder,
)
from .degrade import DEGRADATIONS, IMAGE_KINDS
from .layers import Layer, apply_layers
from .losses import crease, missing_corner, missing_edge, tear, wormhole
from .procedural import THIN_KINDS, Style
from .stains import foxing, ink, mould, tape

# Bump when the same seed and parameters would give different pixels, so that a recipe that
# records it (a mask set, a training run) can refuse to mix two versions of the synthesiser.
GENERATOR_VERSION = 1

PROCEDURAL_KINDS = {
    **THIN_KINDS, "crease": crease, "tear": tear, "missing_corner": missing_corner,
    "missing_edge": missing_edge, "wormhole": wormhole, "ink": ink, "foxing": foxing,
    "mould": mould, "tape": tape,
}
# How often each kind is drawn; "artefact" only counts when an artefact folder is given.
DAMAGE_WEIGHTS: dict[str, float] = {
    "artefact": 4.0, "scratch": 1.5, "curved_scratch": 0.6, "hair": 2.0, "dust": 2.0,
    "crack": 1.0, "crease": 0.5, "tear": 0.4, "missing_corner": 0.3, "missing_edge": 0.3,
    "wormhole": 0.4, "ink": 0.4, "foxing": 0.8, "mould": 0.4, "tape": 0.2,
}
THIN_WEIGHTS: dict[str, float] = {
    "artefact": 3.0, "scratch": 1.0, "curved_scratch": 0.5, "hair": 2.0, "dust": 1.5,
    "crack": 1.0,
}
IMAGE_KIND_WEIGHTS: dict[str, float] = {
    "colour": 0.55, "bw_print": 0.2, "sepia_print": 0.1, "film_scan": 0.15,
}
# The chance of each degradation, drawn independently per image.
DEGRADATION_CHANCES: dict[str, float] = {
    "fading": 0.2, "yellowing": 0.2, "grain": 0.15, "noise": 0.3, "blur": 0.25, "jpeg": 0.4,
}
ARTEFACT_THRESHOLD = 8 / 255  # the artefacts' own faint halo below this is scanner noise
_MAX_LINE_WIDTH = 16.0


# --------------------------------------------------------------------------- parameters


def _check_weights(label: str, weights: Mapping[str, float], known, *, chances: bool = False
                   ) -> dict[str, float]:
    if not isinstance(weights, Mapping):
        raise ConfigError(f"damage parameter {label}: give a mapping of names to weights")
    unknown = sorted(set(weights) - set(known))
    if unknown:
        raise ConfigError(f"damage parameter {label}: unknown {', '.join(unknown)}; "
                          f"choose from {', '.join(known)}")
    checked = {}
    for name, value in weights.items():
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"damage parameter {label}[{name}]: {value!r} is not a number"
                              ) from None
        top = 1.0 if chances else math.inf
        if not (0 <= value <= top) or math.isnan(value):
            what = "a chance between 0 and 1" if chances else "a weight of 0 or more"
            raise ConfigError(f"damage parameter {label}[{name}]: {value} is not {what}")
        checked[name] = value
    return checked


def _check_range(label: str, value, lowest: float, highest: float, *, integer: bool = False
                 ) -> tuple:
    try:
        lo, hi = value
        lo, hi = (int(lo), int(hi)) if integer else (float(lo), float(hi))
    except (TypeError, ValueError):
        raise ConfigError(f"damage parameter {label}: give (low, high), not {value!r}") from None
    if not lowest <= lo <= hi <= highest:
        raise ConfigError(f"damage parameter {label}: ({lo}, {hi}) must be increasing and "
                          f"within [{lowest}, {highest}]")
    return lo, hi


def _check_share(label: str, value: float, *, below_one: bool = False) -> float:
    value = float(value)
    if not 0 <= value <= 1 or (below_one and value >= 1):
        raise ConfigError(f"damage parameter {label}: {value} must lie in [0, 1"
                          f"{')' if below_one else ']'}")
    return value


class _Checked:
    """Validates and freezes copies of the fields (mappings copied, ranges as tuples)."""

    def _set(self, name: str, value) -> None:
        object.__setattr__(self, name, value)

    def _check_common(self) -> None:
        self._set("count", _check_range("count", self.count, 0, 10_000, integer=True))
        self._set("line_width", _check_range("line_width", self.line_width, 0.5,
                                             _MAX_LINE_WIDTH))
        self._set("speck_size", _check_range("speck_size", self.speck_size, 0.5,
                                             _MAX_LINE_WIDTH))
        self._set("artefact_scale", _check_range("artefact_scale", self.artefact_scale,
                                                 0.01, 8.0))
        self._set("artefact_extent", _check_range("artefact_extent", self.artefact_extent,
                                                  0.001, 4.0))
        self._set("alpha_threshold", _check_share("alpha_threshold", self.alpha_threshold,
                                                  below_one=True))
        if self.artefacts is not None and not isinstance(self.artefacts, (str, os.PathLike)):
            raise ConfigError(f"damage parameter artefacts: {self.artefacts!r} is not a path")
        if self.artefacts is not None:
            self._set("artefacts", Path(self.artefacts))
        self._set("artefact_classes", _check_weights(
            "artefact_classes", self.artefact_classes, list(self.artefact_classes)))

    def to_dict(self) -> dict:
        """Plain values, for a training config or a recipe file."""
        out = dataclasses.asdict(self)
        if out.get("artefacts") is not None:
            out["artefacts"] = str(out["artefacts"])
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: Mapping):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown damage parameters: {', '.join(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class DamageParams(_Checked):
    """What ``synthesise`` draws. Weights are relative; ranges ``(low, high)`` are uniform.

    ``artefacts`` is a folder of real artefact cut-outs (None: $PCONV_DAMAGE_ARTEFACTS if
    set, else procedural damage only).
    """

    kinds: Mapping[str, float] = field(default_factory=lambda: dict(DAMAGE_WEIGHTS))
    count: tuple[int, int] = (3, 15)  # damages per image
    line_width: tuple[float, float] = (1.0, 4.0)  # px: scratches, hairs, cracks
    speck_size: tuple[float, float] = (1.0, 6.0)  # px: diameter of dust specks
    dark_share: float = 0.5  # share of scratches, hairs, specks and artefacts drawn dark
    artefacts: str | os.PathLike | None = None
    artefact_classes: Mapping[str, float] = field(
        default_factory=lambda: dict(ARTEFACT_WEIGHTS))
    artefact_scale: tuple[float, float] = (0.35, 1.0)  # fibres, scratches: of their own size
    artefact_extent: tuple[float, float] = (0.02, 0.25)  # blotches: of the image's shorter side
    artefact_opacity: tuple[float, float] = (0.6, 1.0)
    alpha_threshold: float = ARTEFACT_THRESHOLD  # soft alphas above this are damage
    image_kinds: Mapping[str, float] = field(default_factory=lambda: dict(IMAGE_KIND_WEIGHTS))
    degradations: Mapping[str, float] = field(
        default_factory=lambda: dict(DEGRADATION_CHANCES))

    def __post_init__(self) -> None:
        self._check_common()
        self._set("kinds", _check_weights("kinds", self.kinds, list(DAMAGE_WEIGHTS)))
        self._set("dark_share", _check_share("dark_share", self.dark_share))
        self._set("artefact_opacity", _check_range("artefact_opacity", self.artefact_opacity,
                                                   0.0, 1.0))
        self._set("image_kinds", _check_weights("image_kinds", self.image_kinds,
                                                list(IMAGE_KINDS)))
        if not any(self.image_kinds.values()):
            raise ConfigError("damage parameter image_kinds: give at least one a weight above 0"
                              " (colour keeps the photo as it is)")
        self._set("degradations", _check_weights("degradations", self.degradations,
                                                 list(DEGRADATIONS), chances=True))


@dataclass(frozen=True)
class ThinHoleParams(_Checked):
    """What ``thin_hole_mask`` draws: only thin kinds, and thin artefact classes."""

    kinds: Mapping[str, float] = field(default_factory=lambda: dict(THIN_WEIGHTS))
    count: tuple[int, int] = (2, 10)
    line_width: tuple[float, float] = (1.0, 4.0)
    speck_size: tuple[float, float] = (1.0, 6.0)
    artefacts: str | os.PathLike | None = None
    artefact_classes: Mapping[str, float] = field(
        default_factory=lambda: dict(THIN_ARTEFACT_WEIGHTS))
    artefact_scale: tuple[float, float] = (0.35, 1.0)
    artefact_extent: tuple[float, float] = (0.02, 0.25)
    alpha_threshold: float = ARTEFACT_THRESHOLD

    def __post_init__(self) -> None:
        self._check_common()
        self._set("kinds", _check_weights("kinds", self.kinds, list(THIN_WEIGHTS)))


# --------------------------------------------------------------------------- drawing


KindFunction = Callable[[np.random.Generator, tuple[int, int]], list[Layer]]


def _kind_functions(p: DamageParams | ThinHoleParams, catalogue: Mapping
                    ) -> tuple[list[str], np.ndarray, dict[str, KindFunction]]:
    """The kinds that can be drawn, their probabilities and their functions."""
    # A mask has no colours; its kinds still draw them, so that shapes follow the same draws.
    dark_share = p.dark_share if isinstance(p, DamageParams) else 0.5
    style = Style(p.line_width, p.speck_size, dark_share)
    functions: dict[str, KindFunction] = {
        name: (lambda rng, size, f=f: f(rng, size, style)) for name, f in catalogue.items()
    }
    weights = {name: wt for name, wt in p.kinds.items() if wt > 0}
    folder = resolve_folder(p.artefacts)
    if "artefact" in weights:
        if folder is None:
            del weights["artefact"]  # procedural only, as documented
        else:
            library = open_library(folder.resolve())
            opacity = getattr(p, "artefact_opacity", (1.0, 1.0))
            art = ArtefactStyle(library, dict(p.artefact_classes), p.artefact_scale,
                                p.artefact_extent, opacity, dark_share)
            library.usable_weights(art.weights)  # an unusable folder fails before drawing
            functions["artefact"] = lambda rng, size: artefact(rng, size, art)
    if not weights and p.count[1] > 0:
        raise ConfigError(
            "damage parameter kinds: nothing to draw; give a procedural kind a weight above 0, "
            "or give an artefact folder (artefacts=, or $PCONV_DAMAGE_ARTEFACTS)")
    names = list(weights)
    probabilities = np.array([weights[n] for n in names], dtype=np.float64)
    if names:
        probabilities /= probabilities.sum()
    return names, probabilities, functions


def _draw_layers(rng: np.random.Generator, size: tuple[int, int],
                 p: DamageParams | ThinHoleParams, catalogue: Mapping
                 ) -> tuple[list[str], list[Layer]]:
    names, probabilities, functions = _kind_functions(p, catalogue)
    count = int(rng.integers(p.count[0], p.count[1] + 1))
    if not names:
        return [], []
    drawn = [names[i] for i in rng.choice(len(names), size=count, p=probabilities)]
    layers = [layer for name in drawn for layer in functions[name](rng, size)]
    return drawn, layers


@dataclass(frozen=True)
class Damaged:
    """A synthesised damaged image and its exact damage mask."""

    image: np.ndarray  # float32 H×W×3 in [0, 1]: damaged, then degraded
    hole: np.ndarray  # bool H×W, True where damage changed a pixel
    base: np.ndarray  # float32 H×W×3: the image under the damage (after the image kind)
    image_kind: str
    kinds: tuple[str, ...]  # the damages drawn, in the order laid on
    degradations: tuple[str, ...]  # applied after the damage, in order

    @property
    def valid(self) -> np.ndarray:
        """The mask in the library's convention: True = valid, False = hole."""
        return ~self.hole


def _checked_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise ConfigError(f"damage: the image must be an H×W×3 RGB array, not shape {shape}")
    if not np.issubdtype(image.dtype, np.floating):
        raise ConfigError(f"damage: the image must be float in [0, 1], not {image.dtype}; "
                          "divide 8-bit pixels by 255")
    if min(image.shape[:2]) < 8:
        raise ConfigError(f"damage: image {image.shape[1]}x{image.shape[0]} is too small; "
                          "give at least 8x8 pixels")
    image = image.astype(np.float32, copy=False)
    lo, hi = float(image.min()), float(image.max())
    if not (0.0 <= lo and hi <= 1.0):  # NaN fails too
        raise ConfigError(f"damage: pixel values span [{lo}, {hi}]; scale them to [0, 1]")
    return image


def _checked_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ConfigError("damage: pass a numpy Generator, e.g. "
                          "np.random.default_rng(damage_seed(seed, index))")
    return rng


def synthesise(image: np.ndarray, rng: np.random.Generator,
               params: DamageParams | None = None) -> Damaged:
    """Damage a clean float RGB image (H×W×3 in [0, 1]) and say exactly where.

    The image kind is applied first (it is not damage), then the drawn damages are laid on,
    each changing only the pixels it marks, then the degradations are applied everywhere
    (not marked). Draws come only from ``rng``: the same generator state and parameters give
    bit-identical results.
    """
    image = _checked_image(image)
    rng = _checked_rng(rng)
    p = params if params is not None else DamageParams()
    kinds = list(p.image_kinds)
    weights = np.array([p.image_kinds[k] for k in kinds], dtype=np.float64)
    image_kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
    base = np.asarray(IMAGE_KINDS[image_kind](image, rng), dtype=np.float32)
    drawn, layers = _draw_layers(rng, base.shape[:2], p, PROCEDURAL_KINDS)
    damaged, hole = apply_layers(base, layers, p.alpha_threshold)
    applied = []
    for name, degrade in DEGRADATIONS.items():
        if rng.random() < p.degradations.get(name, 0.0):
            damaged = degrade(damaged, rng)
            applied.append(name)
    return Damaged(damaged, hole, base, image_kind, tuple(drawn), tuple(applied))


def thin_hole_mask(shape: tuple[int, int], rng: np.random.Generator,
                   params: ThinHoleParams | None = None) -> np.ndarray:
    """Thin holes (hairs, specks, scratches, cracks, thin artefacts) for inpainting training.

    Returns a bool (height, width) array with **True = hole**; ``~mask`` is the library's
    valid mask. The shapes are those ``synthesise`` draws for the same kinds.
    """
    try:
        h, w = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise ConfigError(f"thin_hole_mask: shape {shape!r} is not (height, width)") from None
    if min(h, w) < 8:
        raise ConfigError(f"thin_hole_mask: shape {shape} is too small; give at least 8x8")
    rng = _checked_rng(rng)
    p = params if params is not None else ThinHoleParams()
    _, layers = _draw_layers(rng, (h, w), p, THIN_KINDS)
    hole = np.zeros((h, w), dtype=bool)
    for layer in layers:
        top, left, alpha = layer.patch
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + alpha.shape[0], h), min(left + alpha.shape[1], w)
        if y0 < y1 and x0 < x1:
            hole[y0:y1, x0:x1] |= alpha[y0 - top:y1 - top, x0 - left:x1 - left] > \
                p.alpha_threshold
    return hole
