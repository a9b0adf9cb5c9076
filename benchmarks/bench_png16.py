"""pconv's own 16-bit colour PNG writer against pypng, the maintained pure-Python one.

Pillow cannot write 16-bit colour PNG and OpenCV is only an optional extra, so restore writes
the chunks itself (``pconv_cli.imaging.write.encode_png16``: the "Up" filter on every row,
zlib level 6). pypng would be the library to take instead; it writes rows unfiltered. Both
encode the same 3000×2000 16-bit RGB photograph (scikit-image's astronaut, enlarged, with a
little seeded noise in the low bits as a scan has) to memory at the same zlib level; the
ratios are pypng / ours, for time and for bytes. Both files are decoded back and checked
against the pixels. pypng is not a dependency of pconv: without it the benchmark says so.

    python benchmarks/bench_png16.py [--rounds 5]
"""

from __future__ import annotations

import io
import zlib

import numpy as np
from common import describe_machine, interleaved, parse_options, print_ratio, print_times, ratio
from PIL import Image
from skimage import data

from pconv_cli.imaging import ImageFile
from pconv_cli.imaging.write import encode_png16

WIDTH, HEIGHT = 3000, 2000
ZLIB_LEVEL = 6  # encode_png16's level; pypng is given the same


def photo16() -> np.ndarray:
    """H×W×3 uint16: an enlarged photograph with seeded noise of a few 16-bit levels."""
    channels = [Image.fromarray(data.astronaut()[..., c].astype(np.float32) * 257.0, mode="F")
                .resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC) for c in range(3)]
    rgb = np.stack([np.asarray(c) for c in channels], axis=-1)
    noise = np.random.default_rng(0).normal(0.0, 40.0, rgb.shape)
    return np.clip(np.rint(rgb + noise), 0, 65535).astype(np.uint16)


def ours(pixels: np.ndarray) -> bytes:
    return encode_png16(pixels, ImageFile(pixels=pixels, mode="RGB", format="PNG"))


def pypng(png, pixels: np.ndarray) -> bytes:  # noqa: ANN001 - the optional module
    out = io.BytesIO()
    writer = png.Writer(WIDTH, HEIGHT, bitdepth=16, greyscale=False, compression=ZLIB_LEVEL)
    writer.write(out, pixels.reshape(HEIGHT, -1))
    return out.getvalue()


def decoded(encoded: bytes, channels: int = 3) -> np.ndarray:
    """Pixels of a 16-bit PNG, unfiltered here (filter types 0 and 2 only: what both write)."""
    pos, idat = 8, b""
    while pos < len(encoded):
        length = int.from_bytes(encoded[pos:pos + 4], "big")
        if encoded[pos + 4:pos + 8] == b"IDAT":
            idat += encoded[pos + 8:pos + 8 + length]
        pos += 12 + length
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(HEIGHT, -1)
    filters, raw = rows[:, 0], rows[:, 1:].copy()
    if not set(np.unique(filters)) <= {0, 2}:
        raise SystemExit(f"unexpected PNG row filters {sorted(set(filters))}")
    for y in np.nonzero(filters == 2)[0]:
        if y:
            raw[y] += raw[y - 1]
    return raw.view(">u2").reshape(HEIGHT, WIDTH, channels).astype(np.uint16)


def main() -> None:
    options = parse_options(__doc__.splitlines()[0], rounds=5, warmup=1)
    print(f"{__doc__.splitlines()[0]}\n{describe_machine(options)}")
    try:
        import png
    except ImportError:
        print("pypng is not installed (pip install pypng): nothing to compare against")
        return
    pixels = photo16()
    sizes = {"ours (Up filter)": len(ours(pixels)), "pypng (no filter)": len(pypng(png, pixels))}
    for name, encode in (("ours", ours), ("pypng", lambda p: pypng(png, p))):
        if not np.array_equal(decoded(encode(pixels)), pixels):
            raise SystemExit(f"{name}: the PNG does not decode to the pixels written")
    cases = {"ours (Up filter)": lambda: ours(pixels),
             "pypng (no filter)": lambda: pypng(png, pixels)}
    timings = interleaved(cases, options.rounds, options.warmup)
    print_times(f"{WIDTH}×{HEIGHT} 16-bit RGB, zlib level {ZLIB_LEVEL}, to memory", timings)
    print_ratio("pypng vs ours, time", ratio(timings, "pypng (no filter)", "ours (Up filter)"))
    for name, size in sizes.items():
        print(f"  {name}: {size / 1e6:.1f} MB")
    print(f"  pypng vs ours, bytes: {sizes['pypng (no filter)'] / sizes['ours (Up filter)']:.2f}×")


if __name__ == "__main__":
    main()
