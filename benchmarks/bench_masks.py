"""Masks per second of the generator, alone and writing PNG sets, with 1 and 2 workers.

    python benchmarks/bench_masks.py [--size 512] [--count 1000]

Generation alone runs ``generate_mask`` in a process pool (warm, start-up not counted);
writing runs ``write_mask_set`` end to end (pool start-up, PNG encoding, atomic renames, the
final sync and the manifest all counted). Banded sets (``--per-band``) steer each mask into
its band, which costs a few rasterisations per mask; they are timed too.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pconv_cli.imaging import save_mask  # noqa: E402
from pconv_cli.masks import MaskSetSpec, generate_mask, write_mask_set  # noqa: E402


def _generate(args: tuple[int, int, int]) -> int:
    start, stop, size = args
    for i in range(start, stop):
        generate_mask(np.random.default_rng([0, i]), size)
    return stop - start


class Rate:
    """Masks per second of wall-clock time and, for one in-process worker, of CPU time.

    CPU time shows what the code costs when other jobs share the cores; wall-clock time is
    what a user waits.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def stop(self) -> tuple[float, float]:
        wall = time.perf_counter() - self.wall
        cpu = time.process_time() - self.cpu
        return self.count / wall, self.count / cpu


def generation_rate(size: int, count: int, workers: int) -> tuple[float, float]:
    chunks = [(i, min(i + 50, count), size) for i in range(0, count, 50)]
    if workers == 1:
        rate = Rate(count)
        sum(map(_generate, chunks))
        return rate.stop()
    with multiprocessing.get_context("forkserver").Pool(workers) as pool:
        pool.map(_generate, [(0, workers, size)] * workers)  # warm up the workers
        rate = Rate(count)
        sum(pool.map(_generate, chunks, chunksize=1))
        return rate.stop()[0], float("nan")


def writing_rate(spec: MaskSetSpec, workers: int) -> tuple[float, float]:
    total = (spec.count or 0) + (spec.per_band or 0) * (len(spec.edges) - 1)
    with tempfile.TemporaryDirectory() as tmp:
        rate = Rate(total)
        write_mask_set(Path(tmp) / "set", spec, workers=workers)
        wall, cpu = rate.stop()
        return wall, cpu if workers == 1 else float("nan")


def fsync_each_rate(size: int, count: int) -> float:
    """One worker writing with an fsync per file, for comparison with one sync at the end."""
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        for i in range(count):
            valid = generate_mask(np.random.default_rng([0, i]), size)
            save_mask(Path(tmp) / f"{i:06d}.png", valid, fsync=True)
        return count / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--per-band", type=int, default=50)
    args = parser.parse_args()
    size, count = args.size, args.count

    rate = Rate(200)
    for i in range(200):
        generate_mask(np.random.default_rng(i), 256)
    wall, cpu = rate.stop()
    print(f"one mask at 256²: {1000 / wall:.2f} ms ({1000 / cpu:.2f} ms of CPU)")
    print(f"masks/s at {size}² ({count} masks; banded: {args.per_band} per paper band);")
    print("wall clock, and per CPU-second in brackets for one in-process worker")
    print(f"{'workers':>8} {'generate':>16} {'write':>16} {'write banded':>16}")
    for workers in (1, 2):
        cells = [
            generation_rate(size, count, workers),
            writing_rate(MaskSetSpec(size=(size, size), count=count), workers),
            writing_rate(MaskSetSpec(size=(size, size), per_band=args.per_band), workers),
        ]
        text = [f"{w:.0f}" + (f" ({c:.0f})" if c == c else "") for w, c in cells]
        print(f"{workers:>8} " + " ".join(f"{t:>16}" for t in text))
    print(f"1 worker writing with an fsync per file: {fsync_each_rate(size, count // 4):.0f}")


if __name__ == "__main__":
    main()
