#!/usr/bin/env python3
"""Write scikit-image's bundled photographs as PNG, for evaluating pconv.

    python scripts/skimage_eval_images.py OUT_DIR

These images are RESERVED FOR EVALUATION: never put them in a training folder. They are the
only free photographs that every pconv install has offline (scikit-image is a dependency), so
they are what scores are reported on; a model that had seen them in training would score
better than it restores photos it has never seen.

Only natural photographs are written, listed explicitly below. Left out: synthetic images
(checkerboard, binary_blobs, colorwheel, logo, horse, shepp_logan_phantom), scanned text (page,
text), scientific and medical imagery (cell, retina, immunohistochemistry, microaneurysms,
hubble_deep_field), ``cat`` (the same image as ``chelsea``), ``clock`` (deliberately
motion-blurred, nearly featureless) and ``lfw_subset`` (25x25 px faces), since pconv is scored
on everyday photographs. Greyscale photographs are written as RGB (three equal channels) so
every evaluation image has the same layout. Existing files are skipped.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

try:
    from skimage import data
except ImportError:  # pragma: no cover - depends on the environment
    print("error: scikit-image is not installed (pip install scikit-image)", file=sys.stderr)
    sys.exit(1)


def _left_motorcycle() -> np.ndarray:
    # The right view of the stereo pair is nearly the same picture; one of them is enough.
    left, _right, _disparity = data.stereo_motorcycle()
    return left


# name -> (loader, credit and licence as scikit-image documents them)
PHOTOGRAPHS: dict[str, tuple[Callable[[], np.ndarray], str]] = {
    "astronaut": (data.astronaut, "NASA; public domain"),
    "brick": (data.brick, "CC0Textures (Bricks25), perspective-corrected; CC0"),
    "camera": (data.camera, "Lav Varshney; CC0"),
    "chelsea": (data.chelsea, "Stefan van der Walt; CC0"),
    "coffee": (data.coffee, "Rachel Michetti; CC0"),
    "coins": (data.coins, "Brooklyn Museum collection; no known copyright restrictions"),
    "grass": (data.grass, "linolafett (DeviantArt); CC0"),
    "gravel": (data.gravel, "CC0Textures (Gravel04); CC0"),
    "moon": (data.moon, "surface of the moon, as bundled with scikit-image"),
    "motorcycle": (_left_motorcycle, "Middlebury 2014 stereo benchmark (left view)"),
    "rocket": (data.rocket, "SpaceX; public domain"),
}


def to_rgb_uint8(arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"unexpected image shape {arr.shape}")
    return arr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write scikit-image's bundled photographs (evaluation only) as PNG.")
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)

    rows = []
    written = 0
    for name, (load, credit) in PHOTOGRAPHS.items():
        dst = out_dir / f"{name}.png"
        if dst.exists():
            with Image.open(dst) as img:
                w, h = img.size
            print(f"  {name}: exists ({w}x{h})")
        else:
            raw = load()
            grey_source = "yes" if np.asarray(raw).ndim == 2 else ""
            rgb = to_rgb_uint8(raw)
            h, w = rgb.shape[:2]
            # Write beside the target and rename, so an interrupted run leaves no partial PNG
            # that the next run would skip.
            tmp = dst.with_name(f".{dst.name}.part")
            Image.fromarray(rgb, "RGB").save(tmp, "PNG", optimize=True)
            os.replace(tmp, dst)
            written += 1
            kind = "greyscale -> RGB" if grey_source else "RGB"
            print(f"  {name}: {w}x{h} {kind} -> {dst}")
        rows.append({"file": dst.name, "skimage_data": name, "width": w, "height": h,
                     "credit": credit})

    with (out_dir / "SOURCES.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["file", "skimage_data", "width", "height",
                                                "credit"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"done: {written} written, {len(PHOTOGRAPHS) - written} already present, in {out_dir}")
    print("These images are for evaluation only; keep them out of every training folder.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
