"""Honest device selection: asking for a device that is not there is an error, not a fallback."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import DeviceError

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an explicit device must be usable."""
    import torch  # here, so that the CLI can list DEVICE_CHOICES without loading torch

    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    base = name.split(":")[0]
    if base == "cpu":
        return torch.device("cpu")
    if base == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                "--device cuda: no usable CUDA GPU (torch.cuda.is_available() is False); "
                "use --device cpu or auto"
            )
        return torch.device(name)
    if base == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise DeviceError("--device mps: Apple MPS is not available; use --device cpu or auto")
        return torch.device("mps")
    raise DeviceError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")
