"""Atomic file writes: a reader never sees a half-written file, a crash leaves the old one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by the owner alone; finished files get the usual
# permissions (0666 less the umask), like any file the user writes.
_FILE_MODE = 0o666 & ~_current_umask()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed onto ``target``.

    The temporary file keeps the target's suffix so that writers choosing a format from the
    extension (Pillow, torch) behave as for the real name. On error the temporary file is
    removed and ``target`` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _FILE_MODE)
        if fsync:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(target: str | os.PathLike, data: bytes, *, fsync: bool = True) -> None:
    with atomic_path(target, fsync=fsync) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | os.PathLike, text: str, *, fsync: bool = True) -> None:
    atomic_write_bytes(target, text.encode("utf-8"), fsync=fsync)


def atomic_write_with(
    target: str | os.PathLike, write: Callable[[Path], None], *, fsync: bool = True
) -> None:
    """Call ``write(tmp_path)`` and move the result onto ``target`` atomically."""
    with atomic_path(target, fsync=fsync) as tmp:
        write(tmp)
