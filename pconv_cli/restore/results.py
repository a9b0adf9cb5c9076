"""What a run works on and what it reports: one task per input file, one result per file, the
report of the whole run, and how an exception becomes a file's one-line reason.

Shared by every step of a run (planning refuses files, the pipeline fails them, the failures
file lists them), and by ``pconv detect``, which plans and reports its files the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PconvError, describe_exception


@dataclass(frozen=True)
class RestoreTask:
    """One input file and where its mask and output are."""

    source: Path
    relative: Path  # the input's path under the input folder (its name for a single file)
    output: Path
    mask: Path | None = None
    preview: Path | None = None
    detected_mask: Path | None = None  # where a detected mask is kept (OUT/_masks/...)


@dataclass
class FileResult:
    relative: str
    status: str  # "restored", "unchanged" (no holes: copied), "skipped" (exists), "failed"
    reason: str = ""
    output: Path | None = None
    warning: str = ""  # restored, but worth a look (a mask that is mostly hole)


@dataclass
class RestoreReport:
    results: list[FileResult]
    backend: str
    seconds: float
    interrupted: bool = False
    remaining: int = 0  # files not reached because of an interruption
    ignored: int = 0  # files that are not images
    failures_csv: Path | None = None
    shard: tuple[int, int] | None = None
    notes: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted

    @property
    def files_per_second(self) -> float:
        done = self.count("restored") + self.count("unchanged")
        return done / self.seconds if self.seconds > 0 else 0.0


def failure_reason(exc: BaseException) -> str:
    """One line for the failures file: the library's own errors as they are, anything else by
    its type and first line (a traceback would not fit a CSV row)."""
    if isinstance(exc, PconvError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory (try a smaller --hd-size or --batch-size)"
    if not str(exc).strip():
        return type(exc).__name__
    return f"{type(exc).__name__}: {describe_exception(exc, limit=200)}".rstrip(": ")


def failure_result(task: RestoreTask, exc: BaseException) -> FileResult:
    """A failed result whose reason does not repeat the file's path (the file column has it)."""
    reason = failure_reason(exc)
    if reason.startswith(f"{task.source}: "):
        reason = reason[len(f"{task.source}: "):]
    elif task.mask is not None and reason.startswith(f"{task.mask}: "):
        reason = f"mask {Path(task.mask).name}: " + reason[len(f"{task.mask}: "):]
    return FileResult(task.relative.as_posix(), "failed", reason)
