"""Classical inpainting methods, as inpainters with the interface of ``inference.TorchInpainter``.

``inpaint(images, valid) -> composite``: images N×H×W×3 float32 in [0, 1], library masks
N×H×W bool (True = valid); known pixels of the result are the input's own, exactly.

- ``telea``: Telea 2004, fast marching (OpenCV ``INPAINT_TELEA``).
- ``ns``: Bertalmío et al. 2001, Navier–Stokes (OpenCV ``INPAINT_NS``).
- ``biharmonic``: biharmonic equation (scikit-image ``inpaint_biharmonic``).
- ``mean``: every hole pixel gets the mean colour of the image's known pixels.

OpenCV is optional (``pip install 'pconv[classical]'``). This module imports neither torch nor
OpenCV at import time, so process-pool workers that only run these methods start quickly.
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError
from .imaging import to_uint8

CLASSICAL_METHODS = ("telea", "ns", "biharmonic", "mean")
OPENCV_RADIUS = 3  # pixels around a hole pixel that OpenCV's methods draw on (its docs' value)
EMPTY_FILL = 0.5  # colour of an image with no known pixel at all: nothing to draw on
OPENCV_INSTALL = "install opencv-python-headless (pip install 'pconv[classical]')"


def _import_cv2():
    try:
        import cv2
    except ImportError:
        return None
    return cv2


def limit_threads() -> None:
    """One compute thread per process: a pool of workers already uses every core."""
    cv2 = _import_cv2()
    if cv2 is not None:
        cv2.setNumThreads(1)


class ClassicalInpainter:
    """Base class: per-image work, no learned weights, no size constraint."""

    name = "classical"
    multiple = 1
    batched = False  # one image at a time: run in a process pool, not in batches
    backend = "numpy cpu"

    def inpaint(self, images: np.ndarray, valid: np.ndarray) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        valid = np.asarray(valid, dtype=bool)
        if images.ndim != 4 or valid.shape != images.shape[:3]:
            raise ConfigError(
                f"inpaint needs N×H×W×C images and N×H×W masks, got {images.shape} and "
                f"{valid.shape}"
            )
        out = np.empty_like(images)
        for i, (image, known) in enumerate(zip(images, valid, strict=True)):
            if known.all():
                out[i] = image
            elif not known.any():
                out[i] = EMPTY_FILL
            else:
                filled = np.clip(self._fill(image, known), 0.0, 1.0)
                out[i] = np.where(known[..., None], image, filled)
        return out

    def _fill(self, image: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """H×W×C prediction for one image; only its hole pixels are used."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class OpenCVInpainter(ClassicalInpainter):
    """Telea's fast marching or Navier–Stokes inpainting, from OpenCV."""

    def __init__(self, method: str = "telea", radius: int = OPENCV_RADIUS) -> None:
        cv2 = _import_cv2()
        if cv2 is None:
            raise ConfigError(f"method {method!r} needs OpenCV: {OPENCV_INSTALL}")
        flags = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
        if method not in flags:
            raise ConfigError(f"OpenCV method {method!r}: choose telea or ns")
        self.name = method
        self.radius = radius
        self._flag = flags[method]
        self.backend = f"opencv {cv2.__version__} cpu"

    def _fill(self, image: np.ndarray, valid: np.ndarray) -> np.ndarray:
        import cv2

        # OpenCV inpaints 8-bit colour images only; the known pixels are pasted back from the
        # float input afterwards, so only the hole is quantised.
        holes = np.where(valid, 0, 255).astype(np.uint8)
        filled = cv2.inpaint(to_uint8(image), holes, self.radius, self._flag)
        return filled.astype(np.float32) / 255.0


class BiharmonicInpainter(ClassicalInpainter):
    """Smooth fill solving the biharmonic equation in the holes (scikit-image)."""

    name = "biharmonic"

    def __init__(self) -> None:
        import skimage

        self.backend = f"scikit-image {skimage.__version__} cpu"

    def _fill(self, image: np.ndarray, valid: np.ndarray) -> np.ndarray:
        from skimage.restoration import inpaint_biharmonic

        return inpaint_biharmonic(image.astype(np.float64), ~valid, channel_axis=-1)


class MeanFillInpainter(ClassicalInpainter):
    """The trivial baseline: holes take the per-channel mean of the known pixels."""

    name = "mean"

    def _fill(self, image: np.ndarray, valid: np.ndarray) -> np.ndarray:
        mean = image[valid].mean(axis=0)
        return np.broadcast_to(mean, image.shape)


def classical_inpainter(name: str) -> ClassicalInpainter:
    """The classical method called ``name`` (one of :data:`CLASSICAL_METHODS`)."""
    if name in ("telea", "ns"):
        return OpenCVInpainter(name)
    if name == "biharmonic":
        return BiharmonicInpainter()
    if name == "mean":
        return MeanFillInpainter()
    raise ConfigError(
        f"unknown classical method {name!r}; choose from {', '.join(CLASSICAL_METHODS)}"
    )
