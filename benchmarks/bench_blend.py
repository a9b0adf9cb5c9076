"""What Poisson seam blending adds to a model call, and its solver against a sparse LU.

One image per call (scikit-image's astronaut, resized), at the sizes restore runs the model at
(256², 512², and 768², restore's --hd-size), with a committed mask of the smallest and of the
largest paper band scaled up to that size (nearest neighbour).

1. The default model with blending against the same inpainter with ``blend="none"``: the ratio
   is (model + blend) / model, so 1.10 means the blend costs a tenth of a model call.
2. The blend's multigrid solve against SciPy's sparse LU (SuperLU, symmetric minimum-degree
   ordering) of the same system, both solving the three channels.

    python benchmarks/bench_blend.py [--threads 1] [--rounds 5]
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from common import describe_machine, interleaved, parse_options, print_ratio, print_times, ratio
from PIL import Image
from scipy.sparse.linalg import splu
from skimage import data

from pconv_cli.imaging import load_mask, resize_mask
from pconv_cli.inference import TorchInpainter, default_model_path
from pconv_cli.seams import seam_system, solve_multigrid

MASKS = Path(__file__).resolve().parents[1] / "masks" / "no-border"
SIZES = (256, 512, 768)
BANDS = ("(0.01,0.1]", "(0.5,0.6]")


def first_mask_of(band: str) -> Path:
    with (MASKS / "masks.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["band"] == band:
                return MASKS / row["file"]
    raise SystemExit(f"no mask of band {band} in {MASKS}")


def main() -> None:
    options = parse_options(__doc__.splitlines()[0], rounds=5, warmup=1)
    print(f"{__doc__.splitlines()[0]}\n{describe_machine(options)}")
    raw = TorchInpainter.from_checkpoint(default_model_path(), "cpu", blend="none")
    blended = TorchInpainter.from_checkpoint(default_model_path(), "cpu", blend="poisson")
    photo = Image.fromarray(data.astronaut())
    for size in SIZES:
        image = np.asarray(photo.resize((size, size), Image.LANCZOS), np.float32)[None] / 255
        for band in BANDS:
            valid = load_mask(first_mask_of(band))  # True = known
            valid = resize_mask(valid, (size, size))[None]
            masked = image * valid[..., None]
            cases = {"model": lambda m=masked, v=valid: raw.inpaint(m, v),
                     "model + blend": lambda m=masked, v=valid: blended.inpaint(m, v)}
            timings = interleaved(cases, options.rounds, options.warmup)
            holes = 1 - valid.mean()
            print_times(f"{size}², band {band}, {holes:.0%} holes", timings)
            print_ratio("model + blend vs model", ratio(timings, "model + blend", "model"))
            system = seam_system(raw.inpaint(masked, valid)[0], valid[0])
            solvers = {
                "sparse LU": lambda s=system: splu(s.laplacian.tocsc(),
                                                   permc_spec="MMD_AT_PLUS_A").solve(s.step),
                "multigrid": lambda s=system: solve_multigrid(s.laplacian, s.step),
            }
            timings = interleaved(solvers, options.rounds, options.warmup)
            print_times(f"solve only, {system.step.shape[0]} unknowns × 3 channels", timings)
            print_ratio("multigrid vs sparse LU, time", ratio(timings, "multigrid", "sparse LU"))


if __name__ == "__main__":
    main()
