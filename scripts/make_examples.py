#!/usr/bin/env python3
"""Regenerate pconv's example inputs (examples/damaged, examples/masks) from held-out photos.

    python scripts/prepare_training_photos.py data/train --holdout-dir data/holdout
    python scripts/make_examples.py [--holdout-dir data/holdout] [--out examples]

The photographs come from the hold-out set of prepare_training_photos.py, so pconv's own model
has never seen them. Each example gets a mask drawn with PIL ImageDraw from a fixed seed
(scratches, a scribble, a stain), the photo is painted over where the mask is, and both are
written at 512 px wide: ``damaged/NAME.jpg`` (JPEG quality 90) and ``masks/NAME.png`` (8-bit
greyscale, white 255 = hole, black 0 = valid). The output is the same on every run.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
WIDTH = 512
JPEG_QUALITY = 90
HOLE_RANGE = (0.05, 0.25)  # allowed fraction of hole pixels
# The mask is grown by this many pixels around the paint, because JPEG smears the paint's
# colour a pixel or two into its surroundings; those pixels are damaged too.
MASK_MARGIN = 2

Point = tuple[float, float]


def _wobbly_line(rng: random.Random, start: Point, end: Point, steps: int,
                 wobble: float) -> list[Point]:
    (x0, y0), (x1, y1) = start, end
    pts = []
    for i in range(steps + 1):
        t = i / steps
        pts.append((x0 + (x1 - x0) * t + rng.uniform(-wobble, wobble),
                    y0 + (y1 - y0) * t + rng.uniform(-wobble, wobble)))
    return pts


def _random_walk(rng: random.Random, w: int, h: int, start: Point, n: int,
                 step: tuple[float, float]) -> list[Point]:
    x, y = start
    angle = rng.uniform(0, 2 * math.pi)
    pts = [(x, y)]
    for _ in range(n):
        angle += rng.uniform(-1.3, 1.3)
        length = rng.uniform(*step)
        x = min(max(x + length * math.cos(angle), 0), w - 1)
        y = min(max(y + length * math.sin(angle), 0), h - 1)
        pts.append((x, y))
    return pts


def scratches(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """Long thin scratches and a few dust specks, as on an old print or a scanned negative."""
    w, h = size
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for _ in range(7):
        # Mostly vertical, like scratches from a film gate or a print dragged over grit.
        x0 = rng.uniform(0.05, 0.95) * w
        x1 = x0 + rng.uniform(-0.25, 0.25) * w
        y0, y1 = rng.uniform(-0.1, 0.3) * h, rng.uniform(0.7, 1.1) * h
        pts = _wobbly_line(rng, (x0, y0), (x1, y1), steps=12, wobble=3)
        draw.line(pts, fill=255, width=rng.randint(2, 4), joint="curve")
    for _ in range(2):  # creases across the print
        y0 = rng.uniform(0.1, 0.9) * h
        pts = _wobbly_line(rng, (-10, y0), (w + 10, y0 + rng.uniform(-0.4, 0.4) * h),
                           steps=16, wobble=3)
        draw.line(pts, fill=255, width=rng.randint(3, 5), joint="curve")
    for _ in range(40):
        x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(1, 3)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return mask


def scribble(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """A few thick felt-pen strokes, as if someone had scribbled over the photo."""
    w, h = size
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for _ in range(3):
        start = (rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h)
        pts = _random_walk(rng, w, h, start, n=rng.randint(10, 16), step=(25, 60))
        draw.line(pts, fill=255, width=rng.randint(12, 20), joint="curve")
    return mask


def stain(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """An irregular blot with a few drips, as from spilled coffee or water damage."""
    w, h = size
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    cx, cy = rng.uniform(0.55, 0.75) * w, rng.uniform(0.3, 0.5) * h
    for _ in range(30):  # overlapping blobs make a ragged outline
        a = rng.uniform(0, 2 * math.pi)
        d = rng.uniform(0, 0.12) * w
        r = rng.uniform(0.03, 0.08) * w
        x, y = cx + d * math.cos(a), cy + d * math.sin(a)
        draw.ellipse((x - r, y - r * rng.uniform(0.6, 1.0), x + r, y + r), fill=255)
    for _ in range(4):  # drips running down
        x = cx + rng.uniform(-0.1, 0.1) * w
        end = (x + rng.uniform(-15, 15), cy + rng.uniform(0.2, 0.45) * h)
        pts = _wobbly_line(rng, (x, cy), end, steps=8, wobble=2)
        draw.line(pts, fill=255, width=rng.randint(6, 12), joint="curve")
    for _ in range(12):  # splashes
        a, d = rng.uniform(0, 2 * math.pi), rng.uniform(0.15, 0.25) * w
        r = rng.uniform(2, 7)
        x, y = cx + d * math.cos(a), cy + d * math.sin(a)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return mask


@dataclass(frozen=True)
class Example:
    name: str
    source: str  # relative to the hold-out folder
    draw_mask: Callable[[tuple[int, int], random.Random], Image.Image]
    paint: tuple[int, int, int]  # flat colour of the damage
    seed: int
    greyscale: bool = False


EXAMPLES = (
    # A greyscale photo with light scratches stands in for a scanned old print.
    Example("pier_scratches", "plasma-workspace-wallpapers/ColdRipple.jpg", scratches,
            paint=(236, 236, 236), seed=1, greyscale=True),
    Example("ladybird_scribble", "mate-backgrounds/LadyBird.jpg", scribble,
            paint=(20, 20, 24), seed=2),
    Example("mountains_stain", "lomiri-wallpapers-16.04/picosdeeuropa_by_Aitzol_Berasategi.jpg",
            stain, paint=(122, 86, 52), seed=3),
)


def make(example: Example, holdout_dir: Path, out_dir: Path) -> None:
    src = holdout_dir / example.source
    if not src.is_file():
        sys.exit(f"error: {src} not found; run "
                 "`python scripts/prepare_training_photos.py data/train "
                 "--holdout-dir data/holdout` first")
    with Image.open(src) as img:
        img = img.convert("L" if example.greyscale else "RGB")
    h = round(img.height * WIDTH / img.width)
    img = img.resize((WIDTH, h), Image.Resampling.LANCZOS)

    paint_mask = example.draw_mask(img.size, random.Random(example.seed))
    colour = example.paint[0] if example.greyscale else example.paint
    damaged = img.copy()
    damaged.paste(Image.new(img.mode, img.size, colour), mask=paint_mask)
    mask = paint_mask.filter(ImageFilter.MaxFilter(2 * MASK_MARGIN + 1))

    hole = float((np.asarray(mask) >= 128).mean())
    lo, hi = HOLE_RANGE
    if not lo <= hole <= hi:
        sys.exit(f"error: {example.name}: hole covers {hole:.1%}, outside {lo:.0%}-{hi:.0%}")

    (out_dir / "damaged").mkdir(parents=True, exist_ok=True)
    (out_dir / "masks").mkdir(parents=True, exist_ok=True)
    damaged_path = out_dir / "damaged" / f"{example.name}.jpg"
    mask_path = out_dir / "masks" / f"{example.name}.png"
    damaged.save(damaged_path, "JPEG", quality=JPEG_QUALITY, optimize=True)
    # Binary (0/255) so the mask reads the same whatever threshold a tool applies.
    mask.point(lambda v: 255 if v >= 128 else 0).save(mask_path, "PNG", optimize=True)
    print(f"{example.name}: {WIDTH}x{h} {img.mode}, hole {hole:.1%} -> {damaged_path}, "
          f"{mask_path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holdout-dir", type=Path, default=ROOT / "data" / "holdout")
    parser.add_argument("--out", type=Path, default=ROOT / "examples")
    args = parser.parse_args(argv)
    for example in EXAMPLES:
        make(example, args.holdout_dir, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
