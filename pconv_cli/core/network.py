"""The partial-convolution U-Net (Liu et al. 2018, §3.2)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .layer import PartialConv2d

DECODER_RENORMS = ("branch", "paper")


def _paper_kernels(depth: int) -> tuple[int, ...]:
    return tuple([7, 5, 5] + [3] * max(0, depth - 3))[:depth]


@dataclass(frozen=True)
class UNetConfig:
    """Shape of a :class:`PConvUNet`. The defaults build the paper's 512² network.

    depth: encoder layers, each halving the resolution (paper: 8 at 512², 7 at 256²).
    width: channels of the first layer; they double per layer up to ``max_width_factor``·width.
    kernel_sizes: per encoder layer; empty means the paper's 7, 5, 5, 3, 3, ...
    decoder_renorm: how a decoder layer rescales a window with holes. ``"paper"``: one ratio
    sum(1)/sum(M) over the concatenated upsampled and skip elements. ``"branch"``: each branch
    by its own valid share (see :class:`_DecoderBlock`); the same wherever a branch is fully
    valid or fully missing, different where the skip branch is partly missing — the edge of
    every hole, and all of a thin one. Checkpoints made before the option read as "paper".
    """

    depth: int = 8
    width: int = 64
    max_width_factor: int = 8
    image_channels: int = 3
    kernel_sizes: tuple[int, ...] = field(default=())
    decoder_renorm: str = "branch"

    def __post_init__(self) -> None:
        if not 1 <= self.depth <= 12:
            raise ConfigError(f"depth must be between 1 and 12, got {self.depth}")
        if self.width < 1 or self.max_width_factor < 1 or self.image_channels < 1:
            raise ConfigError("width, max_width_factor and image_channels must be positive")
        if not self.kernel_sizes:
            object.__setattr__(self, "kernel_sizes", _paper_kernels(self.depth))
        object.__setattr__(self, "kernel_sizes", tuple(int(k) for k in self.kernel_sizes))
        if len(self.kernel_sizes) != self.depth or any(k < 1 or k % 2 == 0
                                                       for k in self.kernel_sizes):
            raise ConfigError(
                f"kernel_sizes must be {self.depth} odd positive sizes, got {self.kernel_sizes}"
            )
        if self.decoder_renorm not in DECODER_RENORMS:
            raise ConfigError(f"decoder_renorm {self.decoder_renorm!r}: one of "
                              f"{', '.join(DECODER_RENORMS)}")

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this (each encoder layer halves them)."""
        return 2**self.depth

    def encoder_channels(self) -> list[int]:
        return [self.width * min(2**i, self.max_width_factor) for i in range(self.depth)]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["kernel_sizes"] = list(self.kernel_sizes)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> UNetConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown model settings {sorted(unknown)}: made by a newer pconv?")
        data = dict(data)
        data.setdefault("decoder_renorm", "paper")  # what every model before the option used
        if "kernel_sizes" in data:
            data["kernel_sizes"] = tuple(data["kernel_sizes"])
        return cls(**data)


