"""The files of a run in flight: worker threads read each file and its mask and cut its model
inputs, the calling thread runs the model on batches of same-size inputs from several files,
and the workers paste and write each file once all of its inputs are back.

Every file ends as one :class:`FileResult`, emitted as it is done; one bad file fails alone.
"""

from __future__ import annotations

import shutil
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..fileio import atomic_path
from ..imaging import ImageFile, output_format, read_image, write_image
from .jobs import Job, batch_limit, fill_thin_regions_first, make_jobs, paste, run_batch
from .masks import MaskSource
from .options import RestoreOptions
from .previews import write_preview
from .results import FileResult, RestoreTask, failure_reason, failure_result

if TYPE_CHECKING:
    from ..detect import _Detector
    from ..inpainter import Inpainter


@dataclass
class _Prepared:
    task: RestoreTask
    image: ImageFile
    valid: np.ndarray
    jobs: list[Job]
    waiting: int = 0
    failure: str | None = None
    warning: str = ""
    # The image as read and its whole mask, for the preview, where ``image`` and ``valid``
    # already have the thin regions filled (--method auto).
    as_read: tuple[ImageFile, np.ndarray] | None = None


class Restorer:
    """Decode and encode in a thread pool around batched inference in the calling thread."""

    def __init__(self, inpainter: Inpainter, options: RestoreOptions,
                 shared_mask: np.ndarray | None, detector: _Detector | None = None) -> None:
        self.inpainter = inpainter
        self.options = options
        self.masks = MaskSource(options, shared_mask, detector)

    # --- worker side -----------------------------------------------------------------
    def prepare(self, task: RestoreTask) -> _Prepared | FileResult:
        """Read a file and its mask and cut its model inputs; a file without holes is written
        at once, a bad one fails."""
        try:
            image = read_image(task.source, max_pixels=self.options.max_pixels)
            valid, image = self.masks.mask_for(task, image)
            if not valid.any():
                raise InputError("the mask covers the whole image: nothing to restore from "
                                 f"({self.masks.polarity_hint()})")
            if valid.all():
                return self._write_unchanged(task, image)
            warning = self.masks.hole_warning(valid)
            as_read = (image, valid)
            image, valid = fill_thin_regions_first(self.inpainter, image, valid)
            jobs = make_jobs(image, valid, self.options, self.inpainter.multiple,
                             self.inpainter.fixed_size)
            return _Prepared(task, image, valid, jobs, waiting=len(jobs), warning=warning,
                             as_read=as_read)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
            return failure_result(task, exc)

    def _write_unchanged(self, task: RestoreTask, image: ImageFile) -> FileResult:
        """No hole: the file itself is copied when its format is kept, byte for byte."""
        fmt = output_format(image.format, self.options.format)
        if fmt == image.format and self.options.mask_from != "alpha":
            with atomic_path(task.output) as tmp:
                shutil.copyfile(task.source, tmp)
        else:
            write_image(task.output, image, format=fmt, quality=self.options.quality)
        if task.preview is not None:
            write_preview(task.preview, image, np.ones(image.pixels.shape[:2], bool), image)
        return FileResult(task.relative.as_posix(), "unchanged", "no holes in the mask",
                          task.output)

    def finish(self, item: _Prepared) -> FileResult:
        """Paste a file's predictions and write it (and its preview)."""
        task = item.task
        try:
            if item.failure is not None:
                return FileResult(task.relative.as_posix(), "failed", item.failure)
            restored = paste(item.image, item.valid, item.jobs)
            fmt = output_format(item.image.format, self.options.format)
            write_image(task.output, restored, format=fmt, quality=self.options.quality)
            if task.preview is not None:
                before, holes = item.as_read or (item.image, item.valid)
                write_preview(task.preview, before, holes, restored)
            return FileResult(task.relative.as_posix(), "restored", "", task.output,
                              warning=item.warning)
        except Exception as exc:  # noqa: BLE001
            return failure_result(task, exc)

    # --- main side ---------------------------------------------------------------------
    def run(self, tasks: list[RestoreTask], emit: Callable[[FileResult], None]) -> None:
        """Process ``tasks``, emitting one result each. A KeyboardInterrupt is re-raised once
        the work in flight is written and reported."""
        opts = self.options
        window = opts.workers + 2 * opts.batch_size
        max_waiting = 2 * opts.batch_size + opts.workers
        queue: deque[tuple[RestoreTask, Future]] = deque()
        encodes: list[Future] = []
        buckets: dict[tuple[int, int], list[tuple[_Prepared, Job]]] = {}
        waiting: list[_Prepared] = []
        todo = deque(tasks)
        pool = ThreadPoolExecutor(max_workers=opts.workers, thread_name_prefix="pconv-io")

        def drain(block: bool = False) -> None:
            for fut in list(encodes):
                if block or fut.done():
                    encodes.remove(fut)
                    emit(fut.result())

        def run_bucket(key: tuple[int, int]) -> None:
            entries = [(p, j) for p, j in buckets.pop(key, []) if p.failure is None]
            if entries:
                try:
                    run_batch(self.inpainter, [j for _, j in entries])
                except Exception as exc:  # noqa: BLE001 - the batch's files fail, the run goes on
                    reason = failure_reason(exc)
                    for prepared, _ in entries:
                        prepared.failure = reason
                for prepared, _ in entries:
                    prepared.waiting -= 1
            for prepared in [p for p in waiting if p.waiting <= 0 or p.failure is not None]:
                waiting.remove(prepared)
                encodes.append(pool.submit(self.finish, prepared))

        try:
            while todo or queue:
                while todo and len(queue) < window:
                    task = todo.popleft()
                    queue.append((task, pool.submit(self.prepare, task)))
                _, fut = queue.popleft()
                item = fut.result()
                if isinstance(item, FileResult):
                    emit(item)
                elif not item.jobs:  # every hole was thin and is filled already
                    encodes.append(pool.submit(self.finish, item))
                else:
                    waiting.append(item)
                    for job in item.jobs:
                        bucket = buckets.setdefault(job.shape, [])
                        bucket.append((item, job))
                        if len(bucket) >= batch_limit(job.shape, opts):
                            run_bucket(job.shape)
                    if len(waiting) >= max_waiting:  # bound memory: flush partial batches
                        for key in list(buckets):
                            run_bucket(key)
                drain()
            for key in list(buckets):
                run_bucket(key)
            drain(block=True)
        except KeyboardInterrupt:
            # Stop reading new files; what is decoded but not yet inferred is dropped. Encodes
            # already running finish (each is atomic either way) and are reported.
            for _, fut in queue:
                fut.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            for fut in encodes:
                if not fut.cancelled():
                    emit(fut.result())
            raise
        finally:
            pool.shutdown(wait=True)
