"""restore's thin-region fill on a large scan, against the way it filled them before, measured
in the same run.

- before: each region through the classical method in a crop grown by 48 px (FSR's context,
  which every method was given), scikit-image's ``inpaint_biharmonic`` for biharmonic;
- now: biharmonic (auto's default) solves every region in one sparse system over the hole
  pixels (``pconv_cli.biharmonic``); the other methods fill each region in a crop grown by
  their own ``reach``.

The image is bench_restore_thin's: a 24 MP scan (6000×4000) with 300 dust specks and 40 hairs.
The fills are compared too: the largest difference inside the holes, in 8-bit levels (a
biharmonic fill is clipped to the range of the known pixels it is given: a crop's before, the
whole image's now).

    python benchmarks/bench_thin_fill.py [--rounds 3] [--size 6000x4000] [--methods biharmonic,ns]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_restore_thin import synthetic_scan, thin_damage  # noqa: E402

from pconv_cli.classical import ClassicalInpainter, classical_inpainter  # noqa: E402
from pconv_cli.imaging import ImageFile  # noqa: E402
from pconv_cli.restore import fill_thin_regions_first  # noqa: E402
from pconv_cli.restore.jobs import _fill_region_by_region  # noqa: E402
from pconv_cli.routing import DEFAULT_THIN_WIDTH, RoutedInpainter, thin_regions  # noqa: E402

FIXED_REACH = 48


class ScikitImageBiharmonic(ClassicalInpainter):
    """The biharmonic fill as restore computed it before: scikit-image's, one call per crop."""

    name = "biharmonic"

    def _fill(self, image: np.ndarray, valid: np.ndarray) -> np.ndarray:
        from skimage.restoration import inpaint_biharmonic

        return inpaint_biharmonic(image.astype(np.float64), ~valid, channel_axis=-1)


class NoModel:
    """The model side of the router: never called here, every hole is thin."""

    name, backend, source = "none", "none", "none"
    batched, multiple, fixed_size, flips, blend = True, 1, None, 1, None

    def inpaint(self, images: np.ndarray, valid: np.ndarray) -> np.ndarray:
        raise AssertionError("a wide hole reached the model")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", default="6000x4000", help="WxH")
    parser.add_argument("--methods", default="biharmonic,ns")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    image = ImageFile(synthetic_scan(height, width, 0), "RGB", "JPEG")
    valid = np.asarray(thin_damage(height, width, 0)) < 128
    print(f"{width}x{height}, {(~valid).mean():.2%} of the pixels in thin holes, "
          f"{args.rounds} interleaved rounds, median seconds")
    for method in args.methods.split(","):
        router = RoutedInpainter(NoModel(), classical_inpainter(method), DEFAULT_THIN_WIDTH)
        old_method = ScikitImageBiharmonic() if method == "biharmonic" else classical_inpainter(
            method)
        old_method.reach = FIXED_REACH
        before = RoutedInpainter(NoModel(), old_method, DEFAULT_THIN_WIDTH)
        times: dict[str, list[float]] = {"before": [], "now": []}
        fills: dict[str, np.ndarray] = {}
        for _ in range(args.rounds):
            start = time.perf_counter()  # both measure the regions and fill them
            thin = thin_regions(valid, DEFAULT_THIN_WIDTH)
            fills["before"] = _fill_region_by_region(before, image, valid, thin)
            times["before"].append(time.perf_counter() - start)
            start = time.perf_counter()
            fills["now"] = fill_thin_regions_first(router, image, valid)[0].pixels
            times["now"].append(time.perf_counter() - start)
        old, new = statistics.median(times["before"]), statistics.median(times["now"])
        diff = np.abs(fills["before"].astype(np.int16) - fills["now"].astype(np.int16))
        print(f"{method:>10}: before {old:.2f} s, now {new:.2f} s, {old / new:.2f}x faster; "
              f"largest difference {int(diff.max())} levels on "
              f"{int((diff.max(axis=-1) > 0).sum())} of {int((~valid).sum())} hole pixels")

if __name__ == "__main__":
    main()
