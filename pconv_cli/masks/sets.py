"""Writing a mask set folder: PNG files drawn in a process pool, resumed, with manifests.

Each worker process gets the run (output folder, spec, --from files) once, through the pool's
initializer, and then only tasks; each task's mask depends on nothing but the task and the
spec (see ``spec``), so the files do not depend on the number of workers or on which worker
drew what.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import __version__
from ..errors import ConfigError, InputError
from ..fileio import atomic_write_text
from ..imaging import load_mask, save_mask
from .bands import band_label, band_of, fmt_ratio
from .manifest import MANIFEST, RECIPE, manifest_text, read_manifest
from .spec import MaskSetSpec, Task, check_spec, plan, sample_for, set_folder, source_files


@dataclass(frozen=True)
class BandSummary:
    border: bool
    band: str
    count: int
    mean_ratio: float
    min_ratio: float
    max_ratio: float
    draws_per_mask: float


@dataclass(frozen=True)
class MaskSetSummary:
    out_dir: Path
    manifest: Path
    total: int
    generated: int
    skipped: int
    seconds: float
    bands: list[BandSummary]


class _Done(NamedTuple):
    """What a worker reports for one mask file."""

    task: Task
    holes: int
    ratio: float
    draws: int  # rasterisations it took; 0 for a file kept from an earlier run
    source: str


@dataclass(frozen=True)
class _Job:
    """One run of ``write_mask_set``: everything a worker needs besides its tasks."""

    out_dir: Path
    spec: MaskSetSpec
    sources: list[Path]

    def run(self, task: Task) -> _Done:
        """Write (or keep) the file of ``task`` and report its hole count and ratio."""
        spec = self.spec
        path = self.out_dir / task.file
        kept = _finished(path, task, spec)
        if kept is not None:
            source = str(self.sources[task.source]) if task.source is not None else ""
            return _Done(task, kept, kept / (spec.size[0] * spec.size[1]), 0,
                         _source_name(source, spec))
        sample = sample_for(task, spec, self.sources)
        save_mask(path, sample.valid, fsync=False)  # one sync for the whole set at the end
        holes = sample.valid.size - int(np.count_nonzero(sample.valid))
        return _Done(task, holes, sample.hole_ratio, sample.draws,
                     _source_name(sample.source, spec))


# The run of this worker process, set once by the pool's initializer in each worker (the
# parent process never sets it: with one worker it calls the job itself).
_worker_job: _Job | None = None


def _start_worker(job: _Job) -> None:
    global _worker_job
    _worker_job = job


def _run_in_worker(task: Task) -> _Done:
    if _worker_job is None:
        raise RuntimeError("mask worker started without its job (pool initializer not run)")
    return _worker_job.run(task)


def _finished(path: Path, task: Task, spec: MaskSetSpec) -> int | None:
    """Hole count of a file left by an earlier run, or None if it must be (re)made.

    Files are written atomically, so one that exists is complete; it is still measured, and
    a file of the wrong size or outside its band (edited since) is made again.
    """
    if not path.exists():
        return None
    try:
        valid = load_mask(path)
    except InputError:
        return None
    if valid.shape != tuple(spec.size):
        return None
    holes = valid.size - int(np.count_nonzero(valid))
    if task.band is not None and band_of(holes / valid.size, spec.edges) != task.band:
        return None
    return holes


def _source_name(source: str, spec: MaskSetSpec) -> str:
    # Manifests name a source relative to the --from folder (recorded in masks.json), so a
    # set stays valid when the folders move.
    if not source or spec.source is None:
        return source
    return Path(os.path.relpath(source, spec.source)).as_posix()


def _cannot_write(out_dir: Path, exc: OSError) -> InputError:
    return InputError(
        f"{out_dir}: cannot write there ({exc.strerror or exc}); choose a writable folder"
    )


def _prepare_folder(out_dir: Path, spec: MaskSetSpec, tasks: list[Task], overwrite: bool) -> None:
    """Refuse to mix masks of different recipes, and fail early on an unwritable folder."""
    recipe_path = out_dir / RECIPE
    if overwrite:
        _remove_old_set(out_dir, tasks)
    elif recipe_path.exists():
        try:
            old = json.loads(recipe_path.read_text(encoding="utf-8")).get("recipe")
        except (OSError, ValueError, AttributeError):
            old = None
        if old != spec.recipe():
            raise ConfigError(
                f"{out_dir} holds masks made with other settings; choose another folder or "
                "pass --overwrite to replace them"
            )
    elif any((out_dir / t.file).exists() for t in tasks[:1000]):
        raise ConfigError(
            f"{out_dir} already holds mask files not made by pconv gen-masks; choose another "
            "folder or pass --overwrite"
        )
    info = {
        "pconv_version": __version__,
        "recipe": spec.recipe(),
        "count": spec.count,
        "per_band": spec.per_band,
        "bands": [fmt_ratio(e) for e in spec.edges],
        "margin": spec.resolved_margin(),
        "max_attempts": spec.max_attempts,
    }
    try:
        for folder in sorted({str(Path(t.file).parent) for t in tasks}):
            (out_dir / folder).mkdir(parents=True, exist_ok=True)
        atomic_write_text(recipe_path, json.dumps(info, indent=2) + "\n")
    except OSError as exc:
        raise _cannot_write(out_dir, exc) from None


def _remove_old_set(out_dir: Path, tasks: list[Task]) -> None:
    old_files = [out_dir / t.file for t in tasks]
    for manifest in (out_dir / MANIFEST, *out_dir.glob(f"*/{MANIFEST}")):
        try:
            old_files += [row.path for row in read_manifest(manifest)]
        except InputError:
            pass
    try:
        for path in old_files:
            path.unlink(missing_ok=True)
    except OSError as exc:
        raise _cannot_write(out_dir, exc) from None


def _preflight(spec: MaskSetSpec, sources: list[Path], tasks: list[Task]) -> None:
    """Try the first mask of every band before writing anything: unreachable bands fail here."""
    seen: set[tuple[bool, int | None]] = set()
    for task in tasks:
        if task.band is not None and (task.border, task.band) not in seen:
            seen.add((task.border, task.band))
            sample_for(task, spec, sources)


def write_mask_set(
    out_dir: str | os.PathLike,
    spec: MaskSetSpec,
    *,
    workers: int = 1,
    overwrite: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> MaskSetSummary:
    """Generate a mask set into ``out_dir``: PNG files (white = hole) plus the manifest.

    ``masks.csv`` lists file, hole_ratio, band, border, seed, hole_pixels, source (files
    relative to ``out_dir``; with two border sets each sub-folder has its own too) and
    ``masks.json`` the settings. Existing files of the same settings are kept (resume);
    ``overwrite`` replaces them. ``on_progress(done, total)`` is called after each mask.
    The files do not depend on ``workers``.
    """
    check_spec(spec)
    out_dir = Path(out_dir)
    sources = source_files(spec)
    tasks = plan(spec, len(sources))
    _preflight(spec, sources, tasks)
    previous = _previous_sources(out_dir) if spec.source is not None and not overwrite else {}
    _prepare_folder(out_dir, spec, tasks, overwrite)

    start = time.perf_counter()
    results: list[_Done] = []
    try:
        for done in _run_all(_Job(out_dir, spec, sources), tasks, workers):
            results.append(done)
            if on_progress is not None:
                on_progress(len(results), len(tasks))
        if hasattr(os, "sync"):
            os.sync()  # masks were written without fsync; make them durable before the manifest
        results.sort(key=lambda r: r.task.order)
        results = [r._replace(source=r.source or previous.get(r.task.file, "")) for r in results]
        manifest = _write_manifests(out_dir, spec, results)
    except OSError as exc:
        raise _cannot_write(out_dir, exc) from None
    return _summarise(out_dir, manifest, spec, results, time.perf_counter() - start)


def _previous_sources(out_dir: Path) -> dict[str, str]:
    # A kept file drawn from a random source no longer knows which: the old manifest does.
    try:
        return {row.file: row.source for row in read_manifest(out_dir)}
    except InputError:
        return {}


def _run_all(job: _Job, tasks: list[Task], workers: int) -> Iterator[_Done]:
    workers = max(1, min(workers, len(tasks) // 16 or 1))  # tiny sets: a pool costs more
    if workers == 1:
        yield from map(job.run, tasks)
        return
    # Not fork: the caller may be running threads (a progress display) that fork would copy
    # mid-flight. A fork server starts clean and forks cheaply from there.
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])  # import once in the server, not per worker
    else:
        ctx = multiprocessing.get_context("spawn")
    chunk = max(1, min(32, len(tasks) // (workers * 8)))
    with _main_not_rerun():
        pool = ctx.Pool(workers, _start_worker, (job,))
    with pool:
        yield from pool.imap_unordered(_run_in_worker, tasks, chunksize=chunk)


@contextlib.contextmanager
def _main_not_rerun() -> Iterator[None]:
    """Start workers without importing the caller's ``__main__`` again in each of them.

    Spawned and fork-server workers re-import the main script so that functions defined there
    can be found; these workers need only this package, and the ``pconv`` entry script imports
    the whole CLI (torch included), a start-up cost each worker would pay again.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.update(saved)


