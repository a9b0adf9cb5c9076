"""Running the methods over the pairs and scoring them: :func:`evaluate`.

Pairs are loaded in chunks. Models (``batched = True``) run in batches in this process;
per-image methods (``batched = False``, the classical ones) and the scoring of every output run
in a pool of worker processes, which finish one chunk while the next is being loaded and run.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..classical import limit_threads
from ..errors import ConfigError, InputError
from ..inpainter import Inpainter
from ..metrics import LpipsScorer, hole_width_groups, load_lpips
from .aggregate import BASE_METRICS, method_result
from .loading import Loader, hide_holes
from .pairs import Failure, FileFailure, Pair, PairSet, ProgressCallback
from .report import Report, SampleRow, report_settings
from .scoring import Scores, TaskResult, WidthScores, inpaint_task, score_task

MIN_TASKS_PER_WORKER = 16  # fewer (pair, method) tasks than this per worker: fewer workers

# A loaded pair: (pair, truth H×W×3, valid H×W, hole-width group map H×W)
Item = tuple[Pair, np.ndarray, np.ndarray, np.ndarray]


# --------------------------------------------------------------------------- executors


class _InlineExecutor(Executor):
    """The executor interface without processes, for ``workers=1``."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # re-raised by future.result(), as a pool would
            future.set_exception(exc)
        return future


def _make_executor(workers: int) -> Executor:
    if workers <= 1:
        return _InlineExecutor()
    # A fresh interpreter per worker: forking a process that runs torch threads can deadlock.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method),
                               initializer=limit_threads)


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------- the run


@dataclass
class _Pending:
    method: str
    pair: Pair
    truth: np.ndarray
    future: Future[TaskResult]


@dataclass
class _MethodRun:
    method: Inpainter
    scores: dict[int, Scores] = field(default_factory=dict)  # by pair index
    width_scores: dict[int, WidthScores] = field(default_factory=dict)  # by pair index
    seconds: float = 0.0
    images: int = 0
    warm: bool = False

    @property
    def seconds_per_image(self) -> float:
        return self.seconds / self.images if self.images else math.nan


