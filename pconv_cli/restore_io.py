"""Reading and writing the images that ``restore`` works on, losing nothing on the way.

An image is decoded to its *native* pixels (8- or 16-bit, grey, grey + alpha, RGB, RGBA or
CMYK), with EXIF orientation applied, and carries what is needed to write it back the same
way: format, ICC profile, EXIF (orientation reset, since the pixels are now upright), DPI,
JPEG quantisation tables, TIFF compression, WebP losslessness, PNG text.

The model sees float RGB in [0, 1] (:func:`model_rgb`); its prediction is converted back to
the native pixel format (:func:`native_color`) and pasted into hole pixels only, so every
known pixel is written exactly as it was read.

Mask files follow :mod:`pconv_cli.imaging`: white = hole on disk, True = valid here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin, PngImagePlugin, UnidentifiedImageError

from .errors import InputError, describe_exception
from .fileio import atomic_path
from .imaging import LUMA_601, hole_file_to_valid

# Pillow refuses images above twice its MAX_IMAGE_PIXELS; the same point is our default.
DEFAULT_MAX_PIXELS = 2 * 89_478_485

INPUT_FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "WEBP": "WEBP", "TIFF": "TIFF",
                 "BMP": "BMP"}
FORMAT_SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "TIFF": ".tif", "WEBP": ".webp", "BMP": ".bmp"}
FORMAT_CHOICES = {"keep": None, "png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "tiff": "TIFF",
                  "tif": "TIFF", "webp": "WEBP"}
# Raster formats a folder of photographs or scans may hold that restore does not read: they are
# reported as failures instead of being passed over in silence.
UNSUPPORTED_SUFFIXES = (".gif", ".heic", ".heif", ".avif", ".jp2", ".j2k", ".jxl", ".ico",
                        ".psd", ".tga", ".pbm", ".pgm", ".ppm", ".pnm", ".dng", ".cr2", ".cr3",
                        ".nef", ".arw", ".orf", ".raf", ".rw2", ".raw")
DEFAULT_QUALITY = 95
_LOSSLESS_TIFF = ("raw", "tiff_lzw", "tiff_deflate", "tiff_adobe_deflate", "packbits")
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
        return _replace_pixels(self, self.pixels[..., :-1], mode)


def _replace_pixels(image: ImageFile, pixels: np.ndarray, mode: str) -> ImageFile:
    return dataclasses.replace(image, pixels=pixels, mode=mode)


@contextlib.contextmanager
def pixel_limit(max_pixels: int | None) -> Iterator[None]:
    """Hand the decompression-bomb guard to :func:`read_image` for the duration.

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


