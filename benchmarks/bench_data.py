"""Training samples per second: pconv's loader against decoding and rescaling whole photos.

One sample = pick a photo, rescale it at random, cut a 256² crop, flip, draw a mask from a
mask folder (what a loader worker does per image). pconv keeps decoded photos in memory and
resamples only the crop's region; the baseline decodes the photo every time and rescales all
of it before cropping (pconv's loader before that change). Run on the training photos and
the band-balanced mask set of docs/data.md:

    python benchmarks/bench_data.py [--photos data/train] [--masks data/train-masks] [--rounds 5]

The first epoch fills the cache (one decode per photo) and is the warm-up; every timed round
is a full epoch over the photos, so the figure is the steady state of a long run.
"""

from __future__ import annotations

import argparse

from common import describe_machine, interleaved, parse_options, print_ratio, print_times, ratio

from pconv_cli import data as data_module
from pconv_cli.data import (
    DecodedImages,
    MaskSource,
    TrainingSamples,
    find_training_images,
    rescale_then_crop,
)
from pconv_cli.masks import MaskParams

SIZE = 256


def main() -> None:
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--photos", default="data/train")
    own.add_argument("--masks", default="data/train-masks")
    args = own.parse_known_args()[0]
    options = parse_options(__doc__.splitlines()[0], rounds=5, warmup=1)
    files = find_training_images(args.photos)
    masks = MaskSource.from_folder(args.masks, MaskParams())
    print(f"{__doc__.splitlines()[0]}\n{describe_machine(options)}; {len(files)} photos, "
          f"{SIZE}² crops")

    pconv = TrainingSamples(files, SIZE, masks, seed=0)
    baseline = TrainingSamples(files, SIZE, masks, seed=0)
    baseline.decoded = DecodedImages(max_bytes=0)  # nothing kept: a decode per sample
    fast_crop = data_module.random_rescale_crop

    def epoch(dataset: TrainingSamples, crop) -> None:
        data_module.random_rescale_crop = crop
        try:
            for sample_id in range(len(files)):
                dataset[sample_id]
        finally:
            data_module.random_rescale_crop = fast_crop

    cases = {"pconv": lambda: epoch(pconv, fast_crop),
             "baseline": lambda: epoch(baseline, rescale_then_crop)}
    seconds = interleaved(cases, options.rounds, options.warmup)
    print_times(f"seconds per epoch of {len(files)} samples", seconds)
    per_sample = {k: 1000 * sorted(v)[len(v) // 2] / len(files) for k, v in seconds.seconds.items()}
    print("  ms per sample: " + ", ".join(f"{k} {v:.1f}" for k, v in per_sample.items()))
    print_ratio("samples/s vs the baseline", ratio(seconds, "baseline", "pconv"))


if __name__ == "__main__":
    main()
