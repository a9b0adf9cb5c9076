"""Decoding images: opening a file with one clear line for every way it can be unusable,
:func:`read_image` to native pixels with everything needed to write them back the same way,
and :func:`load_image` to float RGB.

:func:`read_image` decodes to the *native* pixels (8- or 16-bit, grey, grey + alpha, RGB, RGBA
or CMYK), with EXIF orientation applied, and keeps the format, ICC profile, EXIF (orientation
reset, since the pixels are now upright), DPI, JPEG quantisation tables, TIFF compression,
WebP losslessness and PNG text.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

from ..errors import InputError, describe_exception

# Pillow refuses images above twice its MAX_IMAGE_PIXELS; the same point is our default.
DEFAULT_MAX_PIXELS = 2 * 89_478_485

INPUT_FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "WEBP": "WEBP", "TIFF": "TIFF",
                 "BMP": "BMP"}
_GREY_16 = ("I;16", "I;16B", "I;16L", "I")  # Pillow's modes of 16-bit (and 32-bit) grey
# Descriptive TIFF tags worth carrying as EXIF; the structural ones (strips, sizes) are not.
_TIFF_DESCRIPTIVE_TAGS = (270, 271, 272, 305, 306, 315, 33432)
_EXIF_IFD, _GPS_IFD, _ORIENTATION = 0x8769, 0x8825, 0x0112


@dataclass
class ImageFile:
    """Decoded native pixels and what is needed to write them back the same way.

    ``pixels`` is H×W×C uint8 or uint16; ``mode`` one of L, LA, RGB, RGBA, CMYK (C = 1, 2, 3,
    4, 4). Alpha is the last channel of LA and RGBA.
    """

    pixels: np.ndarray
    mode: str
    format: str
    icc_profile: bytes | None = None
    exif: bytes | None = None
    dpi: tuple[float, float] | None = None
    jpeg_qtables: dict | None = None
    jpeg_subsampling: int | None = None
    tiff_compression: str | None = None
    webp_lossless: bool = False
    png_text: dict[str, str] = field(default_factory=dict)

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    @property
    def width(self) -> int:
        return self.pixels.shape[1]

    @property
    def bit_depth(self) -> int:
        return 16 if self.pixels.dtype == np.uint16 else 8

    @property
    def has_alpha(self) -> bool:
        return self.mode in ("LA", "RGBA")

    @property
    def color_channels(self) -> int:
        return {"L": 1, "LA": 1, "RGB": 3, "RGBA": 3, "CMYK": 4}[self.mode]

    @property
    def alpha(self) -> np.ndarray | None:
        return self.pixels[..., -1] if self.has_alpha else None

    def without_alpha(self) -> ImageFile:
        """The same image with its alpha channel dropped (used when alpha was the mask)."""
        if not self.has_alpha:
            return self
        mode = "L" if self.mode == "LA" else "RGB"
        return dataclasses.replace(self, pixels=self.pixels[..., :-1], mode=mode)


@contextlib.contextmanager
def pixel_limit(max_pixels: int | None) -> Iterator[None]:
    """Hand the decompression-bomb guard to :func:`open_image` for the duration.

    Pillow's own guard is a process-wide setting that warns at one limit and refuses at twice
    it; pconv checks ``max_pixels`` itself before decoding, so it switches Pillow's off here
    and restores it afterwards.
    """
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def reason(exc: BaseException) -> str:
    """An exception's informative line, short enough for a one-line failure."""
    return describe_exception(exc, limit=160)


def open_image(path: Path, max_pixels: int | None) -> Image.Image:
    """The file opened by Pillow (header only, not decoded), or one line saying why not.

    ``max_pixels`` refuses larger images before a pixel is decoded; without it Pillow's own
    decompression-bomb guard applies.
    """
    hint = "; raise --max-pixels if the file is trusted" if max_pixels is not None else ""
    try:
        img = Image.open(path)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except Image.DecompressionBombError:
        raise InputError(
            f"{path}: image too large for the decompression-bomb guard{hint}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if _is_empty(path):  # asked only now: a file that opened needs no extra system call
            raise InputError(f"{path}: empty file") from None
        raise InputError(f"{path}: not a readable image ({reason(exc)})") from None
    width, height = img.size
    if max_pixels is not None and width * height > max_pixels:
        img.close()
        raise InputError(
            f"{path}: {width}×{height} = {width * height:,} pixels is over the limit of "
            f"{max_pixels:,} (decompression-bomb guard){hint}"
        )
    return img


def _is_empty(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:
        return False


def decode_upright(img: Image.Image, path: Path, what: str = "image", *,
                   orient: bool = True) -> Image.Image:
    """Decode an opened file and turn it upright for its EXIF orientation (in place; not with
    ``orient=False``); a damaged file is one clear line naming ``what`` it is."""
    try:
        img.load()
        return (ImageOps.exif_transpose(img, in_place=True) or img) if orient else img
    except (OSError, SyntaxError, ValueError, struct.error) as exc:
        raise InputError(f"{path}: truncated or corrupt {what} ({reason(exc)})") from None


def load_image(path: str | os.PathLike) -> np.ndarray:
    """An RGB image as float32 H×W×3 in [0, 1], EXIF orientation applied."""
    path = Path(path)
    with open_image(path, None) as img:
        upright = decode_upright(img, path)
        if upright.mode in _GREY_16:
            arr = np.asarray(upright, dtype=np.float32) / 65535.0
            return np.repeat(np.clip(arr, 0, 1)[..., None], 3, axis=2)
        return np.asarray(upright.convert("RGB"), dtype=np.float32) / 255.0


def read_image(path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS
               ) -> ImageFile:
    """Decode an image to native pixels, EXIF orientation applied; see :class:`ImageFile`."""
    path = Path(path)
    with open_image(path, max_pixels) as img:
        fmt = INPUT_FORMATS.get(img.format or "")
        if fmt is None:
            raise InputError(
                f"{path}: unsupported format {img.format or 'unknown'}; restore reads JPEG, "
                "PNG, WebP, TIFF and BMP"
            )
        colour_type = _png_colour_type(path, 16) if fmt == "PNG" else None
        if colour_type in (2, 4, 6) or (fmt == "TIFF" and _is_16bit_tiff_colour(img)):
            # Pillow reads 16-bit colour PNG and TIFF as 8-bit without a word.
            pixels, mode = _decode_16bit_color(path, img, grey=colour_type == 4)
        else:
            pixels, mode = _decode_pillow(path, img)
        # After decoding: some metadata (PNG text after the image data) is read only then.
        meta = _metadata(path, img, fmt)
    return ImageFile(pixels=pixels, mode=mode, format=fmt, **meta)


def _decode_pillow(path: Path, img: Image.Image) -> tuple[np.ndarray, str]:
    upright = decode_upright(img, path)
    mode = upright.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(upright).astype(np.uint16)[..., None], "L"
    if mode == "I":
        arr = np.asarray(upright)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise InputError(f"{path}: 32-bit integer pixels are not supported; save as 16-bit")
        return arr.astype(np.uint16)[..., None], "L"
    if mode == "1":
        upright, mode = upright.convert("L"), "L"
    elif mode == "P":
        mode = "RGBA" if "transparency" in upright.info else "RGB"
        upright = upright.convert(mode)
    elif mode in ("PA", "RGBa", "La"):
        mode = "LA" if mode == "La" else "RGBA"
        upright = upright.convert(mode)
    elif mode in ("RGBX", "YCbCr", "LAB", "HSV"):
        upright, mode = upright.convert("RGB"), "RGB"
    elif mode not in ("L", "LA", "RGB", "RGBA", "CMYK"):
        raise InputError(f"{path}: pixel format {mode} is not supported")
    arr = np.asarray(upright)
    return (arr[..., None] if arr.ndim == 2 else arr), mode


def _png_colour_type(path: Path, bit_depth: int) -> int | None:
    """The colour type of a PNG of ``bit_depth`` bits per sample, from its IHDR chunk; None
    for another depth or a short file."""
    with open(path, "rb") as handle:
        header = handle.read(26)
    # Signature (8) + IHDR length and type (8) + width, height (8) + bit depth, colour type.
    if len(header) == 26 and header[24] == bit_depth:
        return header[25]
    return None


def _is_16bit_tiff_colour(img: Image.Image) -> bool:
    bits = img.tag_v2.get(258)
    return isinstance(bits, tuple) and len(bits) >= 2 and max(bits) > 8


def _decode_16bit_color(path: Path, img: Image.Image, *, grey: bool = False
                        ) -> tuple[np.ndarray, str]:
    """16-bit pixels through OpenCV (or tifffile). ``grey``: the file is grey + alpha, which
    OpenCV expands to four channels; its grey and alpha channels are taken back out."""
    arr = None
    try:
        import cv2

        arr = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
        if arr is not None and arr.ndim == 3:
            order = [2, 1, 0, 3][: arr.shape[2]]
            arr = arr[..., order]
    except ImportError:
        if img.format == "TIFF":
            try:
                import tifffile

                arr = tifffile.imread(path, key=0)
            except (ValueError, OSError, ImportError) as exc:
                raise InputError(
                    f"{path}: cannot decode this 16-bit colour TIFF ({reason(exc)}); install "
                    "opencv-python-headless to read it"
                ) from None
        else:
            raise InputError(
                f"{path}: 16-bit colour PNG needs opencv-python-headless to be read without "
                "dropping to 8 bits (pip install 'pconv[classical]')"
            ) from None
    if arr is None or arr.dtype != np.uint16:
        raise InputError(f"{path}: truncated or corrupt 16-bit image")
    if arr.ndim == 2:
        arr = arr[..., None]
    if grey and arr.shape[2] == 4:  # OpenCV's BGRA of a grey + alpha PNG: B = G = R = grey
        arr = arr[..., [0, 3]]
    arr = apply_orientation(arr, img.getexif().get(_ORIENTATION, 1))
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}.get(arr.shape[2])
    if mode is None:
        raise InputError(f"{path}: {arr.shape[2]} channels are not supported")
    return np.ascontiguousarray(arr), mode


def apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Turn an H×W×C array upright for an EXIF orientation value (as ImageOps.exif_transpose)."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, k=-1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, k=1),
    }
    op = ops.get(int(orientation or 1))
    return pixels if op is None else op(pixels)


def _metadata(path: Path, img: Image.Image, fmt: str) -> dict:
    meta: dict = {"icc_profile": img.info.get("icc_profile") or None}
    dpi = img.info.get("dpi")
    if dpi and all(float(d) > 0 for d in dpi):
        meta["dpi"] = (float(dpi[0]), float(dpi[1]))
    meta["exif"] = _upright_exif(img, fmt)
    if fmt == "JPEG":
        meta["jpeg_qtables"] = getattr(img, "quantization", None) or None
        with contextlib.suppress(Exception):
            meta["jpeg_subsampling"] = JpegImagePlugin.get_sampling(img)
    elif fmt == "TIFF":
        meta["tiff_compression"] = img.info.get("compression")
    elif fmt == "WEBP":
        meta["webp_lossless"] = _webp_is_lossless(path)
    elif fmt == "PNG":
        with contextlib.suppress(Exception):  # damaged text chunks cost the text only
            meta["png_text"] = {str(k): str(v) for k, v in (img.text or {}).items()}
    return meta


def _upright_exif(img: Image.Image, fmt: str) -> bytes | None:
    """The file's EXIF with the orientation tag removed (the pixels are written upright)."""
    try:
        # A copy: the image's own Exif object still has to tell exif_transpose the orientation.
        exif = Image.Exif()
        exif.load(img.getexif().tobytes())
        if fmt == "TIFF":
            # A TIFF's "EXIF" is its whole first IFD, strip offsets and all; keep the
            # descriptive tags and the EXIF / GPS sub-directories only.
            kept = Image.Exif()
            for tag in _TIFF_DESCRIPTIVE_TAGS:
                if tag in exif:
                    kept[tag] = exif[tag]
            for pointer in (_EXIF_IFD, _GPS_IFD):
                sub = exif.get_ifd(pointer)
                if sub:
                    kept.get_ifd(pointer).update(sub)
            exif = kept
        if _ORIENTATION in exif:
            del exif[_ORIENTATION]
        if not len(exif) and not exif.get_ifd(_EXIF_IFD):
            return None
        return exif.tobytes()
    except Exception:  # noqa: BLE001 - malformed EXIF must not cost the image
        return None


def _webp_is_lossless(path: Path) -> bool:
    """True if the WebP stream is VP8L (lossless); its chunks follow the 12-byte RIFF header."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    pos = 12
    while pos + 8 <= len(head):
        tag = head[pos:pos + 4]
        if tag == b"VP8L":
            return True
        if tag == b"VP8 ":
            return False
        size = struct.unpack("<I", head[pos + 4:pos + 8])[0]
        pos += 8 + size + (size & 1)
    return False
