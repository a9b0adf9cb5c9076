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

    The layer keeps no state between calls; the ones-kernel for window sums that an average
    pool cannot compute (dilation, wide padding) is a non-persistent buffer, so it follows
    ``.to(device)`` and is not saved in checkpoints.
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
        with torch.no_grad(), torch.autocast(device_type=x.device.type, enabled=False):
            valid_fraction = mask.to(_mask_dtype(x))
            if mask_channels > 1:
                valid_fraction = valid_fraction.mean(dim=1, keepdim=True)
        out, new_mask = self.forward_premasked(x * mask.to(x.dtype), valid_fraction)
        return out, new_mask.to(mask.dtype)

    def forward_premasked(
        self, masked_x: torch.Tensor, valid_fraction: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer on an input that is already X ⊙ M (zero in its holes).

        ``valid_fraction`` (N×1×H×W) is the fraction of each pixel's ``in_channels`` elements
        that are valid: the mask itself when all channels share one. This lets the U-Net
        keep its features zero in the holes once, and concatenate branches without building
        an ``in_channels``-channel mask. Returns ``(y, new_mask)``, the new mask in fp32
        (fp64 for fp64 inputs).
        """
        kh, kw = self.kernel_size
        window_size = float(self.in_channels * kh * kw)  # sum(1)
        # The mask arithmetic runs in fp32 (fp64 for fp64 inputs) outside autocast, whatever
        # the compute dtype of the convolution, including after model.half().
        with torch.no_grad(), torch.autocast(device_type=masked_x.device.type, enabled=False):
            valid_share = self._window_mean(valid_fraction.to(_mask_dtype(masked_x)))
            # valid_share is sum(M)/sum(1); exactly 0 where the window sees no valid element.
            new_mask = (valid_share > 0).to(valid_share.dtype)
            # sum(1)/sum(M) with a clamp at one valid element instead of "+ eps": no inf·0 in
            # fp16 and nothing for an ONNX optimiser to fold away.
            ratio = new_mask / valid_share.clamp(min=1.0 / window_size)

        raw = F.conv2d(masked_x, self.weight, None, self.stride, self.padding, self.dilation)
        # In place on the convolution's own output (which its backward does not need): no
        # full-size temporaries.
        out = raw.mul_(ratio.to(raw.dtype))
        if self.bias is not None:
            # Bias only where the window saw a valid pixel: holes stay exactly 0.
            out = out.addcmul_(self.bias.view(1, -1, 1, 1).to(out.dtype), new_mask.to(out.dtype))
        return out, new_mask

    def _window_mean(self, m: torch.Tensor) -> torch.Tensor:
        """Mean of a 1-channel map over each window the convolution sees (zero padding)."""
        kh, kw = self.kernel_size
        pooling_fits = (
            self.dilation == (1, 1)
            and not isinstance(self.padding, str)
            and 2 * self.padding[0] <= kh
            and 2 * self.padding[1] <= kw
        )
        if pooling_fits:  # cheaper than a 1-channel convolution
            return F.avg_pool2d(m, self.kernel_size, self.stride, self.padding,
                                count_include_pad=True)
        window_sum = F.conv2d(m, self.window_ones.to(m.dtype), None, self.stride, self.padding,
                              self.dilation)
        return window_sum / (kh * kw)


def _mask_dtype(x: torch.Tensor) -> torch.dtype:
    """fp32 for fp32 and lower precisions, fp64 for fp64."""
    return torch.promote_types(x.dtype, torch.float32)
