"""A restore run from start to end: :class:`RestoreRun` plans it (every check that needs no
model), then executes it through the pipeline and writes the failures file; :func:`restore`
does both in one call."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..imaging import pixel_limit
from .files import plan
from .masks import read_mask_file
from .options import RestoreOptions
from .pipeline import Restorer
from .record import check_output_settings, output_settings, write_failures
from .results import FileResult, RestoreReport, RestoreTask

if TYPE_CHECKING:
    from ..detect import _Detector
    from ..inpainter import Inpainter


class RestoreRun:
    """One restore run in two steps, so that a caller can check everything it can before it
    loads a model: planning on construction (options, IN, OUT, masks, the file list; raises
    :class:`InputError` or :class:`ConfigError`, writes nothing) and :meth:`execute`."""

    def __init__(self, input_path: str | os.PathLike, output: str | os.PathLike,
                 options: RestoreOptions | None = None) -> None:
        self.options = options or RestoreOptions()
        given = (self.options.masks, self.options.mask) != (None, None)
        #: True where no mask source was given and the detector stands in (see validate).
        self.detection_implied = not given and self.options.mask_from == "masks"
        self.options.validate()
        self.detection_implied &= self.options.mask_from == "detect"
        self.input_path, self.output = Path(input_path), Path(output)
        self._checked_settings: dict | None = None
        with pixel_limit(self.options.max_pixels):
            self.tasks, self.failures, self.ignored, self.notes = plan(
                self.input_path, self.output, self.options)
            self.shared_mask = None
            if self.options.mask is not None:
                self.shared_mask = read_mask_file(self.options.mask, self.options)

    @property
    def detecting(self) -> bool:
        return self.options.mask_from == "detect"

    def load_detector(self, device: str = "auto") -> _Detector | None:
        """The detector this run finds its masks with (None where it reads them)."""
        if not self.detecting:
            return None
        from ..detect import load_damage_detector

        return load_damage_detector(self.options.detector, device=device,
                                    precision=self.options.precision)

    def check_output(self, inpainter: Inpainter, model_digest: str | None = None,
                     detector: _Detector | None = None) -> None:
        """Refuse an OUT restored with other settings, or record these in it (see
        :func:`check_output_settings`); :meth:`execute` does it if the caller has not."""
        settings = output_settings(self.options, inpainter, model_digest, detector)
        if settings != self._checked_settings:
            check_output_settings(self.output, settings,
                                  overwrite=not self.options.skip_existing)
            self._checked_settings = settings

    def _is_done(self, task: RestoreTask) -> bool:
        # With --concat a file is done when its preview is written too; a detected mask, when
        # it is kept.
        return all(p is None or p.exists()
                   for p in (task.output, task.preview, task.detected_mask))

    def execute(
        self,
        inpainter: Inpainter,
        *,
        model_digest: str | None = None,
        detector: _Detector | None = None,
        on_start: Callable[[int, int], None] | None = None,
        on_result: Callable[[FileResult], None] | None = None,
    ) -> RestoreReport:
        """Restore the planned files with ``inpainter`` (see :func:`restore`); ``detector``
        finds the masks of a detecting run (default: :meth:`load_detector`)."""
        options = self.options
        started = time.perf_counter()
        results: list[FileResult] = []

        def emit(result: FileResult) -> None:
            results.append(result)
            if on_result is not None:
                on_result(result)

        if self.detecting and detector is None:
            detector = self.load_detector()
        self.check_output(inpainter, model_digest, detector)
        with pixel_limit(options.max_pixels):
            done = [t for t in self.tasks if options.skip_existing and self._is_done(t)]
            todo = [t for t in self.tasks if not (options.skip_existing and self._is_done(t))]
            if on_start is not None:
                on_start(len(self.tasks) + len(self.failures), len(todo))
            for failure in self.failures:
                emit(failure)
            for task in done:
                emit(FileResult(task.relative.as_posix(), "skipped", "output exists",
                                task.output))
            restorer = Restorer(inpainter, options, self.shared_mask, detector)
            interrupted, remaining = False, 0
            try:
                restorer.run(todo, emit)
            except KeyboardInterrupt:
                interrupted = True
                handled = {r.relative for r in results}
                remaining = sum(t.relative.as_posix() not in handled for t in todo)
        report = RestoreReport(
            results=results, backend=inpainter.backend, seconds=time.perf_counter() - started,
            interrupted=interrupted, remaining=remaining, ignored=self.ignored,
            shard=options.shard, notes=self.notes,
        )
        report.failures_csv = write_failures(self.output, report.failed, options.shard)
        return report


def restore(
    input_path: str | os.PathLike,
    output: str | os.PathLike,
    inpainter: Inpainter,
    options: RestoreOptions | None = None,
    *,
    model_digest: str | None = None,
    detector: _Detector | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> RestoreReport:
    """Restore every image under ``input_path`` into ``output`` (see :mod:`pconv_cli.restore`).

    ``on_start(total, to_process)`` is called once the files are known (``total`` counts the
    files refused while planning and the outputs that exist, which take no time; the others
    are processed); ``on_result(result)`` once per file, from the calling thread. A
    KeyboardInterrupt stops the run cleanly: the report says ``interrupted`` and how many
    files were not reached. ``model_digest`` (see :func:`file_digest`) tells models apart in
    OUT's record of settings (:func:`check_output_settings`).
    """
    return RestoreRun(input_path, output, options).execute(
        inpainter, model_digest=model_digest, detector=detector, on_start=on_start,
        on_result=on_result)
