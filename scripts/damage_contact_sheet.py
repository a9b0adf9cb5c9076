"""Draw docs/images/damage-kinds.png: each damage kind, image kind and degradation on one sheet.

    python scripts/damage_contact_sheet.py [--artefacts ../shared/damage-artefacts]
                                           [--out docs/images/damage-kinds.png] [--size 200]

Every tile is synthesised at 100 % (no resampling, so thin damage looks as a detector sees
it) on a synthetic landscape made here from seeded noise: pconv's evaluation photographs are
kept out of everything that could shape training, and the example photos are for restore.
Without an artefact folder the artefact tile is left out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pconv_cli.damage import DAMAGE_WEIGHTS, DamageParams, synthesise  # noqa: E402
from pconv_cli.damage.degrade import DEGRADATIONS, IMAGE_KINDS  # noqa: E402
from pconv_cli.damage.geometry import fractal_noise_1d, smooth_noise_2d  # noqa: E402

LABEL_HEIGHT = 14
# Damages per tile: small kinds get a few more so that a tile shows what they look like.
TILE_COUNTS = {"artefact": 6, "tear": 3, "wormhole": 3, "ink": 3, "foxing": 3, "mould": 3}
PAD = 4


def landscape(size: int, seed: int) -> np.ndarray:
    """A photo-like scene: graded sky with clouds, two ranges of hills, textured meadow."""
    rng = np.random.default_rng(seed)
    h = w = size
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    sky = (1 - y) * np.array([0.38, 0.56, 0.85]) + y * np.array([0.78, 0.85, 0.93])
    clouds = np.clip(smooth_noise_2d(rng, (h, w), size / 6) * 1.4
                     + 0.3 * smooth_noise_2d(rng, (h, w), size / 20), 0, 1)[..., None]
    image = sky * (1 - 0.8 * clouds) + 0.97 * 0.8 * clouds
    rows = np.arange(h)[:, None]
    for depth, colour, level in ((0.0, (0.42, 0.5, 0.55), 0.45), (1.0, (0.22, 0.36, 0.18),
                                                                  0.62)):
        ridge = (level + 0.08 * fractal_noise_1d(rng, w, 0.55)
                 + 0.05 * np.sin(np.linspace(0, rng.uniform(2, 6), w))) * h
        inside = rows >= ridge[None, :]
        shade = 0.8 + 0.25 * smooth_noise_2d(rng, (h, w), size / 12)[..., None]
        texture = 1 + 0.12 * depth * smooth_noise_2d(rng, (h, w), 2.5)[..., None]
        hill = np.asarray(colour) * shade * texture
        image = np.where(inside[..., None], hill, image)
    meadow = rows >= (0.8 * h + 0.03 * h * fractal_noise_1d(rng, w, 0.5))[None, :]
    grass = (np.array([0.45, 0.55, 0.2]) * (0.85 + 0.3 * smooth_noise_2d(rng, (h, w), 3)
                                             [..., None]))
    image = np.where(meadow[..., None], grass, image)
    image = ndimage.gaussian_filter(image, (0.6, 0.6, 0))  # a lens is never perfectly sharp
    return np.clip(image, 0, 1).astype(np.float32)


def tiles(size: int, artefacts: Path | None) -> list[tuple[str, np.ndarray]]:
    quiet = {"degradations": {}, "image_kinds": {"colour": 1.0}}
    out = []
    for index, kind in enumerate(DAMAGE_WEIGHTS):
        if kind == "artefact" and artefacts is None:
            continue
        count = TILE_COUNTS.get(kind, 2)
        params = DamageParams(kinds={kind: 1.0}, count=(count, count), artefacts=artefacts,
                              **quiet)
        damaged = synthesise(landscape(size, index), np.random.default_rng(100 + index), params)
        out.append((kind, damaged.image))
    for index, kind in enumerate(IMAGE_KINDS):
        params = DamageParams(kinds={"dust": 1, "hair": 1}, count=(2, 2), degradations={},
                              image_kinds={kind: 1.0})
        out.append((kind, synthesise(landscape(size, 40 + index),
                                     np.random.default_rng(200 + index), params).image))
    for index, name in enumerate(DEGRADATIONS):
        params = DamageParams(kinds={"scratch": 1.0}, count=(1, 1), degradations={name: 1.0},
                              image_kinds={"colour": 1.0})
        out.append((name, synthesise(landscape(size, 60 + index),
                                     np.random.default_rng(300 + index), params).image))
    mixed = synthesise(landscape(size, 80), np.random.default_rng(400),
                       DamageParams(count=(12, 12), artefacts=artefacts))
    out.append(("mixed: " + ", ".join(mixed.degradations or ("no degradation",)), mixed.image))
    out.append(("its mask (white = damaged)", np.repeat(mixed.hole[..., None], 3, axis=-1)))
    return out


def sheet(items: list[tuple[str, np.ndarray]], columns: int) -> Image.Image:
    size = items[0][1].shape[0]
    rows = -(-len(items) // columns)
    canvas = Image.new("RGB", (columns * (size + PAD) + PAD,
                               rows * (size + LABEL_HEIGHT + PAD) + PAD), (40, 40, 40))
    draw = ImageDraw.Draw(canvas)
    for k, (label, image) in enumerate(items):
        x = PAD + (k % columns) * (size + PAD)
        y = PAD + (k // columns) * (size + LABEL_HEIGHT + PAD)
        canvas.paste(Image.fromarray(np.round(image * 255).astype(np.uint8)), (x, y))
        draw.text((x + 2, y + size + 1), label.replace("_", " "), fill=(230, 230, 230))
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artefacts", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("docs/images/damage-kinds.png"))
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--columns", type=int, default=6)
    parser.add_argument("--colours", type=int, default=256,
                        help="palette size of the PNG, dithered (keeps the file small); "
                             "0 for full RGB")
    args = parser.parse_args()
    image = sheet(tiles(args.size, args.artefacts), args.columns)
    if args.colours:
        image = image.quantize(args.colours, method=Image.Quantize.FASTOCTREE,
                               dither=Image.Dither.FLOYDSTEINBERG)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image.save(args.out, optimize=True)
    print(f"{args.out}: {image.width}x{image.height}, {args.out.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
