"""Damaged images per second of ``pconv_cli.damage.synthesise``, and thin-hole masks per second.

    python benchmarks/bench_damage.py [--artefacts ../shared/damage-artefacts] [--rounds 9]

One process, one thread of numpy work (the synthesiser is single-threaded; a data loader
runs one per worker). Each case draws a fixed list of seeds per call, so every round does
the same work; cases alternate between rounds (see common.py). "default" is DamageParams()
(3–15 damages, the default degradations); "20 damages" draws exactly 20 with no image kind
or degradation, the figure the design aims at (well under a second at 1024²). With an
artefact folder, the artefact kind joins in at its default weight; its cut-outs are cached
after the warm-up, as they are in a long training run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import describe_machine, interleaved, parse_options, print_times  # noqa: E402

from pconv_cli.damage import DamageParams, ThinHoleParams, synthesise, thin_hole_mask  # noqa: E402, I001
from pconv_cli.damage.geometry import smooth_noise_2d  # noqa: E402

DEFAULT_ARTEFACTS = Path(__file__).resolve().parents[2] / "shared" / "damage-artefacts"


def texture(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    channels = [smooth_noise_2d(rng, (h, w), max(h, w) / 40) for _ in range(3)]
    return np.clip(0.5 + 0.3 * np.stack(channels, axis=-1), 0, 1).astype(np.float32)


def batch(image: np.ndarray, params: DamageParams, count: int):
    def run() -> None:
        for seed in range(count):
            synthesise(image, np.random.default_rng(seed), params)
    return run


def masks(size: tuple[int, int], params: ThinHoleParams, count: int):
    def run() -> None:
        for seed in range(count):
            thin_hole_mask(size, np.random.default_rng(seed), params)
    return run


def main() -> None:
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--artefacts", type=Path, default=DEFAULT_ARTEFACTS if
                       DEFAULT_ARTEFACTS.is_dir() else None)
    extra.add_argument("--scan", action="store_true", help="also time one 4000x3000 scan")
    own, rest = extra.parse_known_args()
    sys.argv[1:] = rest
    options = parse_options(__doc__.splitlines()[0], rounds=7, warmup=1)
    quiet = {"degradations": {}, "image_kinds": {"colour": 1.0}}
    small, large = texture(256, 256), texture(1024, 1024)
    per_call = {}  # images per call of each case
    cases = {}

    def add(name: str, run, count: int) -> None:
        cases[name] = run
        per_call[name] = count

    add("256² default", batch(small, DamageParams(), 32), 32)
    add("1024² default", batch(large, DamageParams(), 4), 4)
    add("1024² 20 damages", batch(large, DamageParams(count=(20, 20), **quiet), 4), 4)
    add("256² thin-hole masks", masks((256, 256), ThinHoleParams(), 64), 64)
    if own.artefacts is not None:
        art = {"artefacts": own.artefacts}
        add("256² default + artefacts", batch(small, DamageParams(**art), 32), 32)
        add("1024² 20 damages + artefacts",
            batch(large, DamageParams(count=(20, 20), **art, **quiet), 4), 4)
    if own.scan:
        add("4000x3000 default", batch(texture(3000, 4000), DamageParams(), 1), 1)

    timings = interleaved(cases, options.rounds, options.warmup)
    print(describe_machine(options) + f"; artefacts: {own.artefacts or 'none'}")
    print_times("seconds per call", timings)
    print("\nimages (or masks) per second, median round [fastest round]")
    width = max(len(n) for n in cases)
    for name, samples in timings.seconds.items():
        n = per_call[name]
        print(f"  {name:<{width}}  {n / statistics.median(samples):8.1f}/s "
              f"[{n / min(samples):8.1f}/s]   {statistics.median(samples) / n * 1e3:7.1f} ms each")


if __name__ == "__main__":
    main()