class _Evaluation:
    """One run of every method over every pair: its scores, samples and failures."""

    def __init__(self, pair_set: PairSet, methods: Sequence[Inpainter], *,
                 size: tuple[int, int] | None, native: bool, batch_size: int, workers: int,
                 samples: int, lpips: LpipsScorer | None,
                 progress: ProgressCallback | None) -> None:
        self.pair_set = pair_set
        self.runs = {m.name: _MethodRun(m) for m in methods}
        self.loader = Loader(size, native, pair_set.invert)
        self.batch_size = batch_size
        self.workers = workers
        self.lpips = lpips
        self.progress = progress
        self.sample_ids = _sample_ids(pair_set.pairs, samples)
        self.samples: dict[int, SampleRow] = {}
        self.failed: list[Failure] = []
        self.skipped_pairs = 0
        self.sizes: set[tuple[int, int]] = set()
        self.done = 0
        self.total = len(pair_set.pairs) * len(self.runs)

    def run(self) -> None:
        pooled = [r for r in self.runs.values() if not r.method.batched]
        batched = [r for r in self.runs.values() if r.method.batched]
        chunk = max(self.batch_size, 8 * self.workers, 16)
        self._tick(0)
        executor = _make_executor(self.workers)
        try:
            pending: list[_Pending] = []
            for start in range(0, len(self.pair_set.pairs), chunk):
                items = self._load(self.pair_set.pairs[start:start + chunk])
                current = [self._submit(executor, r, item) for r in pooled for item in items]
                for r in batched:
                    current += self._run_batched(executor, r, items)
                # The workers finish the previous chunk while this one was being loaded.
                self._gather(pending)
                pending = current
            self._gather(pending)
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        executor.shutdown(wait=True)

    def _tick(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress("scoring", self.done, self.total)

    def _skip(self, failure: Failure) -> None:
        """A pair that cannot be scored: its file is listed once, its tasks count as done."""
        self.skipped_pairs += 1
        if all(f.path != failure.path for f in self.failed):
            self.failed.append(failure)
        self._tick(len(self.runs))

    def _load(self, pairs: Sequence[Pair]) -> list[Item]:
        items = []
        for pair in pairs:
            try:
                truth, valid = self.loader.load(pair)
            except FileFailure as exc:
                self._skip(exc.failure)
                continue
            self.sizes.add(truth.shape[:2])
            if pair.index in self.sample_ids:
                shown = np.where(valid[..., None], truth, 1.0).astype(np.float32)
                self.samples[pair.index] = SampleRow(pair, shown, truth)
            if valid.all():
                self._skip(Failure(str(pair.mask.path), "no hole pixel at the evaluation size "
                                                        "(the resized mask lost its holes)"))
                continue
            # Once per pair, not once per method: the distance transform is not free at 1024².
            items.append((pair, truth, valid, hole_width_groups(valid)))
        return items

    def _keep(self, pair: Pair) -> bool:
        """Whether a pair's composite comes back from the worker (for LPIPS or a sample)."""
        return self.lpips is not None or pair.index in self.sample_ids

    def _submit(self, executor: Executor, run: _MethodRun, item: Item) -> _Pending:
        pair, truth, valid, widths = item
        future = executor.submit(inpaint_task, run.method, truth, valid, widths,
                                 self._keep(pair))
        return _Pending(run.method.name, pair, truth, future)

    def _run_batched(self, executor: Executor, run: _MethodRun,
                     items: list[Item]) -> list[_Pending]:
        pending = []
        for batch in _batches(items, self.batch_size):
            truths = np.stack([item[1] for item in batch])
            valids = np.stack([item[2] for item in batch])
            masked = hide_holes(truths, valids)
            if not run.warm:  # first-call set-up (allocation, kernel choice) is not speed
                run.method.inpaint(masked[:1], valids[:1])
                run.warm = True
            start = time.perf_counter()
            outputs = np.asarray(run.method.inpaint(masked, valids))
            run.seconds += time.perf_counter() - start
            run.images += len(batch)
            if outputs.shape != truths.shape:
                raise ConfigError(f"method {run.method.name!r} returned shape {outputs.shape} "
                                  f"for inputs of {truths.shape}")
            for (pair, truth, valid, widths), output in zip(batch, outputs, strict=True):
                future = executor.submit(score_task, truth, valid, widths, output,
                                         self._keep(pair))
                pending.append(_Pending(run.method.name, pair, truth, future))
        return pending

    def _gather(self, pending: list[_Pending]) -> None:
        comps: list[tuple[_Pending, Scores, np.ndarray]] = []
        for item in pending:
            scores, by_width, seconds, comp = item.future.result()
            run = self.runs[item.method]
            run.scores[item.pair.index] = scores
            run.width_scores[item.pair.index] = by_width
            if not run.method.batched:
                run.seconds += seconds
                run.images += 1
            if comp is not None:
                comps.append((item, scores, comp))
                if item.pair.index in self.samples:
                    self.samples[item.pair.index].outputs[item.method] = comp
            self._tick(1)
        if self.lpips is not None:
            self._add_lpips(comps)

    def _add_lpips(self, comps: list[tuple[_Pending, Scores, np.ndarray]]) -> None:
        """LPIPS of the kept composites, in this process where the scorer was loaded, in
        batches of one method and one shape."""
        groups: dict[tuple, list] = {}
        for entry in comps:
            groups.setdefault((entry[0].method, entry[2].shape), []).append(entry)
        for group in groups.values():
            for i in range(0, len(group), self.batch_size):
                part = group[i:i + self.batch_size]
                values = self.lpips(np.stack([c for _, _, c in part]),
                                    np.stack([p.truth for p, _, _ in part]))
                for (_, scores, _), value in zip(part, values, strict=True):
                    scores["lpips"] = value


def _batches(items: list[Item], size: int) -> Iterator[list[Item]]:
    """Consecutive runs of same-shape items, at most ``size`` long (a batch needs one shape)."""
    batch: list[Item] = []
    for item in items:
        if batch and (len(batch) == size or item[1].shape != batch[0][1].shape):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def _sample_ids(pairs: Sequence[Pair], per_band: int) -> set[int]:
    """The first ``per_band`` pairs of each band: the rows of the sample grids."""
    chosen: dict[int, list[int]] = {}
    for pair in pairs:
        band = chosen.setdefault(pair.band, [])
        if len(band) < per_band:
            band.append(pair.index)
    return {i for ids in chosen.values() for i in ids}


# --------------------------------------------------------------------------- evaluate


def evaluate(
    pair_set: PairSet,
    methods: Sequence[Inpainter],
    *,
    size: tuple[int, int] | None = None,
    native: bool = False,
    batch_size: int = 8,
    workers: int = 1,
    samples: int = 0,
    lpips: bool | LpipsScorer = False,
    device: str = "auto",
    progress: ProgressCallback | None = None,
) -> Report:
    """Score every method on every pair and aggregate per band.

    ``methods`` are inpainters (:class:`pconv_cli.inpainter.Inpainter`); ``batched = False``
    ones run one image at a time in the worker pool. ``size`` is (height, width). ``samples``
    keeps that many pairs per band for the sample grids. ``lpips`` adds LPIPS: True loads the
    scorer (on ``device``) with :func:`metrics.load_lpips`, which fails in one line when the
    ``lpips`` package or its weights are not on this machine; a scorer it returned is used as
    it is.
    """
    methods = list(methods)
    if not methods:
        raise ConfigError("nothing to evaluate: give --model CKPT, --onnx FILE or --method NAMES")
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise ConfigError(f"method names must differ, got {', '.join(names)}")
    if size is not None and native:
        raise ConfigError("--size and --native exclude each other: choose one")
    if batch_size < 1 or workers < 1 or samples < 0:
        raise ConfigError("--batch-size and --workers must be at least 1, --samples at least 0")
    scorer = load_lpips(device) if lpips is True else (lpips or None)
    # Starting a pool (fresh interpreters that import numpy and the methods) costs more than a
    # few tasks per worker save: small runs use fewer workers, or none.
    tasks = len(pair_set.pairs) * len(methods)
    workers = max(1, min(workers, tasks // MIN_TASKS_PER_WORKER))
    run = _Evaluation(pair_set, methods, size=size, native=native, batch_size=batch_size,
                      workers=workers, samples=samples, lpips=scorer, progress=progress)
    run.run()
    scored = len(pair_set.pairs) - run.skipped_pairs
    if scored == 0:
        first = run.failed[0] if run.failed else Failure("?", "unknown")
        raise InputError(f"no pair could be scored: every image or mask failed to load "
                         f"(first: {first.path}: {first.reason})")
    metrics = [*BASE_METRICS, *(["lpips"] if scorer is not None else [])]
    results = {
        name: method_result(r.method, pair_set, r.scores, r.width_scores, r.seconds_per_image,
                            metrics)
        for name, r in run.runs.items()
    }
    settings = report_settings(
        pair_set, results, size=size, native=native, batch_size=batch_size, workers=workers,
        lpips_setting=scorer.description if scorer else "not requested", scored_pairs=scored,
        skipped_pairs=run.skipped_pairs, sizes=run.sizes,
    )
    labels = pair_set.band_labels
    samples_by_band: dict[str, list[SampleRow]] = {}
    for index in sorted(run.samples):
        row = run.samples[index]
        samples_by_band.setdefault(labels[row.pair.band], []).append(row)
    return Report(settings, results, metrics, labels, pair_set.border_split,
                  [*pair_set.failed, *run.failed], [], samples_by_band)
