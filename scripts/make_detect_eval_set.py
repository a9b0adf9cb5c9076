#!/usr/bin/env python3
"""Write pconv's damage-detector evaluation set: for each clean image and each damage kind of
the synthesiser, one damaged image carrying only that kind, with its exact mask.

    python scripts/make_detect_eval_set.py eval-sets/detect

    pconv evaluate --detector runs/detector/best.pt --detect-set eval-sets/detect

Layout (``pconv_cli.detection_eval`` reads it):

    damaged/<damage kind>/<name>.png   the image kind, the damage, then the degradations
    masks/<damage kind>/<name>.png     white = hole: exactly the pixels whose 8-bit value the
                                       damage changed
    clean/<name>.png                   the image under the damage (after the image kind): the
                                       reference of the end-to-end scores
    undamaged/<name>.png               the same image kind, degradations, no damage at all
    manifest.json                      what was drawn for every file

The clean sources are the photographs and documents of the thin-damage set
(scripts/make_thin_eval_set.py, as they are: its image list and loader are imported from
there), centre-cropped to at most ``CROP`` px a side so that the set stays small. They are
scikit-image's bundled images, which pconv RESERVES FOR EVALUATION: never train on this set.

Every image of one source is drawn from the same seed, so the synthesiser draws the same
image kind (colour, black-and-white or sepia print, film scan) for it under every damage
kind: one ``clean/`` file serves all of them (the script checks that it does), and every row
of the per-kind table is measured on the same pictures. The degradations (fading, grain,
noise, blur, JPEG...) come later in the draw and differ from file to file, as the synthesiser
draws them. The same seed and synthesiser version give byte-identical files.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pconv_cli.damage import (
    DAMAGE_WEIGHTS,
    GENERATOR_VERSION,
    DamageParams,
    damage_seed,
    synthesise,
)
from pconv_cli.errors import ConfigError
from pconv_cli.fileio import atomic_path
from pconv_cli.imaging import save_mask, to_uint8

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_thin_eval_set import CREDITS, ENTRIES, as_is, load  # noqa: E402

SEED = 20261214  # the first seed from 20261208 up whose draws cover all four image kinds
CROP = 240  # px: the longest a side of a crop may be (the set stays under 10 MB)
COUNT = (2, 6)  # damages per image, all of the one kind
ARTEFACTS = Path(__file__).resolve().parents[1].parent / "shared" / "damage-artefacts"
# (name, scikit-image name): the thin set's images taken as they are, in its order.
SOURCES: tuple[tuple[str, str], ...] = tuple(
    (stem, source) for _kind, stem, source, transform in ENTRIES if transform is as_is)
KINDS = tuple(DAMAGE_WEIGHTS)


@dataclass(frozen=True)
class Drawn:
    """One written file of the set and what the synthesiser drew for it."""

    kind: str  # the damage kind, or "" for an undamaged image
    name: str
    image_kind: str
    degradations: tuple[str, ...]
    damages: int
    hole_fraction: float


def centre_crop(pixels: np.ndarray, side: int = CROP) -> np.ndarray:
    """The middle of an image, at most ``side`` px high and wide (the native pixels: thin
    damage keeps its width, the photo its grain)."""
    height, width = pixels.shape[:2]
    top, left = (height - min(height, side)) // 2, (width - min(width, side)) // 2
    return pixels[top:top + side, left:left + side]


def params_for(kind: str | None, artefacts: Path | None) -> DamageParams:
    """Only ``kind`` (None: no damage at all), the synthesiser's image kinds and degradations.

    Only the artefact kind reads a folder, always the one given: a procedural kind alone never
    looks at $PCONV_DAMAGE_ARTEFACTS, so no draw depends on the environment.
    """
    if kind is None:
        return DamageParams(kinds={"hair": 1.0}, count=(0, 0))
    folder = artefacts if kind == "artefact" else None
    if kind == "artefact" and folder is None:
        raise ConfigError("the artefact kind needs the film-artefact folder: give --artefacts "
                          "DIR, or leave it out with --kinds")
    return DamageParams(kinds={kind: 1.0}, count=COUNT, artefacts=folder)


def save_rgb(path: Path, pixels: np.ndarray) -> None:
    """An 8-bit PNG; grey images with one channel (a third of the bytes), which pconv reads
    back as three equal channels."""
    rgb = to_uint8(pixels)
    grey = bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == rgb[..., 2]).all())
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(rgb[..., 0] if grey else rgb).save(tmp, format="PNG", optimize=True)


def hole_in_8_bits(clean: np.ndarray, index: int, seed: int, params: DamageParams,
                   hole: np.ndarray) -> np.ndarray:
    """The synthesiser's mask less the pixels whose 8-bit value the damage left as it was.

    The synthesiser marks every pixel its layers changed in float; where a later layer all
    but undoes an earlier one (tape over its own edge) the change can round away, and a file
    would then mark a pixel that it shows unchanged. The same draw without degradations (they
    come last, so everything before them is drawn the same) gives the damaged pixels before
    they were degraded, to compare with the clean ones at the precision the files store.
    """
    plain = dataclasses.replace(params, degradations={})
    undegraded = synthesise(clean, np.random.default_rng(damage_seed(seed, index)), plain)
    if not np.array_equal(undegraded.hole, hole):
        raise RuntimeError("the synthesiser drew other damage without degradations")
    return hole & (to_uint8(undegraded.image) != to_uint8(undegraded.base)).any(axis=-1)


def write_source(out: Path, index: int, name: str, source: str, kinds: tuple[str, ...],
                 seed: int, artefacts: Path | None) -> list[Drawn]:
    """Every file of one clean source: its clean and undamaged images, one damaged image and
    mask per kind."""
    clean = centre_crop(load(source))
    drawn = []
    base = None
    for kind in (None, *kinds):
        params = params_for(kind, artefacts)
        result = synthesise(clean, np.random.default_rng(damage_seed(seed, index)), params)
        if base is None:
            base = result.base
            save_rgb(out / "clean" / f"{name}.png", base)
        elif not np.array_equal(result.base, base):
            raise RuntimeError(f"{name}, {kind}: the synthesiser drew another image kind from "
                               "the same seed; clean/ would not be the image under the damage")
        if kind is None:
            save_rgb(out / "undamaged" / f"{name}.png", result.image)
        else:
            hole = hole_in_8_bits(clean, index, seed, params, result.hole)
            save_rgb(out / "damaged" / kind / f"{name}.png", result.image)
            (out / "masks" / kind).mkdir(parents=True, exist_ok=True)
            save_mask(out / "masks" / kind / f"{name}.png", ~hole)
        drawn.append(Drawn(kind or "", name, result.image_kind, result.degradations,
                           len(result.kinds), float(hole.mean()) if kind else 0.0))
    return drawn


def write_set(out: Path, seed: int = SEED, *, kinds: tuple[str, ...] = KINDS,
              names: tuple[str, ...] | None = None, artefacts: Path | None = ARTEFACTS
              ) -> list[Drawn]:
    """Write the set (or the ``names`` of it, for the ``kinds`` given) into ``out``; a subset
    gives the same files as the whole set, since every source keeps its own seed."""
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ConfigError(f"unknown damage kinds {', '.join(unknown)}; choose from "
                          f"{', '.join(KINDS)}")
    chosen = [(i, n, s) for i, (n, s) in enumerate(SOURCES) if names is None or n in names]
    if names is not None and len(chosen) != len(set(names)):
        raise ConfigError(f"unknown images in {', '.join(names)}; choose from "
                          f"{', '.join(n for n, _ in SOURCES)}")
    if "artefact" in kinds and artefacts is not None and not Path(artefacts).is_dir():
        raise ConfigError(f"{artefacts}: no film-artefact folder there; give --artefacts DIR, "
                          "or leave the artefact kind out with --kinds")
    drawn = []
    for index, name, source in chosen:
        drawn += write_source(out, index, name, source, kinds, seed, artefacts)
    manifest = {
        "seed": seed, "generator_version": GENERATOR_VERSION, "crop": CROP,
        "count": list(COUNT), "kinds": list(kinds),
        "files": [{"kind": d.kind, "name": d.name, "image_kind": d.image_kind,
                   "degradations": list(d.degradations), "damages": d.damages,
                   "hole_fraction": round(d.hole_fraction, 6)} for d in drawn],
    }
    with atomic_path(out / "manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return drawn


def readme_tables(drawn: list[Drawn]) -> str:
    """Markdown for the README: the sources, and the hole fraction per kind and image."""
    names = list(dict.fromkeys(d.name for d in drawn))
    sources = dict(SOURCES)
    kinds = {d.name: d.image_kind for d in drawn}
    lines = ["| name | from | image kind | credit, licence |", "|---|---|---|---|"]
    lines += [f"| {n} | `skimage.data.{sources[n]}()` | {kinds[n].replace('_', ' ')} | "
              f"{CREDITS[sources[n]]} |" for n in names]
    lines += ["", "| damage kind | " + " | ".join(names) + " |",
              "|---|" + "---:|" * len(names)]
    cells: dict[str, dict[str, str]] = {}
    for d in drawn:
        if d.kind:
            cells.setdefault(d.kind, {})[d.name] = f"{100 * d.hole_fraction:.2f} %"
    lines += [f"| {kind} | " + " | ".join(row.get(n, "") for n in names) + " |"
              for kind, row in cells.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write the set into")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help="comma list of damage kinds [default: all]")
    parser.add_argument("--images", default=None,
                        help="comma list of image names [default: all]")
    parser.add_argument("--artefacts", type=Path, default=ARTEFACTS,
                        help="the film-artefact folder of the artefact kind")
    args = parser.parse_args(argv)
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    names = (tuple(n.strip() for n in args.images.split(",") if n.strip())
             if args.images else None)
    try:
        drawn = write_set(args.out, args.seed, kinds=kinds, names=names,
                          artefacts=args.artefacts)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(readme_tables(drawn))
    print(f"\nseed {args.seed}, damage generator version {GENERATOR_VERSION}, crop {CROP}, "
          f"{COUNT[0]}-{COUNT[1]} damages per image")
    return 0


if __name__ == "__main__":
    sys.exit(main())
