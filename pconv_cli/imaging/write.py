"""Encoding images: :func:`write_image` writes an :class:`~pconv_cli.imaging.ImageFile` back
in its own format (or another) keeping what the format can hold; :func:`save_image` writes a
plain float or 8-bit array. Both write atomically."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from ..errors import InputError
from ..fileio import atomic_path
from .colour import cmyk_to_rgb, full_scale, to_uint8
from .files import suffix_format
from .read import ImageFile

# The output formats a user may ask for; "keep" writes each image in its own.
FORMAT_CHOICES = {"keep": None, "png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "tiff": "TIFF",
                  "tif": "TIFF", "webp": "WEBP"}
DEFAULT_QUALITY = 95
_LOSSLESS_TIFF = ("raw", "tiff_lzw", "tiff_deflate", "tiff_adobe_deflate", "packbits")


def output_format(image_format: str, requested: str = "keep") -> str:
    """The Pillow format name to write: the input's own for ``keep``."""
    if requested not in FORMAT_CHOICES:
        raise InputError(f"unknown output format {requested!r}; choose one of "
                         f"{', '.join(FORMAT_CHOICES)}")
    return FORMAT_CHOICES[requested] or image_format


def write_image(path: str | os.PathLike, image: ImageFile, *, format: str,
                quality: int | None = None) -> None:
    """Write ``image`` atomically as ``format``, keeping as much as the format can hold.

    16-bit stays 16-bit in PNG and TIFF (8-bit elsewhere); alpha is kept except in JPEG
    (flattened onto white) and BMP; CMYK is kept in JPEG and TIFF (RGB elsewhere).
    ``quality`` applies to JPEG and lossy WebP; without it a JPEG re-uses the source JPEG's
    quantisation tables (the same quality as the input), others get quality 95.
    """
    pixels, mode = _fit_to_format(image.pixels, image.mode, format)
    with atomic_path(path) as tmp:
        if pixels.dtype == np.uint16 and mode != "L":
            data = (encode_png16(pixels, image) if format == "PNG"
                    else _encode_tiff16(pixels, image))
            tmp.write_bytes(data)
            return
        pil = _to_pillow(pixels, mode)
        pil.save(tmp, format=format, **_save_options(image, format, quality))


def save_image(path: str | os.PathLike, image: np.ndarray, **save_kwargs) -> None:
    """Write a float [0, 1] or uint8 H×W×C image atomically, format from the suffix."""
    arr = image if image.dtype == np.uint8 else to_uint8(image)
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format=suffix_format(Path(path)), **save_kwargs)


def _fit_to_format(pixels: np.ndarray, mode: str, fmt: str) -> tuple[np.ndarray, str]:
    if fmt in ("JPEG", "WEBP", "BMP") and pixels.dtype == np.uint16:
        pixels = np.rint(pixels / 257.0).astype(np.uint8)
    if mode == "CMYK" and fmt not in ("JPEG", "TIFF"):
        pixels, mode = cmyk_to_rgb(pixels), "RGB"
    if mode in ("LA", "RGBA") and fmt in ("JPEG", "BMP"):
        pixels, mode = _flatten_on_white(pixels), mode[:-1]
    if mode == "LA" and fmt == "WEBP":
        pixels, mode = np.concatenate([np.repeat(pixels[..., :1], 3, 2), pixels[..., 1:]], 2), \
            "RGBA"
    return pixels, mode


def _flatten_on_white(pixels: np.ndarray) -> np.ndarray:
    full = full_scale(pixels.dtype)
    alpha = pixels[..., -1:].astype(np.float32) / full
    color = pixels[..., :-1].astype(np.float32)
    return np.rint(color * alpha + full * (1 - alpha)).astype(pixels.dtype)


def _to_pillow(pixels: np.ndarray, mode: str) -> Image.Image:
    size = (pixels.shape[1], pixels.shape[0])
    # frombuffer shares the array's memory: a 24-megapixel image is not copied once more.
    if pixels.dtype == np.uint16:  # 16-bit grey (16-bit colour goes through the encoders below)
        grey = np.ascontiguousarray(pixels[..., 0], "<u2")
        return Image.frombuffer("I;16", size, grey, "raw", "I;16", 0, 1)
    data = np.ascontiguousarray(pixels[..., 0] if mode == "L" else pixels)
    return Image.frombuffer(mode, size, data, "raw", mode, 0, 1)


