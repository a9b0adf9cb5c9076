"""Image quality metrics of the paper's evaluation (§5), on images in [0, 1].

All three are computed on the composite (known pixels pasted back), against the truth:

- ℓ1 error in percent: mean absolute difference over every pixel and channel of the whole
  image, times 100 (the paper divides by the image, not by the hole).
- PSNR in dB with ``data_range`` 1: infinite for an exact reconstruction.
- SSIM as the original definition (Wang et al. 2004): scikit-image with
  :data:`SSIM_SETTINGS`, averaged over the channels.

Inside the holes (the pixels a method made; the paper's whole-image averages dilute thin holes
to nothing):

- hole ℓ1 (%): mean absolute difference over the hole pixels and channels only, times 100.
- hole PSNR (dB): from the mean squared error over the hole pixels only.

Hole widths (:func:`hole_width_groups`): each connected hole region (8-connected) gets one
width, 2·r − 1 px, where r is the largest Euclidean distance from a pixel of the region to the
nearest known pixel (pixel centre to pixel centre): a line 1 or 2 px wide measures 1, 3 or 4 px
measures 3, 5 or 6 px measures 5, and a disc 13 px across about 11. Regions are grouped into
:data:`WIDTH_GROUPS`: ≤ 2 px (estimate < 3), 3–6 px (3 ≤ estimate < 7) and wider.

LPIPS is opt-in (``evaluate --lpips``): it needs the ``lpips`` package (``pip install
'pconv[lpips]'``) and, in torchvision's cache, the ImageNet AlexNet weights its trunk uses.
Nothing is ever downloaded.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, InputError, WeightsUnavailableError, describe_exception

DATA_RANGE = 1.0
SSIM_SETTINGS: dict[str, Any] = {
    "gaussian_weights": True,
    "sigma": 1.5,
    "use_sample_covariance": False,
    "channel_axis": -1,
    "data_range": DATA_RANGE,
}
# scikit-image's window for a Gaussian of sigma 1.5 truncated at 3.5 sigma: 2·⌊3.5·1.5+0.5⌋+1.
SSIM_WINDOW = 11


def _pair(prediction: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(prediction, dtype=np.float64)
    true = np.asarray(truth, dtype=np.float64)
    if pred.shape != true.shape:
        raise InputError(f"prediction {pred.shape} and truth {true.shape} differ in shape")
    return pred, true


def l1_percent(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute error over the whole image (all pixels and channels), in percent."""
    pred, true = _pair(prediction, truth)
    return float(np.mean(np.abs(pred - true)) * 100.0)


