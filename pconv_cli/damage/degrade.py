"""Changes to a whole image that are not holes: what a photo is, and how its scan aged.

Image kinds turn the clean photo into what was damaged (a black-and-white print, a sepia
print, a grainy film scan) before any damage is laid on. Degradations come after the damage
(fading, yellowing, grain, noise, blur, JPEG) and touch every pixel: a detector must learn to
ignore them, so they are never marked as holes. All take and return float32 H×W×3 in [0, 1].
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy import ndimage

from ..imaging import LUMA_601


def luma(image: np.ndarray) -> np.ndarray:
    return image @ LUMA_601


def _rgb(values) -> np.ndarray:
    # float32 constants: a float64 one would turn every full-image operation into float64
    return np.asarray(values, dtype=np.float32)


def _tone_curve(y: np.ndarray, contrast: float) -> np.ndarray:
    """A gentle S-curve about mid-grey (``contrast`` 0 leaves ``y`` as it is)."""
    return np.clip(y + contrast * y * (1 - y) * (2 * y - 1) * 2, 0, 1)


def _from_grey(grey: np.ndarray, dark: np.ndarray, light: np.ndarray) -> np.ndarray:
    return (dark + grey[..., None] * (light - dark)).astype(np.float32)


def bw_print(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A black-and-white print: luma, a print's S-curve, a slightly warm or cool paper."""
    grey = _tone_curve(luma(image), rng.uniform(0.0, 0.6))
    paper = _rgb(np.clip(rng.uniform(0.92, 1.0) + np.array([1, 0, -1]) * rng.normal(0, 0.01),
                         0, 1))
    black = _rgb(np.full(3, rng.uniform(0.02, 0.08)))
    return _from_grey(grey, black, paper)


def sepia_print(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A sepia-toned print: the greys of a print mapped from dark brown to cream."""
    grey = _tone_curve(luma(image), rng.uniform(0.0, 0.5)) ** rng.uniform(0.85, 1.15)
    dark = _rgb(np.array([0.16, 0.09, 0.05]) * rng.uniform(0.6, 1.4))
    light = _rgb(np.array([0.98, 0.93, 0.80]) * rng.uniform(0.93, 1.02))
    return np.clip(_from_grey(grey, dark, light), 0, 1)


def _noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Zero-mean, unit-variance noise: the sum of three uniforms (Irwin-Hall), which differs
    from a Gaussian by less than an 8-bit level at these strengths and is drawn several times
    faster than numpy's normal variates."""
    total = rng.random(shape, dtype=np.float32)
    total += rng.random(shape, dtype=np.float32)
    total += rng.random(shape, dtype=np.float32)
    total -= 1.5
    total *= 2.0  # variance of a sum of three uniforms is 1/4
    return total


def film_grain(image: np.ndarray, rng: np.random.Generator,
               strength: float | None = None) -> np.ndarray:
    """Clumped grain, strongest in the mid-tones, mostly in brightness with a little colour."""
    h, w = image.shape[:2]
    strength = rng.uniform(0.008, 0.03) if strength is None else strength
    clump = rng.uniform(0.5, 1.1)
    grain = ndimage.gaussian_filter(_noise(rng, (h, w)), clump)
    grain /= max(float(grain.std()), 1e-6)
    colour = _noise(rng, (h, w, 3))
    colour *= 0.3
    colour += grain[..., None]
    y = luma(image)
    weight = (strength * (0.3 + 2.8 * y * (1 - y)))[..., None]
    colour *= weight
    colour += image
    return np.clip(colour, 0, 1, out=colour)


def film_scan(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A colour film scan: grain, slightly lower saturation, a faint colour cast."""
    y = luma(image)[..., None]
    saturation = rng.uniform(0.75, 1.0)
    cast = _rgb(1 + rng.normal(0, 0.02, 3))
    scanned = np.clip((y + saturation * (image - y)) * cast, 0, 1).astype(np.float32)
    return film_grain(scanned, rng)


IMAGE_KINDS = {
    "colour": lambda image, rng: image,
    "bw_print": bw_print,
    "sepia_print": sepia_print,
    "film_scan": film_scan,
}


# --------------------------------------------------------------------------- degradations


def fade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Faded dyes: lifted blacks, dimmer whites, washed-out colour."""
    black, white = rng.uniform(0.04, 0.25), rng.uniform(0.82, 0.98)
    y = luma(image)[..., None]
    washed = image - y
    washed *= rng.uniform(0.4, 0.95)
    washed += y
    washed *= white - black
    washed += black
    return np.clip(washed, 0, 1, out=washed)


def yellow(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Yellowed paper and varnish: blue falls most, then green."""
    amount = rng.uniform(0.05, 0.3)
    tint = _rgb([1.0, 1 - amount * 0.35, 1 - amount])
    lift = _rgb([amount * 0.05, amount * 0.03, 0])
    return np.clip(image * tint + lift, 0, 1)


def gaussian_noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    sigma = rng.uniform(0.004, 0.03)
    noise = _noise(rng, image.shape)
    noise *= sigma
    noise += image
    return np.clip(noise, 0, 1, out=noise)


def blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A soft scan: Gaussian blur across the image (not across channels)."""
    sigma = rng.uniform(0.4, 1.4)
    return ndimage.gaussian_filter(image, (sigma, sigma, 0)).astype(np.float32)


def jpeg(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A JPEG round trip at quality 35–95 (8-bit), 4:2:0 chroma as cameras and scanners use."""
    quality = int(rng.integers(35, 96))
    pixels = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality, subsampling=2)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"), dtype=np.float32) / 255


def grain(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return film_grain(image, rng)


# In the order they are applied: how a print ages, then how it is scanned and saved.
DEGRADATIONS = {
    "fading": fade,
    "yellowing": yellow,
    "grain": grain,
    "noise": gaussian_noise,
    "blur": blur,
    "jpeg": jpeg,
}
