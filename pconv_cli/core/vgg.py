"""VGG-16 features for the perceptual and style losses, from local weights when offline."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..errors import WeightsUnavailableError, describe_exception

VGG16_FILE = "vgg16-397923af.pth"  # torchvision's file name for VGG16_Weights.IMAGENET1K_V1
VGG_WEIGHTS_ENV = "PCONV_VGG_WEIGHTS"
_POOL_ENDS = (5, 10, 17)  # torchvision vgg16().features indices just after pool1, pool2, pool3
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def torchvision_cache_file() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE


def _missing_message(detail: str) -> str:
    return (
        f"ImageNet VGG-16 weights not available ({detail}). Download {VGG16_FILE} (torchvision "
        f"VGG16_Weights.IMAGENET1K_V1) on a connected machine and pass --vgg-weights FILE, set "
        f"{VGG_WEIGHTS_ENV}=FILE, or put it at {torchvision_cache_file()}; or train pixel-only "
        "with --perceptual-weight 0 --style-weight 0"
    )


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise WeightsUnavailableError(_missing_message(f"{path} does not exist"))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, or a pickle carrying code
        raise WeightsUnavailableError(
            f"{path}: cannot read VGG-16 weights ({describe_exception(exc)})"
        ) from None
    if not isinstance(state, dict):
        raise WeightsUnavailableError(f"{path}: not a VGG-16 state_dict")
    return state


def _find_state_dict(
    weights: str | os.PathLike | None, allow_download: bool
) -> tuple[dict[str, torch.Tensor], str]:
    """The weights and where they came from, in :func:`load_vgg16`'s search order."""
    source = weights or os.environ.get(VGG_WEIGHTS_ENV)
    if source:
        return _load_state_dict(Path(source)), str(source)
    if torchvision_cache_file().is_file():
        return _load_state_dict(torchvision_cache_file()), str(torchvision_cache_file())
    if not allow_download:
        raise WeightsUnavailableError(_missing_message("no file given and none cached"))
    try:
        from torchvision.models import VGG16_Weights

        state = VGG16_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
    except Exception as exc:  # offline: URLError, timeouts
        raise WeightsUnavailableError(
            _missing_message(f"download failed: {describe_exception(exc)}")
        ) from None
    return state, "torchvision download"


def load_vgg16(
    weights: str | os.PathLike | None = None, *, allow_download: bool = True
) -> nn.Module:
    """torchvision's VGG-16 with ImageNet weights, from (in order): ``weights``, the
    ``PCONV_VGG_WEIGHTS`` variable, torchvision's cache, torchvision's download.

    Never returns random weights: if none of these works, raises WeightsUnavailableError.
    A file holding only the ``features.*`` tensors is enough for the loss; the classifier is
    then left on the meta device (it has no weights to compute with).
    """
    from torchvision.models import vgg16

    state, source = _find_state_dict(weights, allow_download)
    # Accept a full VGG-16 state_dict or one of the feature extractor alone.
    if not any(k.startswith("features.") for k in state):
        state = {f"features.{k}": v for k, v in state.items()}
    state = {k: v.float() if v.is_floating_point() else v
             for k, v in state.items() if isinstance(v, torch.Tensor)}
    # Built on the meta device, the network costs no time or memory before the file's tensors
    # are put in place (randomly initialising the 124 M classifier weights took seconds).
    with torch.device("meta"):
        model = vgg16(weights=None)
    try:
        missing, _unexpected = model.load_state_dict(state, strict=False, assign=True)
    except RuntimeError as exc:  # tensors of the wrong shapes
        raise WeightsUnavailableError(
            f"{source}: not a torchvision VGG-16 state_dict ({describe_exception(exc)})"
        ) from None
    missing_features = [k for k in missing if k.startswith("features.")]
    if missing_features:
        raise WeightsUnavailableError(
            f"{source}: VGG-16 weights file lacks {len(missing_features)} feature tensors "
            f"(e.g. {missing_features[0]}): not a torchvision VGG-16 state_dict"
        )
    return model


class VGG16Features(nn.Module):
    """Frozen VGG-16 activations at pool1, pool2 and pool3 (Ψ_p of the paper).

    Inputs are images in [0, 1]; torchvision's ImageNet normalisation is applied here.
    The network stays in eval mode whatever the caller does with ``.train()``.
    """

    def __init__(self, vgg: nn.Module) -> None:
        super().__init__()
        layers = list(vgg.features.children())
        starts = (0,) + _POOL_ENDS[:-1]
        self.stages = nn.ModuleList(
            nn.Sequential(*layers[a:b]) for a, b in zip(starts, _POOL_ENDS, strict=True)
        )
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1),
                             persistent=False)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG16Features:
        return super().train(False)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = (image - self.mean.to(image.dtype)) / self.std.to(image.dtype)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats
