#!/usr/bin/env python3
"""Write pconv's thin-damage evaluation set: images of several kinds at native resolution, each
with its own seeded thin-hole mask of the same name.

    python scripts/make_thin_eval_set.py eval-sets/thin

    pconv evaluate --images eval-sets/thin/images --masks eval-sets/thin/masks \\
        --pairs named --native --bands 0,1 --method pconv,ns,telea,biharmonic,fsr

Layout (the first sub-folder is the image kind ``pconv evaluate`` groups by):

    images/photo/     colour photographs, as scikit-image bundles them
    images/bw/        black-and-white photographs (one native, one converted)
    images/sepia/     sepia-toned, faded prints made from colour photographs
    images/film/      "film scans": colour photographs with seeded grain, fade and a warm cast
    images/document/  scikit-image's two scanned text images, page() and text()
    masks/<kind>/<name>.png   white = hole, the image's size

Every source is one of scikit-image's bundled images, which pconv RESERVES FOR EVALUATION: never
train on this set. The masks come from ``pconv_cli.damage.thin_hole_mask`` (hairs, specks,
scratches, cracks) with widths widened past the default 1-4 px, so that every hole-width group
of the protocol (<= 2 px, 3-6 px, wider) is populated. The same seed gives byte-identical files.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from pconv_cli.damage import GENERATOR_VERSION, ThinHoleParams, damage_seed, thin_hole_mask
from pconv_cli.imaging import save_mask
from pconv_cli.metrics import WIDTH_GROUPS, hole_width_groups

SEED = 20261207
MASK_PARAMS = ThinHoleParams(count=(8, 16), line_width=(1.0, 8.0), speck_size=(1.0, 12.0))

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def load(name: str) -> np.ndarray:
    """A scikit-image data image as float RGB in [0, 1]."""
    from skimage import data

    pixels = np.asarray(getattr(data, name)(), dtype=np.float32) / 255.0
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    return pixels


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # Rec. 601, as film scans


def as_is(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return rgb


def black_and_white(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.repeat(luminance(rgb)[..., None], 3, axis=2)


def sepia(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A toned, faded print: blacks lifted, whites dulled, brown-yellow tint."""
    faded = 0.10 + 0.80 * luminance(rgb)
    tint = np.array([1.00, 0.84, 0.64], dtype=np.float32)
    return np.clip(faded[..., None] * tint + np.array([0.04, 0.03, 0.02]), 0.0, 1.0)


def film_scan(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour negative film, scanned: clumped grain strongest in the mid-tones, a slight fade
    and a warm cast."""
    lum = luminance(rgb)[..., None]
    grain = rng.normal(0.0, 1.0, rgb.shape[:2] + (1,)).astype(np.float32)
    colour_grain = rng.normal(0.0, 0.35, rgb.shape).astype(np.float32)
    noise = ndimage.gaussian_filter(grain + colour_grain, sigma=(0.7, 0.7, 0))
    strength = 0.06 * (0.35 + 4.0 * lum * (1.0 - lum))  # mid-tones carry the most grain
    faded = 0.05 + 0.9 * rgb
    warm = faded * np.array([1.03, 1.0, 0.92], dtype=np.float32)
    return np.clip(warm + strength * noise, 0.0, 1.0)


# (kind, file stem, scikit-image name, transform, credit and licence of the source)
CREDITS = {
    "astronaut": "NASA (Eileen Collins); public domain",
    "chelsea": "Stefan van der Walt; CC0",
    "coffee": "Rachel Michetti; CC0",
    "rocket": "SpaceX; public domain (CC0)",
    "camera": "Lav Varshney; CC0",
    "page": "scanned page bundled with scikit-image (its BSD-3-Clause licence; no other "
            "licence stated)",
    "text": "Wikipedia File:Corner.png; public domain",
}
ENTRIES: list[tuple[str, str, str, Transform]] = [
    ("photo", "astronaut", "astronaut", as_is),
    ("photo", "chelsea", "chelsea", as_is),
    ("photo", "coffee", "coffee", as_is),
    ("photo", "rocket", "rocket", as_is),
    ("bw", "camera", "camera", as_is),
    ("bw", "coffee-bw", "coffee", black_and_white),
    ("sepia", "astronaut-sepia", "astronaut", sepia),
    ("sepia", "chelsea-sepia", "chelsea", sepia),
    ("film", "rocket-film", "rocket", film_scan),
    ("film", "astronaut-film", "astronaut", film_scan),
    ("document", "page", "page", as_is),
    ("document", "text", "text", as_is),
]


def write_set(out: Path, seed: int) -> list[dict[str, object]]:
    rows = []
    for index, (kind, stem, source, transform) in enumerate(ENTRIES):
        rng = np.random.default_rng(damage_seed(seed, index, 0))
        pixels = transform(load(source), rng)
        image_path = out / "images" / kind / f"{stem}.png"
        image_path.parent.mkdir(parents=True, exist_ok=True)
        rgb = np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)
        grey = np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0],
                                                                           rgb[..., 2])
        # Grey images are stored with one channel (a third of the bytes); pconv reads them
        # back as RGB with three equal channels.
        Image.fromarray(rgb[..., 0] if grey else rgb).save(image_path, optimize=True)
        holes = thin_hole_mask(rgb.shape[:2], np.random.default_rng(damage_seed(seed, index, 1)),
                               MASK_PARAMS)
        mask_path = out / "masks" / kind / f"{stem}.png"
        mask_path.parent.mkdir(parents=True, exist_ok=True)
        save_mask(mask_path, ~holes)
        groups = hole_width_groups(~holes)
        rows.append({
            "kind": kind, "file": f"{kind}/{stem}.png", "source": f"skimage.data.{source}()",
            "made": transform.__name__.replace("_", " "), "width": rgb.shape[1],
            "height": rgb.shape[0], "hole_ratio": float(holes.mean()),
            **{label: int((groups == k).sum()) for k, (label, _) in enumerate(WIDTH_GROUPS)},
            "credit": CREDITS[source],
        })
    return rows


def readme_table(rows: list[dict[str, object]]) -> str:
    labels = [label for label, _ in WIDTH_GROUPS]
    head = ("| file | from | made | size | hole ratio | hole px " + " | ".join(labels)
            + " | credit, licence |")
    lines = [head, "|---|---|---|---|---:|" + "---:|" * len(labels) + "---|"]
    for r in rows:
        widths = " | ".join(str(r[label]) for label in labels)
        lines.append(f"| {r['file']} | `{r['source']}` | {r['made']} | {r['width']}×{r['height']}"
                     f" | {r['hole_ratio']:.4f} | {widths} | {r['credit']} |")
    return "\n".join(lines).replace("<", "&lt;").replace(">", "&gt;")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write images/, masks/ into")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    rows = write_set(args.out, args.seed)
    print(readme_table(rows))
    print(f"\nmask recipe: thin_hole_mask, generator version {GENERATOR_VERSION}, seed "
          f"{args.seed}, {MASK_PARAMS.count=}, {MASK_PARAMS.line_width=}, "
          f"{MASK_PARAMS.speck_size=}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
