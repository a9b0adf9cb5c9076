"""Running a trained model on numpy images: shared by evaluate and restore.

An inpainter takes a batch of same-size images (N×H×W×3 float32 in [0, 1]) and library masks
(N×H×W bool, True = valid) and returns the composite (known pixels are the input's own).
Any size works: inputs are padded to a multiple of 2^depth (the padding counts as hole) and
cropped back. ``inpaint`` also takes uint8 images (and then returns uint8), a single H×W×3
image with an H×W mask (and then returns one image) and 0/1 masks; see
:meth:`_ModelInpainter.inpaint`.

``flips`` (2, 4 or 8) averages the model over mirrored copies of each input (a self-ensemble:
the mirror image, then also the upside-down and the rotated-by-180° copies, then with 8 the
same four transposed, which makes all eight symmetries of the square), each mapped back before
averaging. The network is not exactly mirror-symmetric (stride-2 windows, padding at the
bottom and right), so the copies disagree a little and their mean is a better fill; it costs
``flips`` model calls. Measured in docs/model-card.md.

``blend="poisson"`` (the default) then makes each fill continuous with the known pixels
around its hole (:mod:`pconv_cli.seams`); ``"none"`` returns the model's composite as is.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch

from .checkpoint import INPAINTER, load_checkpoint
from .core import PConvUNet, composite, crop_to, pad_to_multiple
from .devices import resolve_device
from .errors import CheckpointError, ConfigError, InputError, WeightsUnavailableError
from .imaging import LUMA_601, to_uint8
from .inpainter import Inpainter  # noqa: F401  (the contract these backends keep)
from .onnx_session import open_session
from .seams import DEFAULT_BLEND, blend_batch, check_blend

DEFAULT_MODEL_PATH = Path(__file__).parent / "weights" / "default.pt"
# Grey photographs saved as RGB (scans, JPEGs) keep a little chroma noise: a known pixel whose
# channels differ by at most this counts as grey.
GREY_TOLERANCE = 2.5 / 255
_GREY_SAMPLE = 1 << 20  # known pixels looked at to decide (a strided sample of large images)
# Each member of a flip ensemble: the axes (of N×H×W[×C] arrays) mirrored, then whether
# height and width are swapped.
_MIRRORS = ((), (2,), (1,), (1, 2))
FLIP_ENSEMBLES: dict[int, tuple[tuple[tuple[int, ...], bool], ...]] = {
    1: (((), False),),
    2: tuple((axes, False) for axes in _MIRRORS[:2]),
    4: tuple((axes, False) for axes in _MIRRORS),
    8: tuple((axes, transpose) for transpose in (False, True) for axes in _MIRRORS),
}


def _to_member(array: np.ndarray, axes: tuple[int, ...], transpose: bool) -> np.ndarray:
    array = np.flip(array, axes)
    return np.swapaxes(array, 1, 2) if transpose else array


def _from_member(array: np.ndarray, axes: tuple[int, ...], transpose: bool) -> np.ndarray:
    if transpose:
        array = np.swapaxes(array, 1, 2)
    return np.flip(array, axes)


def default_model_path() -> Path:
    if not DEFAULT_MODEL_PATH.is_file():
        raise WeightsUnavailableError(
            f"the bundled default model is missing ({DEFAULT_MODEL_PATH.name}); reinstall pconv "
            "or pass --model CKPT"
        )
    return DEFAULT_MODEL_PATH


def is_grey(image: np.ndarray, valid: np.ndarray) -> bool:
    """Whether the known pixels of an H×W×3 image are grey: at 99.9% of them (a strided
    sample of at most ~1 M) the channels differ by at most :data:`GREY_TOLERANCE`."""
    known = image[valid]
    if len(known) == 0:
        return False
    known = known[:: max(1, len(known) // _GREY_SAMPLE)]
    spread = known.max(axis=1) - known.min(axis=1)
    return float(np.quantile(spread, 0.999)) <= GREY_TOLERANCE


def keep_grey(images: np.ndarray, valid: np.ndarray, result: np.ndarray) -> np.ndarray:
    """Fill grey images in grey: in an image whose known pixels are grey (:func:`is_grey`),
    each hole pixel becomes the ITU-R 601 luma of the prediction in all three channels.

    A network trained on colour photographs tints some of its fills; in a black-and-white
    photograph that is a visible defect. The luma is also what ``restore`` writes for a grey
    file. ``result`` is changed in place and returned.
    """
    for i in range(len(images)):
        if is_grey(images[i], valid[i]):
            hole = ~valid[i]
            result[i][hole] = (result[i][hole] @ LUMA_601)[:, None]
    return result


def in_callers_layout(fill_batch, images: np.ndarray, valid: np.ndarray  # noqa: ANN001
                      ) -> np.ndarray:
    """``fill_batch(images, valid)`` (N×H×W×3 float32, N×H×W bool) on what a user passes —
    a batch or one image, uint8 or float in [0, 1] — answered in the same layout and dtype."""
    as_uint8 = np.asarray(images).dtype == np.uint8
    images, single = _image_batch(images)
    valid = _valid_batch(valid, images, single)
    result = fill_batch(images, valid)
    if as_uint8:
        result = to_uint8(result)
    return result[0] if single else result


def _image_batch(images: object) -> tuple[np.ndarray, bool]:
    """N×H×W×3 float32 in [0, 1] from uint8 or float images, one or a batch; and whether the
    input was one image."""
    array = np.asarray(images)
    if array.dtype != np.uint8 and not np.issubdtype(array.dtype, np.floating):
        raise InputError(
            f"images must be uint8 (0-255) or float in [0, 1], got dtype {array.dtype}"
        )
    if array.ndim not in (3, 4) or array.shape[-1] != 3 or 0 in array.shape[-3:-1]:
        raise InputError(
            f"images must be H×W×3 (one RGB image) or N×H×W×3 (a batch), got shape "
            f"{array.shape}; convert grey or RGBA images to RGB first"
        )
    if array.dtype == np.uint8:
        batch = array.astype(np.float32) / np.float32(255)
    else:
        batch = np.asarray(array, dtype=np.float32)
        if not np.isfinite(batch).all():
            raise InputError("images contain NaN or infinite values")
        if batch.size and (batch.min() < 0 or batch.max() > 1):
            raise InputError(
                f"float images must lie in [0, 1], found values from {batch.min():g} to "
                f"{batch.max():g}; divide 8-bit values by 255, or pass them as uint8"
            )
    single = array.ndim == 3
    return (batch[None] if single else batch), single


def _valid_batch(valid: object, images: np.ndarray, single: bool) -> np.ndarray:
    """N×H×W bool (True = valid) for the N×H×W×3 ``images``: from bool or 0/1 masks, one per
    image or (for a batch) one H×W mask shared by every image, with or without a last axis of
    length 1."""
    mask = np.asarray(valid)
    if mask.dtype != bool:
        if not (np.issubdtype(mask.dtype, np.integer) or np.issubdtype(mask.dtype, np.floating)):
            raise InputError(f"masks must be bool or 0/1 numbers, got dtype {mask.dtype}")
        if not ((mask == 0) | (mask == 1)).all():
            raise InputError(
                "masks must be bool or 0/1 (1 = valid, 0 = hole), found other values; a mask "
                "image that is white where the holes are becomes mask_image < 128"
            )
        mask = mask != 0
    n, height, width = images.shape[:3]
    if mask.ndim == (3 if single else 4) and mask.shape[-1] == 1:
        mask = mask[..., 0]  # a channel axis of one, as image libraries give
    if mask.ndim not in ((2,) if single else (2, 3)):
        wanted = ("one H×W×3 image takes an H×W mask" if single else
                  "N×H×W×3 images take N×H×W masks (or one H×W mask for all)")
        raise InputError(f"{wanted}, got a mask of shape {mask.shape}")
    if mask.shape[-2:] != (height, width):
        raise InputError(
            f"mask size {mask.shape[-1]}x{mask.shape[-2]} differs from image size "
            f"{width}x{height} (WxH)"
        )
    if mask.ndim == 3 and len(mask) != n:
        raise InputError(f"{len(mask)} masks for {n} images: give one mask per image")
    return np.ascontiguousarray(np.broadcast_to(mask, (n, height, width)))


def ensemble_sizes() -> str:
    """The flip ensembles there are, for messages: "2, 4 or 8"."""
    sizes = [str(n) for n in FLIP_ENSEMBLES if n > 1]
    return ", ".join(sizes[:-1]) + " or " + sizes[-1]


def check_flips(flips: int) -> int:
    if flips not in FLIP_ENSEMBLES:
        raise ConfigError(f"--flips {flips}: choose 1 (no ensemble), {ensemble_sizes()}")
    return flips


class _ModelInpainter(ABC):
    """What the torch and ONNX Runtime inpainters share: the flip ensemble, seam blending and
    grey fills around one model call, ``_composite``."""

    name: str
    backend: str
    multiple: int
    source: str = "in memory"  # a checkpoint or ONNX file's path once loaded from one
    batched = True
    fixed_size: tuple[int, int] | None = None
    flips: int = 1
    blend: str = DEFAULT_BLEND

    def _configure(self, flips: int, blend: str) -> None:
        self.flips = check_flips(flips)
        self.blend = check_blend(blend)

    @abstractmethod
    def _composite(self, images: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """One model call: the composite of the model's output with the known pixels."""

    def _describe(self) -> str:
        """What the backend string adds to the runtime: the post-processing, if any."""
        flips = f", {self.flips} flips" if self.flips > 1 else ""
        return flips + (", Poisson blend" if self.blend == "poisson" else "")

    def inpaint(self, images: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """The composite of the model's fill with the known pixels of ``images``.

        ``images``: a batch N×H×W×3 or one image H×W×3, RGB, either uint8 (0-255) or float in
        [0, 1]. ``valid``: the masks, True or 1 = valid (known), False or 0 = hole; N×H×W for
        a batch (or one H×W mask for every image), H×W for one image. Pixels under a hole are
        ignored, whatever they hold. A last axis of length 1 (H×W×1) is accepted.

        Returns the same layout as ``images``: N×H×W×3 or H×W×3, uint8 for uint8 images
        (rounded), float32 in [0, 1] otherwise. Anything else (other dtypes or shapes, floats
        outside [0, 1] or not finite, masks with values other than 0/1, sizes that differ)
        raises :class:`InputError`.
        """
        return in_callers_layout(self._inpaint_batch, images, valid)

    def _inpaint_batch(self, images: np.ndarray, valid: np.ndarray) -> np.ndarray:
        if self.flips == 1:
            result = self._composite(images, valid)
        else:
            total = np.zeros(images.shape, dtype=np.float32)
            for member in FLIP_ENSEMBLES[self.flips]:
                out = self._composite(np.ascontiguousarray(_to_member(images, *member)),
                                      np.ascontiguousarray(_to_member(valid, *member)))
                total += _from_member(out, *member)
            total /= self.flips
            # The mean of equal known pixels can round differently: put the input's back.
            result = np.where(valid[..., None], images, total)
        if self.blend == "poisson":
            result = blend_batch(result, valid)
        return keep_grey(images, valid, result)


class TorchInpainter(_ModelInpainter):
    """A :class:`PConvUNet` in eval mode on one device; ``flips``, ``blend``: see the module
    docstring."""

    def __init__(self, model: PConvUNet, device: str | torch.device = "cpu", name: str = "model",
                 *, flips: int = 1, blend: str = DEFAULT_BLEND):
        self.device = resolve_device(str(device)) if isinstance(device, str) else device
        self.model = model.to(self.device).eval()
        self.multiple = model.config.multiple
        self.name = name
        self._configure(flips, blend)
        self.backend = f"torch {self.device.type}{self._describe()}"

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, device: str = "auto", name: str | None = None,
        *, flips: int = 1, blend: str = DEFAULT_BLEND,
    ) -> TorchInpainter:
        model = load_checkpoint(path).expect(INPAINTER, path).build_model("cpu")
        inpainter = cls(model, device, name or Path(path).stem, flips=flips, blend=blend)
        inpainter.source = str(path)
        return inpainter

    @torch.inference_mode()
    def _composite(self, images: np.ndarray, valid: np.ndarray) -> np.ndarray:
        image = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
        image = image.permute(0, 3, 1, 2).to(self.device)
        mask = torch.from_numpy(np.ascontiguousarray(valid, dtype=np.float32))[:, None]
        mask = mask.to(self.device)
        padded, padded_mask, size = pad_to_multiple(image, mask, self.multiple)
        output = crop_to(self.model(padded, padded_mask), size).clamp(0, 1)
        result = composite(image, output, mask)
        return result.permute(0, 2, 3, 1).cpu().numpy()


