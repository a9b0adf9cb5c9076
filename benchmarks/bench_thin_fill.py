"""restore's thin-region fill on a large scan: each region in a crop grown by its method's
``reach``, against the same fill in crops grown by a fixed 48 px (FSR's context, which every
method used before), measured in the same run.

The image is bench_restore_thin's: a 24 MP scan (6000×4000) with 300 dust specks and 40 hairs.
The fills are compared too: the largest difference inside the holes, in 8-bit levels (only
scikit-image's clip of a biharmonic fill to the range of the known pixels it is given can
differ between the two crops).

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

from pconv_cli.classical import classical_inpainter  # noqa: E402
from pconv_cli.imaging import ImageFile  # noqa: E402
from pconv_cli.restore import fill_thin_regions_first  # noqa: E402
from pconv_cli.routing import DEFAULT_THIN_WIDTH, RoutedInpainter  # noqa: E402

FIXED_REACH = 48


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
        own = router.thin.reach
        times: dict[int, list[float]] = {FIXED_REACH: [], own: []}
        fills: dict[int, np.ndarray] = {}
        for _ in range(args.rounds):
            for reach in (FIXED_REACH, own):
                router.thin.reach = reach
                start = time.perf_counter()
                filled, _ = fill_thin_regions_first(router, image, valid)
                times[reach].append(time.perf_counter() - start)
                fills[reach] = filled.pixels
        fixed, ours = statistics.median(times[FIXED_REACH]), statistics.median(times[own])
        diff = np.abs(fills[FIXED_REACH].astype(np.int16) - fills[own].astype(np.int16))
        print(f"{method:>10}: reach {FIXED_REACH} {fixed:.2f} s, reach {own} {ours:.2f} s, "
              f"{fixed / ours:.2f}x faster; largest difference {int(diff.max())} levels on "
              f"{int((diff.max(axis=-1) > 0).sum())} of {int((~valid).sum())} hole pixels")


if __name__ == "__main__":
    main()