def psnr(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB for ``data_range`` 1; ``inf`` when the images are equal."""
    pred, true = _pair(prediction, truth)
    mse = float(np.mean((pred - true) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(DATA_RANGE**2 / mse)


def ssim(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Structural similarity of two H×W×3 images with :data:`SSIM_SETTINGS`."""
    from skimage.metrics import structural_similarity

    pred, true = _pair(prediction, truth)
    if pred.ndim != 3:
        raise InputError(f"SSIM needs H×W×C images, got shape {pred.shape}")
    if min(pred.shape[:2]) < SSIM_WINDOW:
        raise InputError(
            f"image {pred.shape[1]}x{pred.shape[0]} is smaller than the {SSIM_WINDOW}×"
            f"{SSIM_WINDOW} SSIM window; evaluate at a larger --size"
        )
    return float(structural_similarity(pred, true, **SSIM_SETTINGS))


def image_scores(prediction: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """ℓ1 (%), PSNR and SSIM of one image."""
    return {
        "l1": l1_percent(prediction, truth),
        "psnr": psnr(prediction, truth),
        "ssim": ssim(prediction, truth),
    }


# --------------------------------------------------------------------------- inside the holes

HOLE_METRICS = ("hole_l1", "hole_psnr")
# (label, smallest measured width) of each width group, narrowest first; labels are ASCII so
# that they read the same in the terminal, CSV and JSON.
WIDTH_GROUPS = (("<=2px", 0.0), ("3-6px", 3.0), (">6px", 7.0))


def _hole_pair(prediction: np.ndarray, truth: np.ndarray,
               holes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, true = _pair(prediction, truth)
    holes = np.asarray(holes, dtype=bool)
    if holes.shape != pred.shape[:2]:
        raise InputError(f"hole mask {holes.shape} does not match the image {pred.shape[:2]}")
    if not holes.any():
        raise InputError("hole scores need at least one hole pixel; the mask has none")
    return pred[holes], true[holes]


def hole_l1_percent(prediction: np.ndarray, truth: np.ndarray, holes: np.ndarray) -> float:
    """Mean absolute error over the hole pixels (True in ``holes``) and channels, in percent."""
    pred, true = _hole_pair(prediction, truth, holes)
    return float(np.mean(np.abs(pred - true)) * 100.0)


def hole_psnr(prediction: np.ndarray, truth: np.ndarray, holes: np.ndarray) -> float:
    """PSNR in dB over the hole pixels only; ``inf`` when they are all exact."""
    pred, true = _hole_pair(prediction, truth, holes)
    mse = float(np.mean((pred - true) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(DATA_RANGE**2 / mse)


def hole_scores(prediction: np.ndarray, truth: np.ndarray,
                holes: np.ndarray) -> dict[str, float]:
    """Hole ℓ1 (%) and hole PSNR of one image; ``holes`` is True at the hole pixels."""
    return {"hole_l1": hole_l1_percent(prediction, truth, holes),
            "hole_psnr": hole_psnr(prediction, truth, holes)}


def hole_region_widths(valid: np.ndarray, percentile: float = 100.0
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Each hole pixel's region label (0 = known pixel) and each region's width in px.

    ``widths[k - 1]`` is the width of region ``k``: 2·r − 1, with r the largest distance from a
    pixel of the region to the nearest known pixel (see the module docstring); with
    ``percentile`` below 100, that percentile of the distances instead (routing uses it so
    that the few pixels where thin scratches cross do not make a whole network wide).
    """
    from scipy import ndimage

    holes = ~np.asarray(valid, dtype=bool)
    labels, count = ndimage.label(holes, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return labels, np.zeros(0, dtype=np.float64)
    # A hole with no known pixel at all has no width to measure: it counts as the widest.
    if holes.all():
        return labels, np.full(count, math.inf)
    # Region by region, each on its bounding box grown by a pixel (a region's 8-neighbours
    # are all known, so its nearest known pixel is within that box): on a scan with scattered
    # thin damage this touches a few per cent of the pixels instead of all of them.
    height, width = holes.shape
    radius = np.empty(count, dtype=np.float64)
    for index, (rows, cols) in enumerate(ndimage.find_objects(labels)):
        rows = slice(max(rows.start - 1, 0), min(rows.stop + 1, height))
        cols = slice(max(cols.start - 1, 0), min(cols.stop + 1, width))
        region = labels[rows, cols] == index + 1
        distance = ndimage.distance_transform_edt(region)
        radius[index] = (distance.max() if percentile >= 100.0
                         else np.percentile(distance[region], percentile))
    return labels, 2.0 * radius - 1.0


def hole_width_groups(valid: np.ndarray) -> np.ndarray:
    """An int8 map: -1 at known pixels, else the index in :data:`WIDTH_GROUPS` of the width
    of the hole region the pixel belongs to."""
    labels, widths = hole_region_widths(valid)
    lower = np.array([low for _, low in WIDTH_GROUPS])
    region_group = np.searchsorted(lower, widths, side="right") - 1
    lookup = np.concatenate([[-1], region_group]).astype(np.int8)
    return lookup[labels]


# --------------------------------------------------------------------------- LPIPS

LPIPS_NET = "alex"  # the trunk the LPIPS authors recommend as a metric


class LpipsScorer:
    """LPIPS (Zhang et al. 2018, v0.1, AlexNet trunk) on batches of [0, 1] images."""

    def __init__(self, model: Any, device: Any) -> None:
        self.model = model
        self.device = device
        self.description = f"lpips v0.1 {LPIPS_NET}"

    def __call__(self, predictions: np.ndarray, truths: np.ndarray) -> list[float]:
        import torch

        pred = torch.from_numpy(np.ascontiguousarray(predictions, dtype=np.float32))
        true = torch.from_numpy(np.ascontiguousarray(truths, dtype=np.float32))
        pred = pred.permute(0, 3, 1, 2).to(self.device)
        true = true.permute(0, 3, 1, 2).to(self.device)
        with torch.inference_mode():
            values = self.model(pred, true, normalize=True)  # normalize: inputs in [0, 1]
        return [float(v) for v in values.flatten().cpu()]


def alexnet_weights_path() -> Path:
    """Where torchvision keeps the ImageNet AlexNet weights once they have been downloaded."""
    import torch
    from torchvision.models import AlexNet_Weights

    name = os.path.basename(AlexNet_Weights.IMAGENET1K_V1.url)
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def load_lpips(device: Any = "auto") -> LpipsScorer:
    """An LPIPS scorer from local files only.

    Raises :class:`ConfigError` without the ``lpips`` package and
    :class:`WeightsUnavailableError` when its weights are not on this machine or do not load.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import lpips
    except ImportError:
        raise ConfigError("--lpips needs the lpips package, which is not installed: "
                          "pip install 'pconv[lpips]'") from None
    linear = Path(lpips.__file__).parent / "weights" / "v0.1" / f"{LPIPS_NET}.pth"
    trunk = alexnet_weights_path()
    if not linear.is_file():
        raise WeightsUnavailableError(
            f"--lpips: the lpips package has no linear weights ({linear}); reinstall lpips")
    if not trunk.is_file():
        raise WeightsUnavailableError(
            f"--lpips: the ImageNet AlexNet weights are not on this machine (expected at "
            f"{trunk}); pconv never downloads them")

    import torch

    from .devices import resolve_device

    device = resolve_device(device) if isinstance(device, str) else device

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # A random trunk is built first so that lpips never reaches for the network; the
            # ImageNet weights are then copied in from torchvision's cache.
            model = lpips.LPIPS(net=LPIPS_NET, version="0.1", pnet_rand=True, verbose=False)
        state = torch.load(trunk, map_location="cpu", weights_only=True)
        with torch.no_grad():
            for name, param in model.net.named_parameters():
                _slice, index, kind = name.split(".")
                param.copy_(state[f"features.{index}.{kind}"])
    except Exception as exc:  # noqa: BLE001 - a damaged file fails torch.load in many ways
        raise WeightsUnavailableError(
            f"--lpips: its weights could not be loaded ({describe_exception(exc, limit=200)})"
        ) from None
    return LpipsScorer(model.to(device).eval(), device)
