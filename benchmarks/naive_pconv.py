"""Baselines for the benchmarks only: a naive partial convolution and a plain-conv U-Net.

``NaivePartialConv2d`` computes sum(M) the way many public ports do: a full
C_in → C_out convolution of a C_in-channel mask with a ones kernel, and a C_out-channel new
mask. Its arithmetic is otherwise the paper's (and exact, like pconv's), so its outputs equal
:class:`~pconv_cli.core.PartialConv2d`'s and only the cost differs.

The twins of a :class:`~pconv_cli.core.PConvUNet` share its modules and weights, so they
have exactly its shapes: :func:`naive_twin` swaps every layer for the naive one (and every
block for one that passes C_in-channel masks and masks each layer's input, as the ports do),
:class:`PlainTwin` runs the same blocks with ordinary convolutions (the paper's baseline
U-Net, fed the masked image).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from pconv_cli.core import PartialConv2d, PConvUNet


class NaivePartialConv2d(nn.Conv2d):
    """Partial convolution with a C_out×C_in ones kernel for the mask (baseline only)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 dilation: int | tuple[int, int] = 1, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, bias=bias)
        self.register_buffer(
            "mask_kernel", torch.ones(out_channels, in_channels, *self.kernel_size),
            persistent=False,
        )

    @classmethod
    def from_partial(cls, layer: PartialConv2d) -> NaivePartialConv2d:
        naive = cls(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                    layer.padding, layer.dilation, bias=layer.bias is not None)
        naive.load_state_dict(layer.state_dict())
        return naive.to(layer.weight.device)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if mask.shape[1] == 1:  # the ports keep one mask channel per feature channel
            mask = mask.expand(-1, self.in_channels, -1, -1).contiguous()
        window_size = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        with torch.no_grad():
            valid_count = F.conv2d(mask, self.mask_kernel, None, self.stride, self.padding,
                                   self.dilation)  # N×C_out×H×W, every channel the same
            new_mask = (valid_count > 0).to(x.dtype)
            ratio = window_size / valid_count.clamp(min=1.0) * new_mask
        raw = F.conv2d(x * mask, self.weight, None, self.stride, self.padding, self.dilation)
        out = raw * ratio
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1) * new_mask
        return out, new_mask


class NaiveEncoderBlock(nn.Module):
    """An encoder block as the ports write it: every layer masks its own input."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.conv = NaivePartialConv2d.from_partial(block.conv)
        self.bn = block.bn

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, mask = self.conv(x, mask)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x), mask


class NaiveDecoderBlock(nn.Module):
    """A decoder block as the ports write it: the concatenated C_in-channel mask is built."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.conv = NaivePartialConv2d.from_partial(block.conv)
        self.bn = block.bn

    def forward(self, x: torch.Tensor, mask: torch.Tensor, skip: torch.Tensor,
                skip_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        mask = F.interpolate(mask, scale_factor=2.0, mode="nearest")
        if skip_mask.shape[1] == 1:  # the input image's mask
            skip_mask = skip_mask.expand(-1, skip.shape[1], -1, -1)
        x, new_mask = self.conv(torch.cat([x, skip], dim=1), torch.cat([mask, skip_mask], dim=1))
        if self.bn is not None:
            x = F.leaky_relu(self.bn(x), 0.2)
        return x, new_mask


def naive_twin(model: PConvUNet) -> PConvUNet:
    """A copy of ``model`` with naive partial convolutions and C_in-channel masks throughout."""
    twin = copy.deepcopy(model)
    twin.encoder = nn.ModuleList(NaiveEncoderBlock(block) for block in twin.encoder)
    twin.decoder = nn.ModuleList(NaiveDecoderBlock(block) for block in twin.decoder)
    return twin


class PlainTwin(nn.Module):
    """``model``'s U-Net with ordinary convolutions: same blocks, same weights, no masks."""

    def __init__(self, model: PConvUNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = image * mask
        features = [x]
        for block in self.model.encoder:
            x = nn.Conv2d.forward(block.conv, x)
            if block.bn is not None:
                x = block.bn(x)
            x = F.relu(x)
            features.append(x)
        x = features.pop()
        for block in self.model.decoder:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = nn.Conv2d.forward(block.conv, torch.cat([x, features.pop()], dim=1))
            if block.bn is not None:
                x = F.leaky_relu(block.bn(x), 0.2)
        return x


def hole_mask(batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """N×1×H×W, 1 = valid, about a quarter holes in random rectangles (some on the border)."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(batch, 1, height, width)
    for b in range(batch):
        for _ in range(6):
            h = int(torch.randint(height // 10, height // 4, (1,), generator=g))
            w = int(torch.randint(width // 10, width // 4, (1,), generator=g))
            top = int(torch.randint(-h // 2, height - h // 2, (1,), generator=g))
            left = int(torch.randint(-w // 2, width - w // 2, (1,), generator=g))
            mask[b, :, max(top, 0) : top + h, max(left, 0) : left + w] = 0
    return mask