class OnnxInpainter(_ModelInpainter):
    """A model exported by ``pconv export --onnx``, run with ONNX Runtime.

    The file's metadata says what sizes it takes (``multiple``, and ``static_size`` for a
    fixed-size export); inputs are padded to those (the padding counts as hole) and cropped
    back, as with :class:`TorchInpainter`. A fixed non-square model refuses ``flips=8``: the
    transposed copies would not fit it.

    ``device``: ``cpu``, ``cuda`` (or ``cuda:N``) or ``auto``. CUDA is requested only for
    ``cuda``/``auto``; ONNX Runtime silently falls back to the CPU when it cannot use a GPU, so
    the provider actually used is read back from the session, reported in ``backend``, and an
    explicit ``cuda`` that did not get the GPU is a :class:`DeviceError`.
    ``threads``: intra-op threads; defaults to torch's count (which honours OMP_NUM_THREADS),
    so both backends use the same share of the machine. ``flips``, ``blend``: see the module
    docstring.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        device: str = "auto",
        name: str | None = None,
        *,
        threads: int | None = None,
        flips: int = 1,
        blend: str = DEFAULT_BLEND,
    ) -> None:
        self._configure(flips, blend)
        path = Path(path)
        self.session, self.provider = open_session(path, device, threads)
        self.backend = f"onnxruntime {self.provider}{self._describe()}"
        self.name = name or path.stem
        self.source = str(path)
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        if self.metadata.get("model_kind") == "detector":
            raise CheckpointError(f"{path} holds a damage detector (finds holes), but an "
                                  "inpainting model (fills holes) is needed here")
        self.multiple, self.fixed_size = self._read_shape(path)
        if self.fixed_size is not None and self.flips == 8:
            height, width = self.fixed_size
            if height != width:
                # The transposed copies of an input that fills the model are width×height:
                # a fixed non-square graph cannot take them, and cropping them would change
                # what the ensemble averages.
                raise ConfigError(
                    f"--flips 8 transposes each input, which this model's fixed non-square "
                    f"size {width}x{height} (WxH) cannot take; use --flips 4, or export with a "
                    "square --static size or without --static"
                )
        inputs = {i.name: i for i in self.session.get_inputs()}
        if set(inputs) != {"image", "mask"}:
            raise CheckpointError(
                f"{path}: expected inputs 'image' and 'mask', found {sorted(inputs)}; export "
                "models with pconv export"
            )
        self._input_dtype = np.float16 if inputs["image"].type == "tensor(float16)" else np.float32

    def _read_shape(self, path: Path) -> tuple[int, tuple[int, int] | None]:
        try:
            multiple = int(self.metadata["multiple"])
        except (KeyError, ValueError):
            raise CheckpointError(
                f"{path}: not a pconv ONNX model (no 'multiple' in its metadata); export it "
                "with pconv export"
            ) from None
        dims = self.session.get_inputs()[0].shape  # [N, 3, H, W]: ints where fixed
        fixed = (dims[2], dims[3]) if all(isinstance(d, int) for d in dims[2:4]) else None
        return multiple, fixed

    def _composite(self, images: np.ndarray, valid: np.ndarray) -> np.ndarray:
        n, h, w = images.shape[:3]
        if self.fixed_size is not None:
            th, tw = self.fixed_size
            if h > th or w > tw:
                raise InputError(
                    f"{w}x{h} input is larger than this model's fixed size {tw}x{th} (WxH); "
                    "export without --static or downscale the input"
                )
        else:
            th, tw = -(-h // self.multiple) * self.multiple, -(-w // self.multiple) * self.multiple
        image = np.zeros((n, 3, th, tw), dtype=self._input_dtype)
        image[:, :, :h, :w] = images.transpose(0, 3, 1, 2)
        mask = np.zeros((n, 1, th, tw), dtype=self._input_dtype)
        mask[:, 0, :h, :w] = valid
        (out,) = self.session.run(None, {"image": image, "mask": mask})
        return np.ascontiguousarray(out[:, :, :h, :w].transpose(0, 2, 3, 1), dtype=np.float32)


def load_inpainter(
    model: str | os.PathLike | None = None,
    onnx: str | os.PathLike | None = None,
    device: str = "auto",
    flips: int = 1,
    blend: str = DEFAULT_BLEND,
) -> Inpainter:
    """The inpainter for ``--model CKPT`` or ``--onnx FILE``; the bundled model without either."""
    if model is not None and onnx is not None:
        raise ConfigError("give --model or --onnx, not both")
    check_flips(flips)
    check_blend(blend)
    if onnx is not None:
        return OnnxInpainter(onnx, device, flips=flips, blend=blend)
    return TorchInpainter.from_checkpoint(model if model is not None else default_model_path(),
                                          device, flips=flips, blend=blend)
