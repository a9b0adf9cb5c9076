"""Running the damage detector on whole images: tiles at native resolution, then a hole mask.

Thin damage (a 1–2 px hair on a 24 MP scan) disappears when an image is shrunk, so the
detector always runs at the image's own resolution, in overlapping tiles that bound memory by
the tile size. Each tile's window reaches ``margin`` pixels beyond the part of the output it
is kept for; with the margin at least the network's receptive radius and every window aligned
to the network's grid, the tiles give the same probabilities as one pass over the whole image.

Masks returned here are True = damage (hole); the inpainting side wants 1 = valid
(``~mask``), and mask files are written white = hole (``imaging.save_mask``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from .core.detector import DamageDetector
from .errors import ConfigError, InputError

DEFAULT_TILE = 768  # 24 MP peaks at 1.35 GB RSS with it, 1.78 GB with 1024 (bench_detect)


def tile_margin(model: DamageDetector) -> int:
    """Context each tile reads beyond its kept part: the receptive radius, grid-aligned."""
    m = model.config.multiple
    return math.ceil(model.config.receptive_radius() / m) * m


def _as_float_tensor(pixels: np.ndarray) -> torch.Tensor:
    """H×W×3 uint8 / uint16 / float in [0, 1] → 1×3×H×W float32."""
    if pixels.dtype == np.uint8:
        scaled = pixels.astype(np.float32) / 255.0
    elif pixels.dtype == np.uint16:
        scaled = pixels.astype(np.float32) / 65535.0
    else:
        scaled = pixels.astype(np.float32, copy=False)
    return torch.from_numpy(np.ascontiguousarray(scaled)).permute(2, 0, 1).unsqueeze(0)


PRECISIONS = ("auto", "fp32", "bf16")


def resolve_precision(precision: str, device: torch.device) -> str:
    """``fp32`` or ``bf16`` for ``precision`` on ``device``: ``auto`` is bf16 where the device
    computes it natively (a CUDA GPU that supports it; a CPU with AVX-512 BF16 or AMX, where
    it is about twice as fast as fp32 and the detector was trained in it), fp32 elsewhere (an
    emulated bf16 is slower than fp32)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision {precision}: choose {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        # Private probes of torch's CPU capabilities: where a torch lacks them, fp32.
        probes = [getattr(torch.cpu, name, None)
                  for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        return "bf16" if any(probe is not None and probe() for probe in probes) else "fp32"
    return "fp32"


@torch.inference_mode()
def _probabilities_of_window(model: DamageDetector, window: np.ndarray,
                             device: torch.device, precision: str = "fp32") -> np.ndarray:
    m = model.config.multiple
    x = _as_float_tensor(window).to(device)
    h, w = x.shape[-2:]
    # Bottom/right padding to the grid. Replicate works at any size (reflect needs the pad to
    # be smaller than the image) and is the same for a window that ends at the image's edge
    # as for the whole image, so tiles and a single pass agree there too.
    x = F.pad(x, (0, (-w) % m, 0, (-h) % m), mode="replicate")
    # channels_last: about 2.5x faster on CPU for these narrow full-resolution layers.
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        logits = model(x.contiguous(memory_format=torch.channels_last))[..., :h, :w]
    return torch.sigmoid(logits.float())[0, 0].cpu().numpy()


def _starts(length: int, step: int) -> list[int]:
    return list(range(0, length, step))


def detect_probabilities(model: DamageDetector, image: np.ndarray, *, tile: int = DEFAULT_TILE,
                         device: str | torch.device = "cpu") -> np.ndarray:
    """Damage probability per pixel (H×W float32 in [0, 1]) of an H×W×3 image.

    ``image``: uint8, uint16 or float in [0, 1] (grey images as H×W are taken as well).
    ``tile``: side of the part of the output each pass keeps (rounded up to the network's
    grid); each pass reads :func:`tile_margin` more on every side. Memory grows with the tile,
    not with the image.
    """
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise InputError(f"expected an H×W×3 image, got an array of shape {image.shape}")
    device = torch.device(device)
    model = model.eval().to(device, memory_format=torch.channels_last)

    def window_rgb(window: np.ndarray) -> np.ndarray:
        return np.repeat(window, 3, axis=2) if window.shape[2] == 1 else window[..., :3]

    return tiled_probabilities(
        lambda window: _probabilities_of_window(model, window, device), image,
        tile=tile, multiple=model.config.multiple, margin=tile_margin(model), to_rgb=window_rgb)


def tiled_probabilities(run: Callable[[np.ndarray], np.ndarray], image: np.ndarray, *,
                        tile: int, multiple: int, margin: int,
                        to_rgb: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """The tiling of :func:`detect_probabilities` around any runner of one window.

    ``run(window) -> h×w probabilities`` takes one window (padding it to the grid itself);
    ``to_rgb`` turns a window of ``image`` (any H×W×C array: native pixels) into what ``run``
    takes, so that a large image is converted a window at a time, never whole.
    """
    if tile < 1:
        raise ConfigError(f"tile {tile}: must be at least 1 pixel")
    step = math.ceil(tile / multiple) * multiple
    height, width = image.shape[:2]
    out = np.empty((height, width), dtype=np.float32)
    for y0 in _starts(height, step):
        y1 = min(y0 + step, height)
        wy0, wy1 = max(0, y0 - margin), min(height, y1 + margin)
        for x0 in _starts(width, step):
            x1 = min(x0 + step, width)
            wx0, wx1 = max(0, x0 - margin), min(width, x1 + margin)
            window = image[wy0:wy1, wx0:wx1]
            prob = run(to_rgb(window) if to_rgb is not None else window)
            out[y0:y1, x0:x1] = prob[y0 - wy0:y1 - wy0, x0 - wx0:x1 - wx0]
    return out


@dataclass(frozen=True)
class DamageRegions:
    """A detected hole mask (True = damage) and what a report says about it."""

    mask: np.ndarray
    regions: int

    @property
    def fraction(self) -> float:
        return float(self.mask.mean()) if self.mask.size else 0.0


def disk(radius: int) -> np.ndarray:
    """Boolean disk of the given radius (Euclidean, centre included)."""
    r = np.arange(-radius, radius + 1)
    return (r[:, None] ** 2 + r[None, :] ** 2) <= radius * radius


def damage_mask(probabilities: np.ndarray, *, threshold: float = 0.5, min_area: int = 0,
                grow: int = 0) -> DamageRegions:
    """Threshold the probabilities, drop regions under ``min_area`` pixels, grow by ``grow``.

    Regions are 8-connected (a diagonal hair is one region). Growing takes in the soft halo
    that damage leaves around it (and JPEG ringing), which the fill should replace too; it is
    applied last, so ``min_area`` counts the pixels the detector itself marked.
    """
    if not 0.0 < threshold < 1.0:
        raise ConfigError(f"threshold {threshold}: must be between 0 and 1 (exclusive)")
    if min_area < 0 or grow < 0:
        raise ConfigError("min_area and grow must not be negative")
    mask = probabilities > threshold
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if min_area > 1 and count:
        sizes = np.bincount(labels.ravel())
        keep = sizes >= min_area
        keep[0] = False
        mask = keep[labels]
        count = int(keep.sum())
    if grow:
        # Distance to the nearest marked pixel <= grow: dilation by an exact Euclidean disk.
        mask = ndimage.distance_transform_edt(~mask) <= grow if mask.any() else mask
        count = ndimage.label(mask, structure=np.ones((3, 3), bool))[1]
    return DamageRegions(mask=mask, regions=int(count))
