"""Filling each hole region with the method that suits its width: ``--method auto``.

The bundled model was trained on the paper's strokes (9–40 px wide) and is ahead of every
classical method there, but behind them inside thin holes (hairs, scratches, cracks, dust:
docs/evaluation.md, "Thin damage at native resolution"). :class:`RoutedInpainter` measures
each connected hole region (8-connected) nearly as evaluate's width groups do
(:func:`metrics.hole_region_widths`: 2·r − 1 px, r the 95th percentile of the region's
distances to a known pixel where evaluate takes the largest) and fills the regions up to
``thin_width`` px with a classical method, the wider ones with the model.

Order: the thin regions first, then the model with the thin ones already filled (it sees them
as known pixels: more context next to its holes). The classical method is given the wide holes
near a thin region as holes too, so that it never draws on their unknown pixels (its fill of
them is discarded), and those beyond its ``reach`` (how far from a hole it reads the image) as
known, so that it does not spend its time on them. restore fills each thin region in a crop
grown by that reach. The model part keeps its flip ensemble, seam blend and grey fills; they
apply to the wide regions only. A region with no known pixel at all has no width: it goes to
the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .classical import CLASSICAL_METHODS, ClassicalInpainter, classical_inpainter
from .errors import ConfigError
from .metrics import hole_region_widths

if TYPE_CHECKING:  # torch comes with the model, when one is loaded: the CLI reads the constants
    from .inference import Inpainter

AUTO = "auto"
MODEL = "pconv"
# Regions whose measured width is at most this (px) get the classical fill by default: the
# widest threshold measured that is still level with or ahead of the bundled model alone in
# every paper band (16 px fell behind), and the best of 2, 6 and 10 px on eval-sets/thin
# (docs/restore.md, "Which method fills a hole").
DEFAULT_THIN_WIDTH = 10.0
# A region's width for routing: 2·r − 1 with r the 95th percentile of its pixels' distances to
# the nearest known pixel, not the largest as evaluate's width groups take it. Where thin
# scratches cross, a few pixels lie farther from the known ones: with the largest, the network
# of scratches in examples/pier_scratches measured as wide and went to the model, whose fill
# left bright trails in the fog. Level with the largest on the paper's masks, ahead on
# eval-sets/thin (docs/restore.md, "Which method fills a hole").
ROUTING_PERCENTILE = 95.0
# Thin methods restore and evaluate offer (mean is a baseline, fsr-best too slow to route to).
THIN_METHODS = ("fsr", "biharmonic", "ns", "telea")
RESTORE_METHODS = (AUTO, MODEL, "ns", "telea", "biharmonic", "fsr")


def default_thin_method() -> str:
    """The classical method of ``auto``: biharmonic, whatever is installed.

    FSR fills thin holes a little better, but costs several times biharmonic's time per tile,
    which on a 24 MP scan is minutes (both measured in docs/restore.md, "Which method fills a
    hole"); and a default that changed with the installed extras would give the same command
    different results on two machines. ``auto:fsr`` asks for it.
    """
    return "biharmonic"


def parse_method(text: str) -> tuple[str, str | None]:
    """``auto`` / ``auto:fsr`` / ``pconv`` / a classical name → (method, thin method).

    The thin method is None except for ``auto``, where a bare ``auto`` takes
    :func:`default_thin_method`.
    """
    name = text.strip().lower()
    method, _, thin = name.partition(":")
    if method == AUTO:
        thin = thin or default_thin_method()
        if thin not in THIN_METHODS:
            raise ConfigError(f"--method {text}: the thin-hole method of auto must be one of "
                              f"{', '.join(THIN_METHODS)}")
        return AUTO, thin
    if thin or (method != MODEL and method not in CLASSICAL_METHODS):
        raise ConfigError(f"--method {text}: choose {', '.join(RESTORE_METHODS)}, or auto:NAME "
                          f"with NAME one of {', '.join(THIN_METHODS)}")
    return method, None


def check_thin_width(thin_width: float) -> float:
    if not np.isfinite(thin_width) or thin_width < 0:
        raise ConfigError(f"--thin-width {thin_width:g}: give a width in pixels, 0 or more "
                          "(0 sends every hole to the model)")
    return float(thin_width)


def thin_regions(valid: np.ndarray, thin_width: float) -> np.ndarray:
    """H×W bool: the hole pixels whose region measures at most ``thin_width`` px wide (at the
    :data:`ROUTING_PERCENTILE` of its pixels' distances to a known pixel)."""
    labels, widths = hole_region_widths(valid, ROUTING_PERCENTILE)
    lookup = np.concatenate([[False], widths <= thin_width])
    return lookup[labels]


def classical_view(valid: np.ndarray, thin: np.ndarray, reach: int | None) -> np.ndarray:
    """The mask the classical method is given for the ``thin`` regions: every hole within
    ``reach`` px of a thin pixel stays a hole (it never draws on an unknown pixel); wide holes
    farther away count as known, so that it does not spend time filling them for nothing.
    ``reach`` None (a method that reads the whole image): every hole stays a hole."""
    from scipy import ndimage

    wide = ~valid & ~thin
    if reach is None or not wide.any():
        return valid
    near = ndimage.distance_transform_edt(~thin) <= reach
    return valid | (wide & ~near)


class RoutedInpainter:
    """Thin hole regions to a classical method, the others to a model (see the module
    docstring); the inpainter interface of :mod:`pconv_cli.inference`.

    ``model``: a model inpainter (its ``flips``, ``blend``, ``multiple`` and ``fixed_size``
    are this inpainter's); ``thin``: a classical inpainter; ``thin_width``: the widest region
    (px) that goes to ``thin``: 0 sends every hole to the model, ``inf`` every hole to
    ``thin``.
    """

    batched = True  # the model runs on batches; the classical part runs image by image

    def __init__(self, model: Inpainter, thin: ClassicalInpainter,
                 thin_width: float = DEFAULT_THIN_WIDTH, name: str | None = None) -> None:
        self.model = model
        self.thin = thin
        self.thin_width = check_thin_width(thin_width)
        self.name = name or f"{AUTO}:{thin.name}"
        self.multiple = model.multiple
        self.fixed_size = model.fixed_size
        self.source = model.source
        self.flips = model.flips
        self.blend = model.blend
        self.backend = (f"{model.backend}; holes ≤ {self.thin_width:g} px wide: "
                        f"{thin.name} ({thin.backend})")

    def inpaint(self, images: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """The composite, as :meth:`inference._ModelInpainter.inpaint` takes and returns it
        (a batch or one image, uint8 or float in [0, 1])."""
        from .inference import in_callers_layout

        return in_callers_layout(self._inpaint_batch, images, valid)

    def _inpaint_batch(self, images: np.ndarray, valid: np.ndarray) -> np.ndarray:
        thin = np.stack([thin_regions(v, self.thin_width) for v in valid])
        result = images.copy()
        # Images without a thin region skip the classical method; without a wide one, the model.
        with_thin = np.flatnonzero(thin.any(axis=(1, 2)))
        if len(with_thin):
            seen = np.stack([classical_view(valid[i], thin[i], self.thin.reach)
                             for i in with_thin])
            filled = self.thin.inpaint(images[with_thin], seen)
            for k, i in enumerate(with_thin):
                result[i][thin[i]] = filled[k][thin[i]]
        known = valid | thin
        with_wide = np.flatnonzero(~known.all(axis=(1, 2)))
        if len(with_wide):
            filled = np.asarray(self.model.inpaint(result[with_wide], known[with_wide]),
                                dtype=np.float32)
            wide = ~known[with_wide]
            for k, i in enumerate(with_wide):
                result[i][wide[k]] = filled[k][wide[k]]
        result[valid] = images[valid]
        return result

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(model={self.model.name!r}, thin={self.thin.name!r}, "
                f"thin_width={self.thin_width:g})")


def load_method(
    method: str = AUTO,
    *,
    model: str | None = None,
    onnx: str | None = None,
    device: str = "auto",
    flips: int = 1,
    blend: str = "poisson",
    thin_width: float = DEFAULT_THIN_WIDTH,
) -> Inpainter:
    """The inpainter restore runs for ``--method`` (see :func:`parse_method`): the model
    (``--model``/``--onnx``/bundled), a classical method, or the two routed by width.

    The classical method is built first, so that a missing OpenCV stops before any model
    loads. Options of the model with a classical method alone are refused: they would do
    nothing.
    """
    from .inference import load_inpainter

    name, thin_name = parse_method(method)
    check_thin_width(thin_width)
    if name not in (AUTO, MODEL):
        given = [option for option, value in (("--model", model), ("--onnx", onnx),
                                              ("--flips", flips != 1)) if value]
        if given:
            raise ConfigError(f"--method {name} fills every hole without a model: drop "
                              f"{' and '.join(given)}, or use --method auto or pconv")
        return classical_inpainter(name)
    thin = classical_inpainter(thin_name) if thin_name is not None else None
    inpainter = load_inpainter(model=model, onnx=onnx, device=device, flips=flips, blend=blend)
    if thin is None:
        return inpainter
    return RoutedInpainter(inpainter, thin, thin_width, name=f"{AUTO}:{thin.name}")
