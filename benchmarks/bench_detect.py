"""Damage detection at native resolution: time per image and peak memory, by tile size.

1. Time to detect (probabilities, threshold, regions) in a 12 MP and a 24 MP image with the
   default DetectorConfig, for each tile size, as a ratio to the default tile measured
   in the same interleaved rounds (default tile: 768). Goal: 12 MP ≤ 5 s at the default tile.
2. Peak memory (RSS) of a process that detects and writes the mask of one 24 MP image, against
   the same process with the model loaded and the image decoded (the baseline, before any
   detection). Goal: ≤ 1.5 GB at the default tile.

Random weights: the time and memory of the network do not depend on what it learned.

    python benchmarks/bench_detect.py                       # both, tiles 512 768 1024 2048
    python benchmarks/bench_detect.py --only memory --memory-tiles 512 1024 2048
    python benchmarks/bench_detect.py --sizes 12 --rounds 1 --warmup 0
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import describe_machine, interleaved, parse_options, print_ratio, print_times, ratio

SIZES_MP = {12: (3000, 4000), 24: (4000, 6000)}  # height, width
GOAL_12MP_S = 5.0
GOAL_24MP_MB = 1536


def photo(height: int, width: int, seed: int = 0):
    """Smooth colour fields plus grain, uint8, built in bands (no float copy of 24 MP)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    coarse = (rng.random((max(2, height // 64), max(2, width // 64), 3)) * 255).astype(np.uint8)
    base = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BILINEAR))
    out = np.empty_like(base)
    for top in range(0, height, 500):
        band = base[top:top + 500].astype(np.int16)
        band += rng.integers(-8, 9, band.shape, dtype=np.int16)
        out[top:top + 500] = np.clip(band, 0, 255)
    return out


def _rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def memory_child(tile: int, megapixels: int, threads: int) -> None:
    """Run in a fresh process: print {baseline_mb, peak_mb, seconds} as JSON."""
    import time

    import torch

    torch.set_num_threads(threads)
    from pconv_cli.core.detector import DamageDetector, DetectorConfig
    from pconv_cli.detect import DEFAULT_PRECISION, TorchDetector, find_damage, write_mask
    from pconv_cli.imaging import ImageFile

    detector = TorchDetector(DamageDetector(DetectorConfig()), "cpu", precision=DEFAULT_PRECISION)
    height, width = SIZES_MP[megapixels]
    image = ImageFile(pixels=photo(height, width), mode="RGB", format="PNG")
    small = ImageFile(pixels=image.pixels[:64, :64], mode="RGB", format="PNG")
    find_damage(detector, small, tile=tile)  # first-call allocations that any run pays
    baseline = _rss_mb()
    start = time.perf_counter()
    regions = find_damage(detector, image, tile=tile)
    with tempfile.TemporaryDirectory() as scratch:
        write_mask(Path(scratch) / "mask.png", regions.mask)
    seconds = time.perf_counter() - start
    print(json.dumps({"baseline_mb": baseline, "peak_mb": _rss_mb(), "seconds": seconds}))


def bench_memory(tiles: list[int], threads: int) -> None:
    print(f"\npeak memory, one 24 MP image (6000×4000), detect + mask, {threads} thread(s)")
    for tile in tiles:
        done = subprocess.run(
            [sys.executable, __file__, "--child-memory", str(tile), "--threads", str(threads)],
            capture_output=True, text=True, check=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        peak, base = row["peak_mb"], row["baseline_mb"]
        verdict = "met" if peak <= GOAL_24MP_MB else "NOT MET"
        print(f"  tile {tile:5d}: peak RSS {peak:6.0f} MB vs {base:5.0f} MB with the model "
              f"loaded and the image decoded (+{peak - base:.0f} MB; goal ≤ {GOAL_24MP_MB} MB "
              f"{verdict}), {row['seconds']:.1f} s")


def bench_time(sizes: list[int], tiles: list[int], options: argparse.Namespace) -> None:
    from pconv_cli.core.detector import DamageDetector, DetectorConfig
    from pconv_cli.detect import DEFAULT_PRECISION, DEFAULT_TILE, TorchDetector, find_damage
    from pconv_cli.imaging import ImageFile

    network = DamageDetector(DetectorConfig())
    # The CLI's default arithmetic (auto: bf16 where native), and fp32 at the default tile.
    detector = TorchDetector(network, "cpu", precision=DEFAULT_PRECISION)
    exact = TorchDetector(network, "cpu", precision="fp32")
    print(f"precision {DEFAULT_PRECISION}: {detector.precision} on this machine")
    baseline = f"tile {DEFAULT_TILE}"
    for mp in sizes:
        image = ImageFile(pixels=photo(*SIZES_MP[mp]), mode="RGB", format="PNG")
        cases = {f"tile {t}": (lambda t=t, image=image: find_damage(detector, image, tile=t))
                 for t in sorted(set(tiles) | {DEFAULT_TILE})}
        if detector.precision != "fp32":
            cases[f"{baseline}, fp32"] = (
                lambda image=image: find_damage(exact, image, tile=DEFAULT_TILE))
        timings = interleaved(cases, options.rounds, options.warmup)
        print_times(f"{mp} MP ({SIZES_MP[mp][1]}×{SIZES_MP[mp][0]}), detect: probabilities, "
                    "threshold, regions", timings)
        for name in cases:
            if name != baseline:
                print_ratio(f"{name} / {baseline}", ratio(timings, name, baseline))
        if mp == 12:
            seconds = statistics.median(timings.seconds[baseline])
            print(f"  12 MP at the default tile: {seconds:.1f} s (goal ≤ {GOAL_12MP_S:g} s "
                  f"{'met' if seconds <= GOAL_12MP_S else 'NOT MET'})")


def main() -> None:
    if "--child-memory" in sys.argv:
        index = sys.argv.index("--child-memory")
        threads = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2
        memory_child(int(sys.argv[index + 1]), 24, threads)
        return
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--only", choices=("time", "memory"))
    extra.add_argument("--sizes", type=int, nargs="+", choices=sorted(SIZES_MP), default=[12, 24])
    extra.add_argument("--tiles", type=int, nargs="+", default=[512, 768, 1024, 2048])
    extra.add_argument("--memory-tiles", type=int, nargs="+", default=[768, 1024])
    mine, rest = extra.parse_known_args()
    sys.argv = [sys.argv[0], *rest]
    options = parse_options(__doc__.splitlines()[0], rounds=3, warmup=1)
    print(describe_machine(options))
    from pconv_cli.core.detector import DetectorConfig

    config = DetectorConfig()
    print(f"detector: default DetectorConfig (depth {config.depth}, width {config.width}), "
          "random weights")
    if mine.only in (None, "time"):
        bench_time(mine.sizes, mine.tiles, options)
    if mine.only in (None, "memory"):
        import torch

        bench_memory(mine.memory_tiles, torch.get_num_threads())


if __name__ == "__main__":
    main()
