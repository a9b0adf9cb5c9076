"""Signed error of a model's raw fill inside thin holes, against the brightness around them.

A fill that is right on average but too dark on bright paper and too bright on shadows shows
at once on flat areas (paper, sky, film borders); averages of absolute error hide the sign.
This draws seeded thin holes (hairs, specks, scratches, cracks; ``pconv_cli.damage``) on
flat colour cards and on the given photographs, runs the model without the seam blend and
without flips (its raw fill), and prints the mean signed error inside the holes, in grey
levels (0–255), per brightness band of the true pixels, over flat areas (local standard
deviation under 2 grey levels) and everywhere.

    python scripts/thin_hole_bias.py --images data/eval [--model CKPT] [--size 256]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import ndimage

from pconv_cli.damage import ThinHoleParams, damage_seed, thin_hole_mask
from pconv_cli.imaging import list_images, load_image
from pconv_cli.inference import load_inpainter

CARDS = {  # flat colours users' images are full of
    "black": (0.05, 0.05, 0.05), "dark grey": (0.25, 0.25, 0.25), "mid grey": (0.5, 0.5, 0.5),
    "light grey": (0.75, 0.75, 0.75), "white": (0.95, 0.95, 0.95),
    "paper": (0.93, 0.89, 0.80), "sepia": (0.60, 0.45, 0.30), "sky": (0.45, 0.65, 0.90),
}
BANDS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.01)


def card(colour, size: int, rng: np.random.Generator) -> np.ndarray:
    noise = rng.normal(0.0, 0.01, (size, size, 3))  # a scan is never perfectly flat
    return np.clip(np.asarray(colour)[None, None] + noise, 0, 1).astype(np.float32)


def crops(images: list[Path], size: int, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for path in images:
        pixels = load_image(path)  # float32 in [0, 1]
        h, w = pixels.shape[:2]
        if min(h, w) < size:
            continue
        for _ in range(4):
            y, x = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
            out.append(pixels[y:y + size, x:x + size])
    return out


def flat_area(image: np.ndarray) -> np.ndarray:
    grey = image.mean(axis=2)
    mean = ndimage.uniform_filter(grey, 7)
    var = ndimage.uniform_filter(grey * grey, 7) - mean * mean
    return np.sqrt(np.clip(var, 0, None)) < 2 / 255


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, help="photographs to crop (evaluation images)")
    parser.add_argument("--model", type=Path, help="checkpoint (default: the bundled model)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    inpainter = load_inpainter(args.model, device="cpu", blend="none")
    params = ThinHoleParams()  # procedural thin kinds: reproducible without the artefact set

    def run(image: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray]:
        hole = thin_hole_mask(image.shape[:2], np.random.default_rng(damage_seed(args.seed,
                                                                                  index)), params)
        filled = inpainter.inpaint(image[None], ~hole[None])[0]
        return (filled - image)[hole], hole

    print(f"model: {args.model or 'bundled default'}; raw fill (no blend, no flips); "
          "signed error inside thin holes in grey levels (R, G, B)")
    print("\nflat colour cards")
    for k, (name, colour) in enumerate(CARDS.items()):
        err, _ = run(card(colour, args.size, rng), k)
        print(f"  {name:11s} {np.round(err.mean(0) * 255, 1)}   "
              f"|err| {np.abs(err).mean() * 255:.1f}")

    if args.images:
        signed, truth, flat = [], [], []
        for k, image in enumerate(crops(list_images(args.images), args.size, rng)):
            err, hole = run(image, 1000 + k)
            signed.append(err)
            truth.append(image[hole])
            flat.append(flat_area(image)[hole])
        err, true, is_flat = np.concatenate(signed), np.concatenate(truth), np.concatenate(flat)
        luminance = true.mean(axis=1)
        print(f"\nphotographs ({args.images}), by the true pixel's brightness")
        for lo, hi in zip(BANDS, BANDS[1:], strict=False):
            for label, where in (("all", np.ones_like(is_flat)), ("flat", is_flat)):
                pick = (luminance >= lo) & (luminance < hi) & where
                if pick.sum() < 50:
                    continue
                e = err[pick]
                print(f"  {lo:.1f}–{min(hi, 1):.1f} {label:4s} n={pick.sum():7d} "
                      f"{np.round(e.mean(0) * 255, 1)}   |err| {np.abs(e).mean() * 255:.1f}")


if __name__ == "__main__":
    main()
