"""A mask set's specification, the files it plans and how each of them is drawn.

``MaskSetSpec`` holds everything that decides a set's pixels; ``plan`` turns it into one
``Task`` per file, each with its own seed from the set seed and the file's place in the set
(never from a worker or a draw counter), so the same spec gives the same files whatever the
number of worker processes. ``sample_for`` draws a task's mask: the stroke generator (steered
into a band for banded sets) or, for ``shape="thin"``, the damage synthesiser's thin holes.
Both ``sets`` (writing a folder) and ``preview`` (a contact sheet) start here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from ..imaging import list_images
from ..seeds import mask_seed
from .bands import PAPER_BAND_EDGES, check_edges, fmt_ratio, ratio_of_holes
from .generator import GENERATOR_VERSION, clear_margin
from .params import MIN_SIZE, MaskParams
from .steering import MaskSample, sample_mask

MASK_SHAPES = ("strokes", "thin")
DEFAULT_MARGIN = 0.04  # no-border margin as a fraction of the shorter side


@dataclass(frozen=True)
class MaskSetSpec:
    """Everything that decides the masks of a set folder (see ``write_mask_set``).

    Exactly one of ``count`` (masks with the generator's own ratio distribution) and
    ``per_band`` (that many masks in each band of ``edges``) is set; with ``source`` and
    neither, each source file is transformed once. ``borders`` lists the sets to make: True
    lets holes touch the image edge, False keeps ``margin`` pixels hole-free (default: 4 % of
    the shorter side); two entries make ``border/`` and ``no-border/`` sub-folders.
    """

    size: tuple[int, int] = (512, 512)  # (height, width)
    params: MaskParams = field(default_factory=MaskParams)
    seed: int = 0
    count: int | None = None
    per_band: int | None = None
    edges: tuple[float, ...] = PAPER_BAND_EDGES
    borders: tuple[bool, ...] = (True,)
    margin: int | None = None
    source: Path | None = None
    invert: bool = False
    max_attempts: int = 100
    shape: str = "strokes"
    artefacts: Path | None = None

    def resolved_margin(self) -> int:
        if self.margin is not None:
            return self.margin
        return max(1, round(DEFAULT_MARGIN * min(self.size)))

    def recipe(self) -> dict:
        """The settings that decide each file's pixels (not how many files there are).

        A folder can be resumed or extended only with the same recipe. Bands decide pixels
        only in banded sets; elsewhere they just label the manifest.
        """
        banded = self.per_band is not None
        return {
            "generator": GENERATOR_VERSION,
            "size": {"height": self.size[0], "width": self.size[1]},
            "seed": self.seed,
            "mode": "per-band" if banded else "count",
            "bands": [fmt_ratio(e) for e in self.edges] if banded else None,
            "borders": ["border" if b else "no-border" for b in self.borders],
            "margin": self.resolved_margin() if False in self.borders else None,
            "params": self.params.to_dict(),
            "source": str(self.source) if self.source else None,
            "invert": self.invert,
            # Only where they apply, so that stroke sets made before they existed still match.
            **({"shape": self.shape, "thin": _thin_params(self).to_dict(),
                "damage_generator": _damage_generator_version()}
               if self.shape == "thin" else {}),
        }


def check_spec(spec: MaskSetSpec) -> None:
    """Refuse a spec that cannot make a set, with the gen-masks option to change."""
    h, w = spec.size
    if min(h, w) < MIN_SIZE:
        raise ConfigError(f"size {w}x{h}: masks must be at least {MIN_SIZE} pixels on a side")
    if spec.count is not None and spec.per_band is not None:
        raise ConfigError("give either --count or --per-band, not both")
    if spec.count is None and spec.per_band is None and spec.source is None:
        raise ConfigError("say how many masks: --count N, or --per-band N for banded test sets")
    for name in ("count", "per_band"):
        value = getattr(spec, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} {value}: must be at least 1")
    if spec.seed < 0:
        raise ConfigError(f"--seed {spec.seed}: seeds are non-negative integers")
    if spec.max_attempts < 1:
        raise ConfigError("--max-attempts must be at least 1")
    if not spec.borders or len(set(spec.borders)) != len(spec.borders):
        raise ConfigError("borders: give border, no-border or both")
    check_edges(spec.edges)
    if spec.shape not in MASK_SHAPES:
        raise ConfigError(f"--shape {spec.shape}: one of {', '.join(MASK_SHAPES)}")
    if spec.shape == "thin" and (spec.per_band is not None or spec.source is not None):
        raise ConfigError("--shape thin draws its own widths and ratios: use it with --count, "
                          "without --per-band or --from")
    if spec.artefacts is not None and spec.shape != "thin":
        raise ConfigError("--artefacts adds film artefacts to thin masks: use it with "
                          "--shape thin")
    margin = spec.resolved_margin()
    if margin < 0 or 2 * margin >= min(h, w):
        raise ConfigError(f"--margin {margin}: must be between 0 and half the shorter side")


@dataclass(frozen=True)
class Task:
    """One file of a set: where it goes and what decides its pixels."""

    order: int
    file: str  # relative to the output folder
    seed: int
    border: bool
    band: int | None  # assigned band (per-band sets) or None (drawn freely)
    source: int | None  # index into the source list; None: random per attempt


def set_folder(spec: MaskSetSpec, border: bool) -> str:
    """The sub-folder of a border or no-border set (``""`` when the spec makes only one)."""
    if len(spec.borders) == 1:
        return ""
    return "border/" if border else "no-border/"


def plan(spec: MaskSetSpec, n_sources: int) -> list[Task]:
    """Every file of the set, in manifest order; ``n_sources`` is the number of --from files."""
    tasks: list[Task] = []
    for border in spec.borders:
        folder = set_folder(spec, border)
        if spec.per_band is not None:
            for b in range(len(spec.edges) - 1):
                for i in range(spec.per_band):
                    tasks.append(Task(
                        len(tasks), f"{folder}band{b + 1}_{i:05d}.png",
                        mask_seed(spec.seed, 1, int(border), b, i), border, b, None,
                    ))
        else:
            count = spec.count if spec.count is not None else n_sources
            for i in range(count):
                tasks.append(Task(
                    len(tasks), f"{folder}{i:06d}.png", mask_seed(spec.seed, 0, int(border), i),
                    border, None, i % n_sources if n_sources else None,
                ))
    return tasks


def source_files(spec: MaskSetSpec) -> list[Path]:
    """The --from mask files, in a fixed order (tasks index into this list)."""
    if spec.source is None:
        return []
    if not Path(spec.source).is_dir():
        raise InputError(f"--from {spec.source}: not a folder; point it at a folder of masks")
    files = list_images(spec.source)
    if not files:
        raise InputError(f"{spec.source}: no mask images found; point --from at a mask folder")
    return files


def sample_for(task: Task, spec: MaskSetSpec, sources: list[Path]) -> MaskSample:
    """The mask of one task, the same whichever process draws it."""
    if spec.shape == "thin":
        return _thin_sample(task, spec)
    band = None if task.band is None else (spec.edges[task.band], spec.edges[task.band + 1])
    task_sources = sources if task.source is None else [sources[task.source]]
    return sample_mask(
        task.seed, spec.size, spec.params, band=band,
        margin=0 if task.border else spec.resolved_margin(), sources=task_sources,
        invert=spec.invert, max_attempts=spec.max_attempts,
    )


def _thin_params(spec: MaskSetSpec):  # noqa: ANN202 - the damage package loads lazily
    # Imported here: the damage synthesiser (and SciPy) load only for sets of thin masks.
    from ..damage import ThinHoleParams

    return ThinHoleParams(artefacts=spec.artefacts)


def _damage_generator_version() -> int:
    from ..damage import GENERATOR_VERSION as DAMAGE_GENERATOR_VERSION

    return DAMAGE_GENERATOR_VERSION


def _thin_sample(task: Task, spec: MaskSetSpec) -> MaskSample:
    """Hairs, specks, scratches and cracks 1–4 px wide (and film artefacts): the damage
    synthesiser's thin kinds, for training fills of thin damage."""
    from ..damage import thin_hole_mask

    hole = thin_hole_mask(spec.size, np.random.default_rng(task.seed), _thin_params(spec))
    hole = clear_margin(hole, 0 if task.border else spec.resolved_margin())
    return MaskSample(~hole, ratio_of_holes(hole), 1)