class _EncoderBlock(nn.Module):
    """Partial conv with stride 2, BatchNorm, ReLU.

    Features in and out are zero in the holes of their masks (the network masks the image
    once), so neither the next layer nor the decoder multiplies them by a mask again.
    """

    def __init__(self, cin: int, cout: int, kernel: int, batch_norm: bool) -> None:
        super().__init__()
        self.conv = PartialConv2d(cin, cout, kernel, stride=2, padding=kernel // 2)
        self.bn = nn.BatchNorm2d(cout) if batch_norm else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, new_mask = self.conv.forward_premasked(x, mask)
        new_mask = new_mask.to(mask.dtype)
        if self.bn is not None:
            # BatchNorm moves the holes away from 0: zero them again (in place is safe, its
            # backward needs its input, not its output).
            x = self.bn(x).mul_(new_mask.to(x.dtype))
        return F.relu(x), new_mask


class _DecoderBlock(nn.Module):
    """Upsample ×2 (nearest), concatenate the skip features and masks, partial conv 3×3.

    Like the encoder's, its features in and out are zero in the holes of their masks.

    With ``renorm="branch"`` each branch's share of the convolution is rescaled by that
    branch's own valid share of the window. The paper's single ratio over the concatenation
    barely moves when a few *skip* elements are missing: in the last layer the skip is the
    3-channel image beside 64 upsampled channels, so a pixel of a 1–3 px hole loses most of
    the image's contribution while the ratio rises by ~1 % — the fill of thin holes comes out
    darker in proportion to the brightness around it (about −16 % on flat grey, −42/255 on
    white paper, measured with the default model). Per branch, the image's valid neighbours
    stand in for the missing ones, as the paper's renormalisation intends.
    """

    def __init__(self, cin_up: int, cin_skip: int, cout: int, last: bool,
                 renorm: str = "branch") -> None:
        super().__init__()
        self.up_channels = cin_up
        self.skip_channels = cin_skip
        self.conv = PartialConv2d(cin_up + cin_skip, cout, 3, stride=1, padding=1)
        self.bn = None if last else nn.BatchNorm2d(cout)
        self.last = last
        self.renorm = renorm

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, skip: torch.Tensor, skip_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        mask = F.interpolate(mask, scale_factor=2.0, mode="nearest")
        if self.renorm == "branch":
            x, new_mask = self._branch_renormalised(x, mask, skip, skip_mask)
        else:
            # As in the paper the masks are concatenated too, one channel per feature channel,
            # so a window counts the valid *elements* of both branches. The layer gets that as
            # each pixel's valid fraction instead of an (up + skip)-channel mask as large as
            # the features themselves.
            channels = self.up_channels + self.skip_channels
            valid_fraction = (mask * self.up_channels + skip_mask * self.skip_channels) / channels
            x, new_mask = self.conv.forward_premasked(torch.cat([x, skip], dim=1),
                                                      valid_fraction)
        new_mask = new_mask.to(mask.dtype)
        if self.bn is not None:
            x = F.leaky_relu(self.bn(x).mul_(new_mask.to(x.dtype)), 0.2)
        return x, new_mask

    def _branch_renormalised(
        self, up: torch.Tensor, up_mask: torch.Tensor, skip: torch.Tensor, skip_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """W_up·X_up·(1/s_up) + W_skip·X_skip·(1/s_skip), times C/(channels of the branches
        the window sees), + b where the window sees anything; s = a branch's valid share.

        The last factor makes it the paper's formula whenever a branch is fully valid or fully
        missing (a hole's interior: the upsampled branch alone, scaled by C/C_up as before).
        """
        conv = self.conv
        n_up, n_skip = self.up_channels, self.skip_channels
        k = conv.kernel_size[0] * conv.kernel_size[1]
        with torch.no_grad(), torch.autocast(device_type=up.device.type, enabled=False):
            dtype = torch.promote_types(up.dtype, torch.float32)
            share_up = conv._window_mean(up_mask.to(dtype))
            share_skip = conv._window_mean(skip_mask.to(dtype))
            sees_up = (share_up > 0).to(dtype)
            sees_skip = (share_skip > 0).to(dtype)
            seen_channels = sees_up * n_up + sees_skip * n_skip
            new_mask = (seen_channels > 0).to(dtype)
            scale = new_mask * (n_up + n_skip) / seen_channels.clamp(min=1.0)
            # A clamp at one valid element instead of "+ eps", as in the layer (ONNX-safe).
            ratio_up = scale * sees_up / share_up.clamp(min=1.0 / k)
            ratio_skip = scale * sees_skip / share_skip.clamp(min=1.0 / k)
        weight_up, weight_skip = conv.weight[:, :n_up], conv.weight[:, n_up:]
        out = F.conv2d(up, weight_up, None, conv.stride, conv.padding, conv.dilation)
        out = out.mul_(ratio_up.to(out.dtype))
        from_skip = F.conv2d(skip, weight_skip, None, conv.stride, conv.padding, conv.dilation)
        out = out.addcmul_(from_skip, ratio_skip.to(out.dtype))
        if conv.bias is not None:
            out = out.addcmul_(conv.bias.view(1, -1, 1, 1).to(out.dtype),
                               new_mask.to(out.dtype))
        return out, new_mask


class PConvUNet(nn.Module):
    """The paper's U-Net of partial convolutions.

    ``forward(image, mask) -> output``: image N×C×H×W in [0, 1], mask N×1×H×W (or N×C×H×W),
    1 = valid. H and W must be multiples of ``2**depth`` (see :func:`pad_to_multiple`). The
    output is the raw prediction I_out; use :func:`composite` for the restored image.
    """

    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or UNetConfig()
        cfg = self.config
        chans = cfg.encoder_channels()
        cin = [cfg.image_channels] + chans[:-1]
        self.encoder = nn.ModuleList(
            _EncoderBlock(cin[i], chans[i], cfg.kernel_sizes[i], batch_norm=i > 0)
            for i in range(cfg.depth)
        )
        # Decoder j (from the bottleneck up) takes the upsampled output of the level below and
        # the skip from level j-1 (level 0 is the input image) and outputs that level's width.
        skip_chans = [cfg.image_channels] + chans[:-1]
        self.decoder = nn.ModuleList()
        up = chans[-1]
        for j in reversed(range(cfg.depth)):
            last = j == 0
            cout = cfg.image_channels if last else skip_chans[j]
            self.decoder.append(_DecoderBlock(up, skip_chans[j], cout, last=last,
                                              renorm=cfg.decoder_renorm))
            up = cout
        self.encoder_bn_frozen = False
        self._init_weights()

    def train(self, mode: bool = True) -> PConvUNet:
        super().train(mode)
        if self.encoder_bn_frozen:
            for block in self.encoder:
                if block.bn is not None:
                    block.bn.eval()
        return self

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, PartialConv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def check_size(self, height: int, width: int) -> None:
        m = self.config.multiple
        if height % m or width % m or height < m or width < m:
            def near(v: int) -> int:
                return nearest_valid_size(v, m)

            raise ConfigError(
                f"input size {height}×{width} is not a multiple of {m} (2^depth, depth "
                f"{self.config.depth}); nearest valid size {near(height)}×{near(width)} — "
                "or pad with pad_to_multiple() and crop back"
            )

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        self.check_size(image.shape[-2], image.shape[-1])
        if mask.shape[1] not in (1, image.shape[1]):
            raise ConfigError(f"mask must have 1 or {image.shape[1]} channels")
        mask = mask.to(image.dtype)
        if mask.shape[1] != 1:
            mask = mask.amin(dim=1, keepdim=True)  # a pixel is valid only if all channels are
        x, m = image * mask, mask  # from here on features are zero in their holes
        features, masks = [x], [m]
        for block in self.encoder:
            x, m = block(x, m)
            features.append(x)
            masks.append(m)
        x, m = features.pop(), masks.pop()
        for block in self.decoder:
            x, m = block(x, m, features.pop(), masks.pop())
        return x


def composite(image: torch.Tensor, output: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """I_comp = M ⊙ I_in + (1 − M) ⊙ I_out: known pixels kept, holes from the prediction."""
    mask = mask.to(output.dtype)
    return mask * image.to(output.dtype) + (1 - mask) * output


def pad_to_multiple(
    image: torch.Tensor, mask: torch.Tensor, multiple: int
) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    """Pad bottom/right to multiples of ``multiple``; padded pixels are holes.

    Returns the padded image and mask and the original (height, width) for :func:`crop_to`.
    Padding as holes is what partial-convolution padding does at any border, so the known
    pixels near the edge are treated exactly like those at a natural image border.
    """
    h, w = image.shape[-2:]
    ph = (-h) % multiple
    pw = (-w) % multiple
    if ph or pw:
        image = F.pad(image, (0, pw, 0, ph))
        mask = F.pad(mask, (0, pw, 0, ph))
    return image, mask, (h, w)


def crop_to(tensor: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return tensor[..., : size[0], : size[1]]


def nearest_valid_size(value: int, multiple: int) -> int:
    """The multiple of ``multiple`` closest to ``value`` (halfway rounds up, at least one
    ``multiple``): the hint every "not a multiple of 2^depth" message gives."""
    return max(multiple, int(math.floor(value / multiple + 0.5)) * multiple)


def freeze_encoder_bn(model: PConvUNet) -> None:
    """Fine-tuning mode (paper §4.2): encoder BatchNorm statistics and affine parameters fixed.

    Sets the encoder BN layers to eval mode (and keeps them there across ``model.train()``)
    and stops gradients to their weight and bias; the decoder BN layers are untouched.
    Parameters that no longer need gradients receive none, so an optimizer leaves them alone.
    """
    net = _unwrap(model)
    net.encoder_bn_frozen = True
    for block in net.encoder:
        if block.bn is not None:
            block.bn.eval()
            for p in block.bn.parameters():
                p.requires_grad_(False)


def _unwrap(model: nn.Module) -> PConvUNet:
    inner = getattr(model, "module", model)  # DistributedDataParallel
    inner = getattr(inner, "_orig_mod", inner)  # torch.compile
    return inner
