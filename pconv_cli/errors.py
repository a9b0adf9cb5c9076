"""The library's exception hierarchy.

Library code raises these; only the CLI turns them into a one-line message and an exit code.
Every message says what was wrong and what to do about it.
"""


class PconvError(Exception):
    """Base class of every error pconv reports to a user."""


class InputError(PconvError):
    """An input file, folder or option is unusable (missing, corrupt, wrong size...)."""


class ConfigError(PconvError):
    """A model, training or evaluation setting is invalid."""


class CheckpointError(PconvError):
    """A checkpoint file is missing, corrupt, unsafe or from an unknown version."""


class WeightsUnavailableError(PconvError):
    """Pretrained weights (VGG-16 for the loss, or the bundled model) cannot be found."""


class DeviceError(PconvError):
    """A requested device or execution provider is not usable on this machine."""


class TrainingError(PconvError):
    """Training cannot continue (non-finite loss, out of memory...)."""


class ExportError(PconvError):
    """An ONNX export failed or did not match torch."""


# torch.load's refusal of a pickle wraps its reason in paragraphs of advice.
_BOILERPLATE = ("Weights only load failed", "Please file an issue", "Check the documentation")


def describe_exception(exc: BaseException, limit: int | None = None) -> str:
    """The informative line of an exception's message, for a one-line error report; at most
    ``limit`` characters."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    informative = [line for line in lines if not line.startswith(_BOILERPLATE)] or lines
    if not informative:
        return type(exc).__name__
    text = informative[0]
    if text.endswith(":") and len(informative) > 1:  # a heading: the reason is on the next line
        text = f"{text} {informative[1]}"
    return text[:limit]