def _manifest_line(done: _Done, file: str, spec: MaskSetSpec) -> list[str]:
    band = band_of(done.ratio, spec.edges)
    label = "" if band is None else band_label(spec.edges[band], spec.edges[band + 1])
    border = "true" if done.task.border else "false"
    return [file, fmt_ratio(done.ratio), label, border, str(done.task.seed), str(done.holes),
            done.source]


def _write_manifests(out_dir: Path, spec: MaskSetSpec, results: list[_Done]) -> Path:
    rows = []
    per_set: dict[str, list[list[str]]] = {}
    for done in results:
        rows.append(_manifest_line(done, done.task.file, spec))
        folder = set_folder(spec, done.task.border)
        if folder:
            local = done.task.file[len(folder):]
            per_set.setdefault(folder, []).append(_manifest_line(done, local, spec))
    for folder, lines in per_set.items():
        atomic_write_text(out_dir / folder / MANIFEST, manifest_text(lines))
    manifest = out_dir / MANIFEST
    atomic_write_text(manifest, manifest_text(rows))
    return manifest


def _summarise(
    out_dir: Path, manifest: Path, spec: MaskSetSpec, results: list[_Done], seconds: float
) -> MaskSetSummary:
    groups: dict[tuple[bool, str], list[_Done]] = {}
    for done in results:
        band = band_of(done.ratio, spec.edges)
        label = "-" if band is None else band_label(spec.edges[band], spec.edges[band + 1])
        groups.setdefault((done.task.border, label), []).append(done)
    bands = []
    for (border, label), items in groups.items():
        ratios = [d.ratio for d in items]
        made = [d.draws for d in items if d.draws > 0]
        bands.append(BandSummary(
            border, label, len(items), float(np.mean(ratios)), min(ratios), max(ratios),
            float(np.mean(made)) if made else 0.0,
        ))
    bands.sort(key=lambda b: (not b.border, b.band == "-", b.min_ratio))
    kept = sum(1 for d in results if d.draws == 0)
    return MaskSetSummary(out_dir, manifest, len(results), len(results) - kept, kept, seconds,
                          bands)