def _save_options(image: ImageFile, fmt: str, quality: int | None) -> dict:
    opts: dict = {}
    if image.icc_profile and fmt != "BMP":
        opts["icc_profile"] = image.icc_profile
    if image.exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        opts["exif"] = image.exif
    if image.dpi and fmt != "WEBP":
        opts["dpi"] = image.dpi
    if fmt == "JPEG":
        if quality is None and image.jpeg_qtables and image.format == "JPEG":
            opts["qtables"] = image.jpeg_qtables
            if image.jpeg_subsampling is not None and image.jpeg_subsampling >= 0:
                opts["subsampling"] = image.jpeg_subsampling
        else:
            opts["quality"] = quality or DEFAULT_QUALITY
    elif fmt == "WEBP":
        if quality is None and (image.webp_lossless or image.format != "WEBP"):
            # A lossless source stays lossless; so does any PNG/TIFF converted to WebP
            # unless a quality is asked for.
            opts.update(lossless=True, exact=True)
        else:
            opts["quality"] = quality or DEFAULT_QUALITY
    elif fmt == "TIFF":
        kept = image.tiff_compression in _LOSSLESS_TIFF
        opts["compression"] = image.tiff_compression if kept else "tiff_lzw"
    elif fmt == "PNG" and image.png_text:
        info = PngImagePlugin.PngInfo()
        for key, value in image.png_text.items():
            info.add_itxt(key, value)
        opts["pnginfo"] = info
    return opts


# 16-bit colour PNG: Pillow cannot write it and OpenCV is only an optional extra, so pconv
# writes the chunks itself. pypng, the maintained pure-Python writer, was weighed and kept out:
# it writes every row unfiltered, and on a 3000×2000 16-bit RGB photograph its file is about a
# fifth larger than this writer's ("Up" filter) for no gain in time (benchmarks/bench_png16.py
# measures both in one run).


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def encode_png16(pixels: np.ndarray, image: ImageFile) -> bytes:
    """A 16-bit grey+alpha / RGB / RGBA PNG of ``pixels`` (H×W×2, 3 or 4 uint16), with the
    ICC profile, DPI, EXIF and text of ``image``."""
    height, width, channels = pixels.shape
    color_type = {2: 4, 3: 2, 4: 6}[channels]
    rows = np.ascontiguousarray(pixels, dtype=">u2").view(np.uint8).reshape(height, -1)
    # "Up" filter (type 2) on every row: vectorised, and compresses photos far better than none.
    up = rows.copy()
    up[1:] -= rows[:-1]
    scanlines = np.concatenate([np.full((height, 1), 2, np.uint8), up], axis=1)
    out = io.BytesIO()
    out.write(b"\x89PNG\r\n\x1a\n")
    out.write(_png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)))
    if image.icc_profile:
        out.write(_png_chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(image.icc_profile)))
    if image.dpi:
        ppm = [max(1, round(d / 0.0254)) for d in image.dpi]
        out.write(_png_chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
    if image.exif:
        exif = image.exif[6:] if image.exif.startswith(b"Exif\0\0") else image.exif
        out.write(_png_chunk(b"eXIf", exif))
    for key, value in image.png_text.items():
        keyword = key.encode("latin-1", "replace")[:79]
        out.write(_png_chunk(b"iTXt", keyword + b"\0\0\0\0\0" + value.encode("utf-8")))
    out.write(_png_chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 6)))
    out.write(_png_chunk(b"IEND", b""))
    return out.getvalue()


def _encode_tiff16(pixels: np.ndarray, image: ImageFile) -> bytes:
    """A 16-bit colour TIFF (deflate), with ICC profile and resolution; EXIF is not carried."""
    import tifffile

    out = io.BytesIO()
    kwargs: dict = {"photometric": "minisblack" if image.mode == "LA" else "rgb",
                    "compression": "zlib"}
    if image.has_alpha:
        kwargs["extrasamples"] = ("unassalpha",)
    if image.dpi:
        kwargs.update(resolution=image.dpi, resolutionunit="INCH")
    if image.icc_profile:
        kwargs["iccprofile"] = image.icc_profile
    tifffile.imwrite(out, np.ascontiguousarray(pixels), **kwargs)
    return out.getvalue()
