"""Classical inpainting methods, as inpainters with the interface of ``inference.TorchInpainter``.

``inpaint(images, valid) -> composite``: images N×H×W×3 float32 in [0, 1], library masks
N×H×W bool (True = valid); known pixels of the result are the input's own, exactly.

- ``telea``: Telea 2004, fast marching (OpenCV ``INPAINT_TELEA``).
- ``ns``: Bertalmío et al. 2001, Navier–Stokes (OpenCV ``INPAINT_NS``).
- ``fsr``: Frequency Selective Reconstruction, Seiler et al. 2015 / Genser et al. 2018
  (OpenCV contrib ``xphoto.inpaint``, ``INPAINT_FSR_FAST``); ``fsr-best`` is its slower
  ``INPAINT_FSR_BEST`` profile.
- ``biharmonic``: biharmonic equation (scikit-image ``inpaint_biharmonic``).
- ``mean``: every hole pixel gets the mean colour of the image's known pixels.

OpenCV is optional (``pip install 'pconv[classical]'``, which installs OpenCV with its contrib
modules: FSR lives in ``cv2.xphoto``). This module imports neither torch nor
OpenCV at import time, so process-pool workers that only run these methods start quickly.
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError
from .imaging import to_uint8
from .inpainter import BUILT_IN

CLASSICAL_METHODS = ("telea", "ns", "fsr", "fsr-best", "biharmonic", "mean")
FSR_METHODS = ("fsr", "fsr-best")
OPENCV_RADIUS = 3  # pixels around a hole pixel that OpenCV's methods draw on (its docs' value)
EMPTY_FILL = 0.5  # colour of an image with no known pixel at all: nothing to draw on
OPENCV_INSTALL = "install opencv-contrib-python-headless (pip install 'pconv[classical]')"
XPHOTO_MISSING = (
    "this OpenCV has no contrib modules (cv2.xphoto): replace it with "
    "opencv-contrib-python-headless (pip uninstall opencv-python-headless, then "
    "pip install 'pconv[classical]'); two OpenCV packages must never be installed together"
)


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
    fixed_size = None
    flips = 1
    blend = None
    # How far (px) from its hole pixels a method reads the image: a crop of the hole grown by
    # this much gives the fill the whole image gives. None: it reads the whole image.
    reach: int | None = None
    backend = "numpy cpu"
    source = BUILT_IN

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
        # Fast marching draws each pixel from the filled and known pixels within the radius,
        # and its gradient estimate one pixel beyond (tests/test_routing.py pins it: one
        # pixel less changes the fill).
        self.reach = radius + 1
        self._flag = flags[method]
        self.backend = f"opencv {cv2.__version__} cpu"

    def _fill(self, image: np.ndarray, valid: np.ndarray) -> np.ndarray:
        import cv2

        # OpenCV inpaints 8-bit colour images only; the known pixels are pasted back from the
        # float input afterwards, so only the hole is quantised.
        holes = np.where(valid, 0, 255).astype(np.uint8)
        filled = cv2.inpaint(to_uint8(image), holes, self.radius, self._flag)
        return filled.astype(np.float32) / 255.0


class FSRInpainter(ClassicalInpainter):
    """Frequency Selective Reconstruction (OpenCV contrib's ``xphoto.inpaint``).

    Each block around a hole is modelled as a sparse sum of DCT basis functions fitted to its
    known pixels, so textures and edges carry across thin holes where diffusion (telea, ns)
    blurs them. ``fsr`` is the FAST profile, ``fsr-best`` the BEST one (about 12 times slower).
    """

    def __init__(self, method: str = "fsr") -> None:
        cv2 = _import_cv2()
        if cv2 is None:
            raise ConfigError(f"method {method!r} needs OpenCV: {OPENCV_INSTALL}")
        xphoto = getattr(cv2, "xphoto", None)
        if xphoto is None:
            raise ConfigError(f"method {method!r}: {XPHOTO_MISSING}")
        flags = {"fsr": xphoto.INPAINT_FSR_FAST, "fsr-best": xphoto.INPAINT_FSR_BEST}
        if method not in flags:
            raise ConfigError(f"FSR method {method!r}: choose {' or '.join(FSR_METHODS)}")
        self.name = method
        self._flag = flags[method]
        # Blocks of 16 px fitted in windows of 32, on a grid that starts at the image's corner:
        # a crop moves the grid, so this is the context that keeps the fill's quality, not an
        # exact equality with the whole image's fill.
        self.reach = 48
        self.backend = f"opencv-contrib {cv2.__version__} cpu"

    def _fill(self, image: np.ndarray, valid: np.ndarray) -> np.ndarray:
        import cv2

        # 8-bit input: the Python binding leaves a float destination unwritten. Only the hole
        # is quantised; the known pixels are pasted back from the float input afterwards.
        source = to_uint8(image)
        known = np.where(valid, 255, 0).astype(np.uint8)  # FSR: non-zero = valid
        # One channel at a time: given three, FSR goes through YCrCb and back in 8 bits, which
        # wraps around on busy content (grey noise came back as pure green). A grey image is
        # filled once, so that it stays grey and costs a third.
        grey = all(np.array_equal(source[..., 0], source[..., c])
                   for c in range(1, source.shape[2]))
        channels = [0] if grey else range(source.shape[2])
        filled = []
        for c in channels:
            plane = np.ascontiguousarray(source[..., c])
            out = np.zeros_like(plane)
            cv2.xphoto.inpaint(plane, known, out, self._flag)
            filled.append(out)
        if grey:
            filled *= source.shape[2]
        return np.stack(filled, axis=-1).astype(np.float32) / 255.0


class BiharmonicInpainter(ClassicalInpainter):
    """Smooth fill solving the biharmonic equation in the holes: scikit-image's
    ``inpaint_biharmonic``, computed in one sparse solve (:mod:`pconv_cli.biharmonic`)."""

    name = "biharmonic"
    # The biharmonic stencil spans 2 px: a region's system reads its 2-px rim, and holes
    # farther apart are independent systems.
    reach = 2

    def __init__(self) -> None:
        import scipy

        self.backend = f"pconv biharmonic, scipy {scipy.__version__} cpu"

    def _fill(self, image: np.ndarray, valid: np.ndarray) -> np.ndarray:
        from .biharmonic import biharmonic_fill

        filled = image.astype(np.float32, copy=True)
        filled[~valid] = biharmonic_fill(image, valid)
        return filled


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
    if name in FSR_METHODS:
        return FSRInpainter(name)
    if name == "biharmonic":
        return BiharmonicInpainter()
    if name == "mean":
        return MeanFillInpainter()
    raise ConfigError(
        f"unknown classical method {name!r}; choose from {', '.join(CLASSICAL_METHODS)}"
    )
