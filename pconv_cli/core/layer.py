"""The partial convolution layer (Liu et al. 2018, §3.1).

    x' = Wᵀ(X ⊙ M) · sum(1)/sum(M) + b    if sum(M) > 0
    x' = 0                                 otherwise
    m' = 1 if sum(M) > 0 else 0

M is 1 = valid, 0 = hole. sum(1) is the number of elements in one window: C_in·kh·kw for a
mask with C_in channels, kh·kw for a single-channel mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError


class PartialConv2d(nn.Conv2d):
    """A 2-D partial convolution: ``forward(x, mask) -> (y, new_mask)``.

    Weights are those of an ``nn.Conv2d`` with the same arguments (with an all-valid mask the
    layer *is* that convolution). ``mask`` has 1 channel or ``in_channels`` channels; the
    returned mask always has 1 channel, since the new mask is the same for every output
    channel (it broadcasts against ``y``).

    Zero padding makes pixels outside the image holes, which is the "partial-convolution
    padding" of Liu et al. 2018b: the re-normalisation corrects the borders too.

    The layer keeps no state between calls; the ones-kernel for the window sums is a
    non-persistent buffer, so it follows ``.to(device)`` and is not saved in checkpoints.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding,
            dilation=dilation, bias=bias,
        )
        kh, kw = self.kernel_size
        self.register_buffer("window_ones", torch.ones(1, 1, kh, kw), persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask_channels = mask.shape[1]
        if mask_channels not in (1, self.in_channels):
            raise ConfigError(
                f"mask has {mask_channels} channels; expected 1 or {self.in_channels} "
                "(the input's channel count)"
            )
        kh, kw = self.kernel_size
        window_size = float(mask_channels * kh * kw)  # sum(1)

        # The mask arithmetic runs in fp32 outside autocast: window sums and ratios are then
        # exact integers / exact quotients whatever the compute dtype of the convolution.
        with torch.no_grad(), torch.autocast(device_type=x.device.type, enabled=False):
            m = mask.float()
            if mask_channels > 1:
                m = m.sum(dim=1, keepdim=True)
            valid_count = F.conv2d(
                m, self.window_ones, None, self.stride, self.padding, self.dilation
            )  # sum(M)
            new_mask = (valid_count > 0).to(valid_count.dtype)
            # clamp(min=1) instead of "+ eps": exact for binary masks, no inf·0 in fp16 and
            # nothing for an ONNX optimiser to fold away.
            ratio = window_size / valid_count.clamp(min=1.0) * new_mask

        raw = F.conv2d(x * mask.to(x.dtype), self.weight, None, self.stride, self.padding,
                       self.dilation)
        out = raw * ratio.to(raw.dtype)
        if self.bias is not None:
            # Bias only where the window saw a valid pixel: holes stay exactly 0.
            out = out + self.bias.view(1, -1, 1, 1).to(out.dtype) * new_mask.to(out.dtype)
        return out, new_mask.to(mask.dtype)
