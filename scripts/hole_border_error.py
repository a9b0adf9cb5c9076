#!/usr/bin/env python3
"""Where in the holes a method's error is: ℓ1 near the hole outline against deeper inside.

    python scripts/hole_border_error.py --images data/eval --masks masks \\
        --method pconv,ns [--flips 1,4] [--blend poisson,none] [--ring 2]

The same pairs as ``pconv evaluate`` with its defaults (seeded pairing, seed 0, the paper's
bands, each image centre-cropped and resized to its mask's size). For every band it prints
the mean over pairs of the ℓ1 error (%, of the composite against the truth) on the hole pixels
within ``--ring`` pixels (city-block) of a known pixel, and on the hole pixels further in. A
method whose fills do not join their surroundings shows a high first figure next to a low
second one.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
from scipy import ndimage

from pconv_cli.evaluate import build_methods, fit_image, hide_holes, make_pairs
from pconv_cli.imaging import load_image, load_mask, resize_mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", required=True)
    parser.add_argument("--masks", required=True)
    parser.add_argument("--method", required=True, help="comma list, as pconv evaluate takes")
    parser.add_argument("--model", action="append", default=[], help="a checkpoint (repeatable)")
    parser.add_argument("--flips", default="1")
    parser.add_argument("--blend", default="poisson")
    parser.add_argument("--ring", type=int, default=2)
    args = parser.parse_args()

    pair_set = make_pairs(args.images, args.masks)
    methods = build_methods(args.model, (), [args.method], "cpu", args.flips, args.blend)
    errors: dict[str, dict[int, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for pair in pair_set.pairs:
        valid = load_mask(pair.mask.path)
        truth = fit_image(load_image(pair.image), valid.shape)
        valid = resize_mask(valid, truth.shape[:2])
        hole = ~valid
        ring = hole & ndimage.binary_dilation(valid, iterations=args.ring)
        inner = hole & ~ring
        for method in methods:
            out = method.inpaint(hide_holes(truth[None], valid[None]), valid[None])[0]
            error = np.abs(np.clip(out, 0, 1) - truth).mean(axis=-1) * 100
            errors[method.name][pair.band].append(
                (error[ring].mean(), error[inner].mean() if inner.any() else np.nan))

    labels = pair_set.band_labels
    print(f"ℓ1 (%) on hole pixels within {args.ring} px of the outline / further in, "
          f"{len(pair_set.pairs)} pairs")
    print("| method | " + " | ".join(labels) + " |")
    print("|---|" + "---|" * len(labels))
    for name, by_band in errors.items():
        cells = [f"{np.mean([r for r, _ in by_band[b]]):.2f} / "
                 f"{np.nanmean([i for _, i in by_band[b]]):.2f}" for b in range(len(labels))]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