def _open_header(path: Path, max_pixels: int | None) -> Image.Image:
    try:
        if path.stat().st_size == 0:
            raise InputError(f"{path}: empty file")
        img = Image.open(path)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except Image.DecompressionBombError:
        raise InputError(
            f"{path}: image too large for the decompression-bomb guard; raise --max-pixels "
            "if the file is trusted"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: not a readable image ({_reason(exc)})") from None
    width, height = img.size
    if max_pixels is not None and width * height > max_pixels:
        img.close()
        raise InputError(
            f"{path}: {width}×{height} = {width * height:,} pixels is over the limit of "
            f"{max_pixels:,} (decompression-bomb guard); raise --max-pixels if the file is trusted"
        )
    return img


def _reason(exc: BaseException) -> str:
    return describe_exception(exc, limit=160)


def read_image(path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS
               ) -> ImageFile:
    """Decode an image to native pixels, EXIF orientation applied; see :class:`ImageFile`."""
    path = Path(path)
    img = _open_header(path, max_pixels)
    with img:
        fmt = INPUT_FORMATS.get(img.format or "")
        if fmt is None:
            raise InputError(
                f"{path}: unsupported format {img.format or 'unknown'}; restore reads JPEG, "
                "PNG, WebP, TIFF and BMP"
            )
        if _is_16bit_color(path, img, fmt):
            pixels, mode = _decode_16bit_color(path, img, grey=_is_png_grey_alpha(path, fmt))
        else:
            pixels, mode = _decode_pillow(path, img)
        # After decoding: some metadata (PNG text after the image data) is read only then.
        meta = _metadata(path, img, fmt)
    return ImageFile(pixels=pixels, mode=mode, format=fmt, **meta)


def _decode_pillow(path: Path, img: Image.Image) -> tuple[np.ndarray, str]:
    try:
        img.load()
        upright = ImageOps.exif_transpose(img, in_place=True) or img
    except (OSError, SyntaxError, ValueError, struct.error) as exc:
        raise InputError(f"{path}: truncated or corrupt image ({_reason(exc)})") from None
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


def _is_16bit_color(path: Path, img: Image.Image, fmt: str) -> bool:
    """Pillow reads 16-bit colour PNG and TIFF as 8-bit without a word: detect them first."""
    if fmt == "PNG":
        with open(path, "rb") as handle:
            header = handle.read(26)
        # Signature (8) + IHDR length and type (8) + width, height (8) + bit depth, colour type.
        return len(header) == 26 and header[24] == 16 and header[25] in (2, 4, 6)
    if fmt == "TIFF":
        bits = img.tag_v2.get(258)
        if isinstance(bits, tuple) and len(bits) >= 2:
            return max(bits) > 8
    return False


def _is_png_grey_alpha(path: Path, fmt: str) -> bool:
    """True for a PNG of colour type 4 (grey + alpha), read from its IHDR chunk."""
    if fmt != "PNG":
        return False
    with open(path, "rb") as handle:
        header = handle.read(26)
    return len(header) == 26 and header[25] == 4


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
                    f"{path}: cannot decode this 16-bit colour TIFF ({_reason(exc)}); install "
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


# ----------------------------------------------------------------------------- masks


def _open_mask_oriented(path: Path, max_pixels: int | None) -> Image.Image:
    """A mask file decoded, EXIF orientation applied; a damaged file is one clear line."""
    img = _open_header(path, max_pixels)
    with img:
        try:
            img.load()
            return ImageOps.exif_transpose(img)
        except (OSError, SyntaxError, ValueError, struct.error) as exc:
            raise InputError(f"{path}: truncated or corrupt mask ({_reason(exc)})") from None


def read_mask(path: str | os.PathLike, *, invert: bool = False,
              max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A mask file as bool H×W, True = valid (white = hole, or black with ``invert``).

    EXIF orientation is applied, as for images. Non-binary masks are thresholded at mid-grey.
    """
    path = Path(path)
    with _open_mask_oriented(path, max_pixels) as img:
        if img.mode in ("RGBA", "LA", "PA", "P"):
            img = img.convert("RGBA").convert("RGB")
        elif img.mode not in ("L", "1", "I;16", "I;16B", "I;16L", "I", "RGB"):
            img = img.convert("L")
        return hole_file_to_valid(np.asarray(img), invert=invert)


def parse_color(text: str) -> tuple[int, int, int]:
    """``'#ff00ff'``, ``'ff00ff'``, ``'#f0f'``, ``'magenta'`` or ``'rgb(255,0,255)'`` → RGB."""
    from PIL import ImageColor

    value = text.strip()
    if len(value) in (3, 6) and all(c in "0123456789abcdefABCDEF" for c in value):
        value = "#" + value
    try:
        rgb = ImageColor.getrgb(value)
    except ValueError:
        raise InputError(f"--mask-color {text!r}: not a colour; give it as #rrggbb "
                         "(e.g. #ff00ff) or a name (magenta)") from None
    return int(rgb[0]), int(rgb[1]), int(rgb[2])


_PAINT_ROWS = 512  # rows compared at a time: the distances of a 24 MP image are never held


def read_painted_mask(path: str | os.PathLike, color: tuple[int, int, int], *,
                      tolerance: float = 40.0, max_pixels: int | None = DEFAULT_MAX_PIXELS
                      ) -> np.ndarray:
    """A painted copy of an image as a mask, True = valid: the pixels whose 8-bit RGB
    distance to ``color`` is at most ``tolerance`` are the holes.

    EXIF orientation is applied, as for images. The tolerance takes in the colour drift of a
    lossy format (a JPEG moves a painted magenta by 10–30 and blurs its edges: grow the holes
    a pixel or two to take in the edge).
    """
    path = Path(path)
    with _open_mask_oriented(path, max_pixels) as img:
        if img.mode in ("I;16", "I;16B", "I;16L", "I"):
            img = Image.fromarray((np.asarray(img, dtype=np.float32) / 257.0).round()
                                  .clip(0, 255).astype(np.uint8))
        rgb = np.asarray(img.convert("RGB"))
    target = np.asarray(color, dtype=np.int32)
    limit = float(tolerance) ** 2
    valid = np.empty(rgb.shape[:2], dtype=bool)
    for top in range(0, rgb.shape[0], _PAINT_ROWS):
        rows = rgb[top:top + _PAINT_ROWS].astype(np.int32) - target
        valid[top:top + _PAINT_ROWS] = (rows * rows).sum(axis=2) > limit
    return valid


def alpha_mask(image: ImageFile, *, invert: bool = False) -> np.ndarray:
    """Holes where the image is transparent (alpha below half), True = valid."""
    alpha = image.alpha
    if alpha is None:
        raise InputError("no alpha channel to take the mask from")
    full = 65535 if alpha.dtype == np.uint16 else 255
    transparent = alpha.astype(np.float32) < full / 2
    return transparent if invert else ~transparent


def resize_mask(valid: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of a bool mask (holes stay binary, no new grey levels)."""
    rows = np.minimum((np.arange(height) + 0.5) * valid.shape[0] / height, valid.shape[0] - 1)
    cols = np.minimum((np.arange(width) + 0.5) * valid.shape[1] / width, valid.shape[1] - 1)
    return valid[rows.astype(np.intp)[:, None], cols.astype(np.intp)[None, :]]


def grow_holes(valid: np.ndarray, pixels: int) -> np.ndarray:
    """Holes grown by ``pixels``: every pixel within that Euclidean distance of a hole becomes
    one. Damage painted into a JPEG leaves a faint halo of its colour just outside a tight
    mask; growing the mask hands the halo to the inpainter too."""
    if pixels <= 0:
        return valid
    from scipy import ndimage

    offsets = np.arange(-pixels, pixels + 1)
    disc = offsets[:, None] ** 2 + offsets[None, :] ** 2 <= pixels * pixels
    return ~ndimage.binary_dilation(~valid, structure=disc)


# ---------------------------------------------------------------- native <-> model pixels


def _scale(dtype: np.dtype) -> float:
    return 65535.0 if dtype == np.uint16 else 255.0


def model_rgb(pixels: np.ndarray, mode: str) -> np.ndarray:
    """Native pixels (any region of an :class:`ImageFile`) → float32 RGB in [0, 1]."""
    if mode == "CMYK":
        rgb = Image.frombytes("CMYK", (pixels.shape[1], pixels.shape[0]),
                              np.ascontiguousarray(pixels).tobytes()).convert("RGB")
        return np.asarray(rgb, dtype=np.float32) / 255.0
    color = pixels[..., :1] if mode in ("L", "LA") else pixels[..., :3]
    rgb = color.astype(np.float32) / np.float32(_scale(pixels.dtype))
    return np.repeat(rgb, 3, axis=2) if rgb.shape[2] == 1 else rgb


def native_color(rgb: np.ndarray, mode: str, dtype: np.dtype) -> np.ndarray:
    """Float RGB in [0, 1] → the colour channels of ``mode`` in ``dtype`` (rounded)."""
    rgb = np.clip(rgb, 0.0, 1.0)
    if mode == "CMYK":
        rgb8 = np.rint(rgb * 255.0).astype(np.uint8)
        cmyk = Image.fromarray(rgb8).convert("CMYK")
        return np.asarray(cmyk)
    if mode in ("L", "LA"):
        rgb = (rgb @ LUMA_601)[..., None]
    return np.rint(rgb * _scale(dtype)).astype(dtype)


# ----------------------------------------------------------------------------- writing


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
            data = (_encode_png16(pixels, image) if format == "PNG"
                    else _encode_tiff16(pixels, image))
            tmp.write_bytes(data)
            return
        pil = _to_pillow(pixels, mode)
        pil.save(tmp, format=format, **_save_options(image, format, quality))


def _fit_to_format(pixels: np.ndarray, mode: str, fmt: str) -> tuple[np.ndarray, str]:
    if fmt in ("JPEG", "WEBP", "BMP") and pixels.dtype == np.uint16:
        pixels = np.rint(pixels / 257.0).astype(np.uint8)
    if mode == "CMYK" and fmt not in ("JPEG", "TIFF"):
        rgb = Image.frombytes("CMYK", (pixels.shape[1], pixels.shape[0]),
                              np.ascontiguousarray(pixels).tobytes()).convert("RGB")
        pixels, mode = np.asarray(rgb), "RGB"
    if mode in ("LA", "RGBA") and fmt in ("JPEG", "BMP"):
        pixels, mode = _flatten_on_white(pixels), mode[:-1]
    if mode == "LA" and fmt == "WEBP":
        pixels, mode = np.concatenate([np.repeat(pixels[..., :1], 3, 2), pixels[..., 1:]], 2), \
            "RGBA"
    return pixels, mode


def _flatten_on_white(pixels: np.ndarray) -> np.ndarray:
    full = _scale(pixels.dtype)
    alpha = pixels[..., -1:].astype(np.float32) / full
    color = pixels[..., :-1].astype(np.float32)
    return np.rint(color * alpha + full * (1 - alpha)).astype(pixels.dtype)


def _to_pillow(pixels: np.ndarray, mode: str) -> Image.Image:
    size = (pixels.shape[1], pixels.shape[0])
    # frombuffer shares the array's memory: a 24-megapixel image is not copied once more.
    if pixels.dtype == np.uint16:  # 16-bit grey (16-bit colour goes through _encode_*16)
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


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def _encode_png16(pixels: np.ndarray, image: ImageFile) -> bytes:
    """A 16-bit grey+alpha / RGB / RGBA PNG (Pillow cannot write these)."""
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
