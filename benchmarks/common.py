"""Timing shared by the benchmarks: interleaved rounds, medians, ratios to a baseline.

Every case of a comparison runs once per round, in an order that alternates between rounds
(A B C, C B A, ...), so that a slow spell of a busy machine hits all cases alike. A ratio is
taken within each round and the median over rounds is reported, with the interquartile range.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

# Run as a script (``python benchmarks/bench_x.py``) from a checkout: import pconv from it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_options(description: str, rounds: int = 9, warmup: int = 2) -> argparse.Namespace:
    """--threads, --rounds, --warmup, --profile; options for other benchmarks are ignored.

    ``nox -s bench -- OPTIONS`` hands the same options to every benchmark script.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=int, default=2,
                        help="torch.set_num_threads for the timed work (default 2)")
    parser.add_argument("--rounds", type=int, default=rounds,
                        help=f"interleaved timing rounds (default {rounds})")
    parser.add_argument("--warmup", type=int, default=warmup,
                        help=f"untimed rounds first (default {warmup})")
    parser.add_argument("--profile", action="store_true",
                        help="also print a torch.profiler table of one call of each case")
    options, ignored = parser.parse_known_args()
    if ignored:
        print(f"(ignoring options for other benchmarks: {' '.join(ignored)})")
    if options.threads < 1 or options.rounds < 1 or options.warmup < 0:
        parser.error("--threads and --rounds must be positive, --warmup not negative")
    torch.set_num_threads(options.threads)
    return options


def small_op_latency_ms(samples: int = 15) -> float:
    """Median time of an elementwise op on 64 K floats: ~0.01–1 ms on an idle machine.

    Much more means the threads of an op wait for a busy CPU; every op then costs about that
    much whatever its size, and ratios drift towards the ratio of operator counts.
    """
    x = torch.rand(1, 1, 256, 256)
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        torch.mul(x, 2.0)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def describe_machine(options: argparse.Namespace) -> str:
    return (f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"{options.rounds} rounds after {options.warmup} warm-up")


@dataclass(frozen=True)
class Timings:
    seconds: dict[str, list[float]]  # per case, one sample per round
    small_op_ms: list[float]  # small_op_latency_ms() after each round


def interleaved(cases: dict[str, Callable[[], object]], rounds: int, warmup: int) -> Timings:
    """Seconds per call of each case, one sample per round."""
    names = list(cases)
    for _ in range(warmup):
        for name in names:
            cases[name]()
    seconds: dict[str, list[float]] = {name: [] for name in names}
    latency = []
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            start = time.perf_counter()
            cases[name]()
            seconds[name].append(time.perf_counter() - start)
        latency.append(small_op_latency_ms())
    return Timings(seconds, latency)


@dataclass(frozen=True)
class Ratio:
    median: float
    low: float  # first quartile of the per-round ratios
    high: float  # third quartile

    def __str__(self) -> str:
        return f"{self.median:.2f}× [{self.low:.2f}–{self.high:.2f}]"


def ratio(timings: Timings, case: str, baseline: str) -> Ratio:
    """Median over rounds of time(case) / time(baseline), with the quartiles."""
    seconds = timings.seconds
    per_round = [a / b for a, b in zip(seconds[case], seconds[baseline], strict=True)]
    if len(per_round) < 2:
        return Ratio(per_round[0], per_round[0], per_round[0])
    q1, q2, q3 = statistics.quantiles(per_round, n=4, method="inclusive")
    return Ratio(q2, q1, q3)


def print_times(title: str, timings: Timings) -> None:
    print(f"\n{title}")
    width = max(len(name) for name in timings.seconds)
    for name, samples in timings.seconds.items():
        print(f"  {name:<{width}}  median {statistics.median(samples) * 1e3:9.1f} ms   "
              f"min {min(samples) * 1e3:9.1f} ms")
    print(f"  small-op latency between rounds: median "
          f"{statistics.median(timings.small_op_ms):.2f} ms, max {max(timings.small_op_ms):.2f} ms")


def print_ratio(label: str, value: Ratio, goal: str = "", met: bool | None = None) -> None:
    verdict = "" if met is None else ("  met" if met else "  NOT MET")
    goal_text = f"  (goal {goal})" if goal else ""
    print(f"  {label}: {value}{goal_text}{verdict}")


def print_profiles(title: str, cases: dict[str, Callable[[], object]], rows: int = 12) -> None:
    """Where the time of one call goes, per operator, for each case."""
    from torch.profiler import ProfilerActivity, profile

    for name, case in cases.items():
        case()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            case()
        print(f"\nprofile, {title}: {name}")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))
