"""What counts as an image file (by its suffix), the format each suffix is written in, and the
image files of a folder."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError

# The suffixes pconv reads and writes, and the Pillow format a file of each suffix is.
SUFFIX_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP",
                  ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}
IMAGE_SUFFIXES = tuple(SUFFIX_FORMATS)
# The suffix an output written in a format gets.
FORMAT_SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "TIFF": ".tif", "WEBP": ".webp", "BMP": ".bmp"}
# Raster formats a folder of photographs or scans may hold that pconv does not read: restore
# reports them as failures instead of passing over them in silence.
UNSUPPORTED_SUFFIXES = (".gif", ".heic", ".heif", ".avif", ".jp2", ".j2k", ".jxl", ".ico",
                        ".psd", ".tga", ".pbm", ".pgm", ".ppm", ".pnm", ".dng", ".cr2", ".cr3",
                        ".nef", ".arw", ".orf", ".raf", ".rw2", ".raw")


def is_image_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def suffix_format(path: str | os.PathLike) -> str:
    """The Pillow format a file is written in, from its suffix."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in SUFFIX_FORMATS:
        raise InputError(f"{path}: unsupported image format {ext!r}")
    return SUFFIX_FORMATS[ext]


def list_images(folder: str | os.PathLike, *, recursive: bool = True) -> list[Path]:
    """Image files under ``folder`` in a stable (sorted) order; hidden files are ignored."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    pattern = "**/*" if recursive else "*"
    return sorted(
        p
        for p in folder.glob(pattern)
        if p.is_file() and is_image_file(p) and not any(s.startswith(".") for s in p.parts)
    )
